package pipeline

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// Booked is what the ledger says of a booking.
type Booked struct {
	Fee       int64
	Duplicate bool // the identity was booked before; nothing new was written
}

// Booker writes an approved transaction's journal entry durably (it returns after the commit) and
// idempotently (a repeat books nothing).
type Booker interface {
	Book(ctx context.Context, t *txn.Transaction) (Booked, error)
}

// ErrBookingConflict is the same identity arriving with different content: never booked, answered 94.
var ErrBookingConflict = errors.New("same transaction identity with different content")

// Book puts approvals in the ledger before the terminal hears of them. If the ledger cannot take the
// entry the answer becomes 96: an approval the books do not know is never sent.
type Book struct {
	Ledger Booker
	Log    *zap.Logger
	// Types that move money; others (balance inquiry) pass untouched.
	Types map[txn.Type]bool
}

func (Book) Name() string { return "book" }

func (s Book) Run(ctx context.Context, t *txn.Transaction) {
	if !t.Approved() || !s.Types[t.Type] {
		return
	}
	res, err := s.Ledger.Book(ctx, t)
	switch {
	case err == nil:
		t.Booked = true
		t.Fee = res.Fee
		t.Duplicate = res.Duplicate
	case errors.Is(err, ErrBookingConflict):
		s.Log.Error("booking conflict: identity reused with different content", zap.Stringer("txn", t), zap.Error(err))
		t.End(txn.RCDuplicate, "identity reused with different content")
	default:
		// The issuer approved but the books could not take it: the terminal gets 96, and the issuer's
		// approval must be reversed (store-and-forward does that; until then this line is the record).
		s.Log.Error("approved by issuer but not booked; answering 96", zap.Stringer("txn", t),
			zap.String("issuer", t.IssuerID), zap.String("issuer_stan", t.IssuerSTAN), zap.Error(err))
		t.End(txn.RCSystemError, "ledger unavailable")
	}
}
