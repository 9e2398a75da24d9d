package pipeline

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// Ledger statuses of a booking (the ledger's journal_entry.status).
const (
	StatusBooked  = "booked"  // written (postings, or a hold for a pre-authorisation)
	StatusNoop    = "noop"    // nothing to book (reversal or void of the unknown or the already cancelled)
	StatusRefused = "refused" // a posting rule refused it
)

// Refusal says why the ledger refused a booking, as far as the answer to the terminal cares.
type Refusal int

// Refusals.
const (
	RefusalNone       Refusal = iota
	RefusalNoOriginal         // the original is unknown (refund, completion)
	RefusalCancelled          // the original was reversed, voided, completed or has lapsed
	RefusalAmount             // above what is left to refund, or above the hold
	RefusalOther              // another currency or merchant, a kind that cannot be acted on
)

// Booked is what the ledger says of a booking.
type Booked struct {
	Status    string // StatusBooked, StatusNoop or StatusRefused
	Refusal   Refusal
	Reason    string // the ledger's words, for logs
	Fee       int64
	Duplicate bool // the identity was booked before; nothing new was written
}

// Booker writes a transaction's journal entry durably (it returns after the commit) and
// idempotently (a repeat books nothing).
type Booker interface {
	Book(ctx context.Context, t *txn.Transaction) (Booked, error)
}

// ErrBookingConflict is the same identity arriving with different content: never booked, answered 94.
var ErrBookingConflict = errors.New("same transaction identity with different content")

// LedgerAnswer is the response code for what the ledger did: booked or nothing to do is 00 (a
// reversal or void of the unknown or the already reversed is answered 00 and books nothing); a
// refusal is 25 when the original cannot be found, 13 when the amount is above what the original
// leaves (ISO 8583:1987 "invalid amount": the refund or completion amount is what is wrong, not
// the original's, which is what 64 would say), and 12 otherwise.
func LedgerAnswer(b Booked) string {
	if b.Status != StatusRefused {
		return txn.RCApproved
	}
	switch b.Refusal {
	case RefusalNoOriginal:
		return txn.RCNoRecord
	case RefusalAmount:
		return txn.RCInvalidAmount
	default:
		return txn.RCInvalidTxn
	}
}

// Book puts approvals in the ledger before the terminal hears of them. If the ledger cannot take the
// entry the answer becomes 96 (an approval the books do not know is never sent) and, since the
// issuer did approve, a reversal is queued for it; if a posting rule refuses the entry (a refund
// above what is left, lost in a race with another refund) the answer is the refusal's and the
// issuer's approval is reversed too.
type Book struct {
	Ledger Booker
	// SAF queues the reversal of an issuer approval the books did not take; nil only logs it.
	SAF        StoreAndForward
	AcquirerID string
	Log        *zap.Logger
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
	case err == nil && res.Status == StatusRefused:
		s.Log.Warn("issuer approved what the ledger refuses; reversing at the issuer", zap.Stringer("txn", t),
			zap.String("issuer", t.IssuerID), zap.String("issuer_stan", t.IssuerSTAN), zap.String("ledger", res.Reason))
		s.reverseAtIssuer(ctx, t)
		t.End(LedgerAnswer(res), "ledger refused: "+res.Reason)
	case err == nil:
		t.Booked = res.Status == StatusBooked
		t.Fee = res.Fee
		t.Duplicate = res.Duplicate
		if res.Duplicate {
			// A copy of a transaction booked long ago (its answer no longer in match's cache) went to
			// the issuer again and was approved again: the books keep the first; the issuer's second
			// approval is reversed.
			s.Log.Warn("issuer approved a copy of a booked transaction; reversing the copy at the issuer",
				zap.Stringer("txn", t), zap.String("issuer", t.IssuerID), zap.String("issuer_stan", t.IssuerSTAN))
			s.reverseAtIssuer(ctx, t)
		}
	case errors.Is(err, ErrBookingConflict):
		s.Log.Error("booking conflict: identity reused with different content", zap.Stringer("txn", t), zap.Error(err))
		s.reverseAtIssuer(ctx, t)
		t.End(txn.RCDuplicate, "identity reused with different content")
	default:
		// The issuer approved but the books could not take it: the terminal gets 96 and the
		// issuer's approval is reversed through store-and-forward. If the database is down the
		// queue (in the same database) is too: then this log line is the record.
		s.Log.Error("approved by issuer but not booked; answering 96", zap.Stringer("txn", t),
			zap.String("issuer", t.IssuerID), zap.String("issuer_stan", t.IssuerSTAN), zap.Error(err))
		s.reverseAtIssuer(ctx, t)
		t.End(txn.RCSystemError, "ledger unavailable")
	}
}

// reverseAtIssuer queues a reversal of t's own issuer approval (reason 4013: the approval could
// not be delivered to the point of service). A stand-in approval was never sent to the issuer and
// needs no reversal.
func (s Book) reverseAtIssuer(ctx context.Context, t *txn.Transaction) {
	if t.StandIn || t.IssuerSTAN == "" || t.IssuerTime == "" {
		return
	}
	if s.SAF == nil {
		s.Log.Error("no store-and-forward queue: the issuer approval stays unreversed", zap.Stringer("txn", t))
		return
	}
	f := Forward{Kind: ForwardReversal, MTI: "0420", Issuer: t.IssuerID, Reason: ReasonNotDelivered,
		OriginalKey: t.Key(), OriginalMTI: linkMTI(t.MTI), OriginalSTAN: t.IssuerSTAN, OriginalTime: t.IssuerTime,
		AcquirerID: s.AcquirerID, ProcessingCode: t.ProcessingCode}
	f.fromTxn(t)
	if err := s.SAF.Enqueue(ctx, f); err != nil {
		s.Log.Error("queueing the issuer reversal failed: the approval stays unreversed", zap.Stringer("txn", t),
			zap.String("issuer", t.IssuerID), zap.String("issuer_stan", t.IssuerSTAN), zap.Error(err))
	}
}
