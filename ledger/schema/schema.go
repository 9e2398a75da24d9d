// Package schema holds the ledger's SQL migrations (embedded) and applies them with pressly/goose.
// It is separate from package ledger so that test helpers (ledger/pgtest) can migrate a database
// without importing the ledger itself.
package schema

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLockID is the advisory lock goose holds while migrating, so that several nodes starting at
// once migrate one after the other.
const migrateLockID = 0x706f7377_6d696772 // "poswmigr"

// Migrate applies every pending migration as the owner role. It is safe to run from several
// processes at once.
func Migrate(ctx context.Context, ownerURL string) error {
	db, err := openDB(ownerURL)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := provider(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("ledger migrations: %w", err)
	}
	return nil
}

// Version reports the database's applied version and the newest version this binary knows.
func Version(ctx context.Context, ownerURL string) (current, latest int64, err error) {
	db, err := openDB(ownerURL)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	p, err := provider(db)
	if err != nil {
		return 0, 0, err
	}
	return p.GetVersions(ctx)
}

func openDB(url string) (*sql.DB, error) {
	cfg, err := stdlibConfig(url)
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg), nil
}

func provider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("ledger migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrateLockID))
	if err != nil {
		return nil, fmt.Errorf("ledger migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("ledger migrations: %w", err)
	}
	return p, nil
}
