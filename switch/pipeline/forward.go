package pipeline

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/translate"
	"github.com/poswitch/poswitch/switch/txn"
)

// ForwardKind is what the switch owes an issuer.
type ForwardKind string

// Kinds of forwarded message (saf_item.kind).
const (
	ForwardReversal ForwardKind = "reversal" // 0420, repeated as 0421
	ForwardAdvice   ForwardKind = "advice"   // 0120 or 0220, repeated as 0121 or 0221
)

// Message reason codes (ISO 8583:1993 field 25 values, carried in the queue) of forwarded messages.
const (
	ReasonCustomerCancel    = "4000" // reversal: the terminal reversed or voided it
	ReasonNotDelivered      = "4013" // reversal: the issuer approved what the switch could not book or deliver
	ReasonTimeout           = "4021" // reversal: the issuer did not answer in time (send step)
	ReasonTerminalProcessed = "1004" // advice: the terminal approved it (offline, or completing a hold)
)

// Forward is a reversal or advice the switch owes an issuer, handed to the durable
// store-and-forward queue. It holds only what rebuilds the issuer message: field 90 at the issuer
// is OriginalMTI + OriginalSTAN + OriginalTime + AcquirerID as the issuer link sent them (the
// issuer trace), never the terminal's own STAN and time. PAN is set for advices only (the issuer
// must know whose account to post) and lives in memory: the queue seals it in the HSM or refuses.
type Forward struct {
	Kind   ForwardKind
	MTI    string // first attempt: "0420", "0120" or "0220"
	Issuer string
	Reason string // message reason code, e.g. ReasonCustomerCancel

	OriginalKey  string // the terminal-side identity of the original (txn.Key), for operators
	OriginalMTI  string // as sent on the issuer link, e.g. "0200"
	OriginalSTAN string // field 11 the issuer link used
	OriginalTime string // field 7 the issuer link used
	AcquirerID   string // field 32

	ProcessingCode string
	Amount         int64
	Currency       string
	Terminal       string
	Merchant       string
	RRN            string
	AuthCode       string
	MCC            string
	EntryMode      string
	PANMasked      string
	PAN            string // advices only; clear, memory only
}

// StoreAndForward durably queues a message for an issuer; it returns once the item is committed.
// Queueing the same (issuer, kind, original) twice is a no-op, so callers may retry freely.
type StoreAndForward interface {
	Enqueue(ctx context.Context, f Forward) error
}

// fromTxn fills what the terminal's request says of the transaction; callers set the rest.
func (f *Forward) fromTxn(t *txn.Transaction) {
	f.Amount, f.Currency, f.Terminal, f.Merchant = t.Amount, t.Currency, t.TerminalID, t.MerchantID
	f.RRN, f.AuthCode, f.MCC, f.EntryMode = t.RRN, t.AuthCode, t.MCC, t.EntryMode
	if t.PAN != "" {
		f.PANMasked = t.MaskedPAN()
	}
	if f.ProcessingCode == "" {
		f.ProcessingCode = t.ProcessingCode
	}
	if f.ProcessingCode == "" {
		f.ProcessingCode = "000000"
	}
}

// linkMTI is the MTI the issuer link sent for a terminal's request.
// An order payment is booked under its creating 0600's identity but stands, at the wallet, for the
// 0200 its issuer trace names (switch/qrorder): field 90 at the wallet says 0200.
func linkMTI(mti string) string {
	if txn.MTIClass(mti) == "60" {
		return "0200"
	}
	return translate.LinkMTI(mti)
}

// Recorded is what the ledger holds of one transaction identity.
type Recorded struct {
	Kind       txn.Type // the ledger kind as a transaction type (TypeUnknown for hold expiry and others)
	Status     string   // StatusBooked, StatusNoop or StatusRefused
	Refusal    Refusal
	Issuer     string
	IssuerSTAN string // the issuer trace: what the link sent for it ("" when nothing was sent)
	IssuerTime string
	Payee      string // a bill payment to a wallet biller: the wallet it is owed to
	Merchant   string
	Currency   string
	Amount     int64 // booked amount
	Fee        int64
	RRN        string
	AuthCode   string
	PANMasked  string
	Cancelled  bool  // a reversal, void, completion or expiry has since closed it
	Refundable int64 // what is left to refund of a sale (0 for anything else)
	// Cycle is the settlement cycle it was booked in; CycleClosed: cut-over has closed that cycle.
	Cycle       int64
	CycleClosed bool
	At          time.Time // when the transaction happened (the refund window counts from here)
}

// Records reads the ledger's entry of a transaction identity; ok is false when it has none.
type Records interface {
	Record(ctx context.Context, key string) (Recorded, bool, error)
}

// bookThenForward is what the steps that act before the issuer hears (reverse, advise) share: book
// t, and only if that booked something hand it to forward (store-and-forward); then answer by the
// ledger's result. A ledger or queue failure is 96, so the terminal repeats and, booking being
// idempotent, the repeat queues what the first attempt could not. what names the message in logs
// and reasons ("reversal", "advice").
func bookThenForward(ctx context.Context, t *txn.Transaction, ledger Booker, log *zap.Logger, what string,
	forward func() error) {
	res, err := ledger.Book(ctx, t)
	switch {
	case errors.Is(err, ErrBookingConflict):
		log.Error("booking conflict: identity reused with different content", zap.Stringer("txn", t), zap.Error(err))
		t.End(txn.RCDuplicate, "identity reused with different content")
		return
	case err != nil:
		log.Error("booking a "+what+" failed; answering 96", zap.Stringer("txn", t), zap.Error(err))
		t.End(txn.RCSystemError, "ledger unavailable")
		return
	}
	t.Booked, t.Fee, t.Duplicate = res.Status == StatusBooked, res.Fee, res.Duplicate
	if res.Status == StatusBooked {
		if err := forward(); err != nil {
			log.Error(what+" booked but not queued for the issuer; answering 96 so the terminal repeats it",
				zap.Stringer("txn", t), zap.Error(err))
			t.End(txn.RCSystemError, "store-and-forward unavailable")
			return
		}
	}
	reason := what + " " + res.Status
	if res.Reason != "" {
		reason += ": " + res.Reason
	}
	t.End(LedgerAnswer(res), reason)
}
