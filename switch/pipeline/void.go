package pipeline

import (
	"context"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// VoidWindow lets a void through only while its original's settlement cycle is open: a void
// cancels outright (the exact mirror, nothing left for the merchant or the issuer to settle), which
// is only true before cut-over has paid the merchant. After it the answer is 12 and the merchant
// refunds instead. A void of a pre-authorisation releases a hold, which is never settled: it passes.
// An unknown original passes too (Reverse answers it 00 and books nothing). It runs before Reverse;
// the ledger's void rule refuses the same case again when it books (a cut-over in between).
type VoidWindow struct {
	Records  Records
	InFlight InFlight // nil: do not wait for an original still in the pipeline
	Log      *zap.Logger
}

func (VoidWindow) Name() string { return "void_window" }

func (s VoidWindow) Run(ctx context.Context, t *txn.Transaction) {
	if t.Type != txn.TypeVoid {
		return
	}
	orig := t.OriginalKey()
	if orig == "" {
		return // Reverse answers the missing field 90
	}
	if !awaitOriginal(ctx, t, s.InFlight, orig) {
		return
	}
	r, ok, err := s.Records.Record(ctx, orig)
	switch {
	case err != nil:
		if s.Log != nil {
			s.Log.Error("reading the original of a void", zap.Stringer("txn", t), zap.Error(err))
		}
		t.End(txn.RCSystemError, "ledger unavailable")
	case !ok || r.Status != StatusBooked || r.Cancelled || r.Kind == txn.TypePreAuth:
	case r.CycleClosed:
		t.End(txn.RCInvalidTxn, "original was settled at a cut-over: refund it instead of voiding")
	}
}
