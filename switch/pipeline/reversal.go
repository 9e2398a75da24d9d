package pipeline

import (
	"context"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// InFlight lets a step wait until a transaction still in the pipeline has its answer (Match
// implements it), so that a reversal overtaking its original acts on what the original became.
type InFlight interface {
	Await(ctx context.Context, key string) error
}

// awaitOriginal waits, when inFlight is set, for the original named by key to have its answer; when
// it does not in time, it ends t with 96 (the terminal repeats) and tells the step to stop.
func awaitOriginal(ctx context.Context, t *txn.Transaction, inFlight InFlight, key string) bool {
	if inFlight == nil {
		return true
	}
	if err := inFlight.Await(ctx, key); err != nil {
		t.End(txn.RCSystemError, "the original is still in flight")
		return false
	}
	return true
}

// Reverse carries terminal reversals (0400/0420 and repeats) and voids. Neither is sent to the
// issuer while the terminal waits: the ledger books the reversal or void of the original named in
// field 90 (its exact mirror), and if that booked something, a reversal of the original as the
// issuer saw it (its issuer trace) goes into the durable store-and-forward queue (reason 4000).
// The terminal gets 00 whenever the ledger booked it or had nothing to do (original unknown or
// already reversed: nothing booked, nothing queued); 12 when the ledger refuses (the original is
// itself a reversal or void, or of another currency or merchant).
type Reverse struct {
	Ledger     Booker
	Records    Records
	SAF        StoreAndForward
	InFlight   InFlight // nil: do not wait for an original still in the pipeline
	AcquirerID string
	Log        *zap.Logger
}

func (Reverse) Name() string { return "reverse" }

func (s Reverse) Run(ctx context.Context, t *txn.Transaction) {
	if t.Type != txn.TypeReversal && t.Type != txn.TypeVoid {
		return
	}
	orig := t.OriginalKey()
	if orig == "" {
		t.End(txn.RCFormatError, "no original data elements (field 90)")
		return
	}
	if !awaitOriginal(ctx, t, s.InFlight, orig) {
		return
	}
	// Queued on a repeat too (the queue is idempotent): a first attempt that booked but could not
	// queue was answered 96, and its repeat lands here.
	bookThenForward(ctx, t, s.Ledger, s.Log, t.Type.String(), func() error { return s.queue(ctx, t, orig) })
}

// queue hands the issuer a reversal of the original as it saw it: by the original's issuer trace,
// which for a stand-in approval or a terminal's advice is the identity its advice names in field 90.
// An original with no trace (a completion, or an entry booked before the trace was kept) is not
// reversed at the issuer by this step, and that is logged.
func (s Reverse) queue(ctx context.Context, t *txn.Transaction, origKey string) error {
	if s.SAF == nil {
		s.Log.Error("no store-and-forward queue: the issuer is not told of this reversal", zap.Stringer("txn", t))
		return nil
	}
	r, ok, err := s.Records.Record(ctx, origKey)
	if err != nil {
		return err
	}
	if !ok || r.IssuerSTAN == "" || r.IssuerTime == "" {
		s.Log.Info("reversed original was never sent to an issuer; nothing to reverse there", zap.Stringer("txn", t))
		return nil
	}
	o, _ := t.Original()
	f := Forward{Kind: ForwardReversal, MTI: "0420", Issuer: r.Issuer, Reason: ReasonCustomerCancel, OriginalKey: origKey,
		OriginalMTI: linkMTI(o.MTI), OriginalSTAN: r.IssuerSTAN, OriginalTime: r.IssuerTime, AcquirerID: s.AcquirerID}
	if t.Type == txn.TypeVoid {
		f.ProcessingCode = processingCodeOf(r.Kind) // the void's own code (02) is not the original's
	}
	f.fromTxn(t)
	f.Amount, f.Currency, f.RRN, f.AuthCode, f.PANMasked = r.Amount, r.Currency, r.RRN, r.AuthCode, r.PANMasked
	if err := s.SAF.Enqueue(ctx, f); err != nil {
		return err
	}
	if w, ok := repaymentCancellation(t, r, origKey, s.AcquirerID); ok { // biller.go: the wallet gives the repayment back
		return s.SAF.Enqueue(ctx, w)
	}
	return nil
}

// processingCodeOf is the processing code an original of a ledger kind was sent with (bill payments
// as 50; the issuer matches the reversal by field 90, not by this).
func processingCodeOf(kind txn.Type) string {
	switch kind {
	case txn.TypeRefund:
		return "200000"
	case txn.TypeBillPayment:
		return "500000"
	default:
		return "000000"
	}
}
