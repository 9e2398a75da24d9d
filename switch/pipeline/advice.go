package pipeline

import (
	"context"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// Advise carries a terminal's advices: 0120 (it approved a pre-authorisation itself), 0220 with
// field 90 (the completion of a pre-authorisation) and 0220 without it (an offline sale), and
// their repeats. The terminal has already acted, so nothing waits on the issuer: the ledger books
// it (a completion above its hold is 13, of an unknown hold 25, of a closed one 12) and, if it
// booked, an advice for the issuer goes into the durable store-and-forward queue. The answer is
// 0130/0230. Terminal reversal advices (0420) are Reverse's.
type Advise struct {
	Ledger     Booker
	Records    Records
	SAF        StoreAndForward
	Router     Router   // the issuer of a card (a completion takes its hold's)
	InFlight   InFlight // nil: do not wait for a hold still in the pipeline
	AcquirerID string
	Log        *zap.Logger
}

func (Advise) Name() string { return "advise" }

func (s Advise) Run(ctx context.Context, t *txn.Transaction) {
	if !t.Advice() || t.Type == txn.TypeReversal {
		return
	}
	// What field 90 at the issuer names: for a completion, its hold as the issuer saw it; for an
	// advice of something the issuer never saw, the advice itself as the terminal sent it.
	f := Forward{Kind: ForwardAdvice, MTI: linkMTI(t.MTI), Reason: ReasonTerminalProcessed, OriginalKey: t.Key(),
		OriginalMTI: linkMTI(t.MTI), OriginalSTAN: t.STAN, OriginalTime: t.TransmissionTime, AcquirerID: s.AcquirerID, PAN: t.PAN}
	if t.Type == txn.TypeCompletion {
		orig := t.OriginalKey()
		if !awaitOriginal(ctx, t, s.InFlight, orig) {
			return
		}
		r, ok, err := s.Records.Record(ctx, orig)
		if err != nil {
			s.Log.Error("reading the pre-authorisation of a completion", zap.Stringer("txn", t), zap.Error(err))
			t.End(txn.RCSystemError, "ledger unavailable")
			return
		}
		if ok {
			t.IssuerID = r.Issuer
			if r.IssuerSTAN != "" && r.IssuerTime != "" {
				o, _ := t.Original()
				f.OriginalKey, f.OriginalMTI, f.OriginalSTAN, f.OriginalTime = orig, linkMTI(o.MTI), r.IssuerSTAN, r.IssuerTime
			}
		}
	}
	if t.IssuerID == "" && t.PAN != "" {
		t.IssuerID, _ = s.Router.Lookup(t.PAN)
	}
	if t.IssuerID == "" && t.Type != txn.TypeCompletion {
		t.End(txn.RCNoSuchIssuer, "no route for the card's BIN")
		return
	}
	if t.Type != txn.TypeCompletion {
		// The issuer will know this advice by the identity its field 90 names (the terminal's own),
		// so that is the trace a later reversal or void of it must name.
		t.IssuerSTAN, t.IssuerTime = f.OriginalSTAN, f.OriginalTime
	}
	bookThenForward(ctx, t, s.Ledger, s.Log, "advice", func() error {
		f.Issuer = t.IssuerID
		f.fromTxn(t)
		return s.enqueue(ctx, t, f)
	})
}

func (s Advise) enqueue(ctx context.Context, t *txn.Transaction, f Forward) error {
	if s.SAF == nil {
		s.Log.Error("no store-and-forward queue: the issuer is not told of this advice", zap.Stringer("txn", t))
		return nil
	}
	if f.Issuer == "" {
		s.Log.Warn("advice booked for no known issuer; not forwarded", zap.Stringer("txn", t))
		return nil
	}
	return s.SAF.Enqueue(ctx, f)
}
