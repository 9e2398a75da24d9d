package pipeline

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// Refund checks a refund against its original in the ledger before the issuer hears of it, so the
// issuer never credits a card for a refund the books will refuse: no field 90 is 12 (this switch
// does not carry unreferenced refunds), an unknown original 25, one reversed or voided or not a
// sale 12, another currency 12, older than the refund window 12, above what is left to refund 13.
// A refund without a card number goes back to the wallet the original was paid from (the issuer
// the original was booked for, when it is a wallet: Route keeps that issuer); a card refund without
// one is 14. It then gives the issuer the original as the issuer saw it (field 90 from the
// original's issuer trace). The ledger checks again when it books (two refunds racing), and Book
// reverses the issuer's approval if it refuses.
type Refund struct {
	Records    Records
	InFlight   InFlight // nil: do not wait for an original still in the pipeline
	AcquirerID string
	Log        *zap.Logger
	// Window is how long after its original a refund is accepted (channels.refund_window); 0: no
	// limit. It counts from the original's time to the refund's receipt.
	Window time.Duration
	// Wallets are the issuers marked wallet: a refund without a card number is theirs.
	Wallets map[string]bool
}

func (Refund) Name() string { return "refund" }

func (s Refund) Run(ctx context.Context, t *txn.Transaction) {
	if t.Type != txn.TypeRefund {
		return
	}
	orig := t.OriginalKey()
	if orig == "" {
		t.End(txn.RCInvalidTxn, "a refund must name its original (field 90)")
		return
	}
	if !awaitOriginal(ctx, t, s.InFlight, orig) {
		return
	}
	r, ok, err := s.Records.Record(ctx, orig)
	switch {
	case err != nil:
		s.Log.Error("reading the original of a refund", zap.Stringer("txn", t), zap.Error(err))
		t.End(txn.RCSystemError, "ledger unavailable")
		return
	case !ok || r.Status != StatusBooked:
		t.End(txn.RCNoRecord, "original not found")
		return
	case r.Kind != txn.TypePurchase && r.Kind != txn.TypeCompletion && r.Kind != txn.TypeBillPayment:
		t.End(txn.RCInvalidTxn, "original is a "+r.Kind.String()+", not a sale")
		return
	case r.Cancelled:
		t.End(txn.RCInvalidTxn, "original was reversed or voided")
		return
	case r.Currency != t.Currency:
		t.End(txn.RCInvalidTxn, "refund currency differs from the original's")
		return
	case s.Window > 0 && !r.At.IsZero() && t.Received.Sub(r.At) > s.Window:
		t.End(txn.RCInvalidTxn, "original is older than the refund window ("+s.Window.String()+")")
		return
	case t.Amount > r.Refundable:
		t.End(txn.RCInvalidAmount, "refund above what is left to refund")
		return
	}
	if t.PAN == "" {
		if !s.Wallets[r.Issuer] {
			t.End(txn.RCInvalidCard, "a card refund needs the card number")
			return
		}
		// The wallet refunds the funding source of its own payment; field 90 names it.
		t.IssuerID = r.Issuer
	}
	if r.IssuerSTAN != "" && r.IssuerTime != "" {
		o, _ := t.Original()
		t.IssuerOriginalData = txn.OriginalData{MTI: linkMTI(o.MTI), STAN: r.IssuerSTAN, TransmissionTime: r.IssuerTime,
			AcquirerID: s.AcquirerID}.String()
	}
}
