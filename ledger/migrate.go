package ledger

import (
	"context"

	"github.com/poswitch/poswitch/ledger/schema"
)

// Migrate applies the ledger's schema migrations (pressly/goose, embedded SQL) as the owner role.
// The binary runs it at start; several nodes starting at once migrate one after the other.
func Migrate(ctx context.Context, ownerURL string) error { return schema.Migrate(ctx, ownerURL) }
