package pipeline

import (
	"context"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// ReasonBillerAdvice is the message reason code of a repayment advice: a bill payment made at our
// terminal to a wallet biller, told to the wallet so it credits its customer (ISO 8583:1993 reason
// codes 1700-1999 are for private use).
const ReasonBillerAdvice = "1700"

// maxBillerAccountDigits bounds the customer's account at a wallet biller: it travels in field 2 of
// the repayment advice.
const maxBillerAccountDigits = 19

// Billers are the configured payees of bill payments (channels.billers): biller ID → the wallet
// issuer the money is owed to and that hears of each payment.
type Billers map[string]string

// CheckBiller refuses, before any issuer hears of it, a bill payment to a biller this switch does
// not know (12), or whose customer account cannot be told to the wallet (14: digits only, at most
// 19). A bill payment without field 48 names no biller and goes on as before.
type CheckBiller struct {
	Billers Billers
}

func (CheckBiller) Name() string { return "check_biller" }

func (s CheckBiller) Run(_ context.Context, t *txn.Transaction) {
	if t.Type != txn.TypeBillPayment || t.BillerID == "" {
		return
	}
	if _, ok := s.Billers[t.BillerID]; !ok {
		t.End(txn.RCInvalidTxn, "unknown biller "+t.BillerID)
		return
	}
	if !allDigits(t.BillerAccount) || len(t.BillerAccount) > maxBillerAccountDigits {
		t.End(txn.RCInvalidCard, "biller account must be 1 to 19 digits")
	}
}

// RepaymentAdvice tells the wallet of a bill payment to its biller (a Huabei repayment paid by card
// at a POS) once the ledger has booked it: an 0220 advice (processing code 50, field 2 the
// customer's account at the wallet, field 90 the payment as the card issuer's link sent it) into
// the durable store-and-forward queue, so the wallet hears of it even if it is down now, and once:
// the queue keeps one item per (wallet, original), and the wallet recognises the repeats (0221) by
// field 90. It never changes the answer: the card issuer approved and the books hold it; an advice
// that could not be queued is logged at error (the node's queue also retries it in memory).
type RepaymentAdvice struct {
	Billers    Billers
	SAF        StoreAndForward
	AcquirerID string
	Log        *zap.Logger
}

func (RepaymentAdvice) Name() string { return "repayment_advice" }

func (s RepaymentAdvice) Run(ctx context.Context, t *txn.Transaction) {
	if t.Type != txn.TypeBillPayment || t.BillerID == "" || !t.Approved() || !t.Booked {
		return
	}
	wallet, ok := s.Billers[t.BillerID]
	if !ok || t.IssuerSTAN == "" || t.IssuerTime == "" {
		return
	}
	f := Forward{Kind: ForwardAdvice, MTI: "0220", Issuer: wallet, Reason: ReasonBillerAdvice, OriginalKey: t.Key(),
		OriginalMTI: linkMTI(t.MTI), OriginalSTAN: t.IssuerSTAN, OriginalTime: t.IssuerTime, AcquirerID: s.AcquirerID,
		PAN: t.BillerAccount}
	f.fromTxn(t)
	f.PANMasked = txn.Mask(t.BillerAccount) // the wallet account, not the card that paid
	if s.SAF == nil {
		s.Log.Error("no store-and-forward queue: the wallet never hears of this repayment", zap.Stringer("txn", t))
		return
	}
	if err := s.SAF.Enqueue(ctx, f); err != nil {
		s.Log.Error("repayment booked but its advice to the wallet not queued", zap.Stringer("txn", t),
			zap.String("wallet", wallet), zap.String("biller", t.BillerID), zap.Error(err))
	}
}

// repaymentCancellation is the reversal advice the wallet is owed when a repayment (a bill payment
// to a wallet biller, told to the wallet by RepaymentAdvice) is reversed or voided: an 0420 naming
// the 0220 the wallet got (field 90: MTI 0220 and the trace that advice named), so the wallet puts
// back what the customer owed, once. It goes through the durable store-and-forward queue like the
// card issuer's reversal (Reverse queues both before answering; a repeat queues nothing new), and the
// queue cancels the advice instead if it was never sent. ok is false for any other original.
func repaymentCancellation(t *txn.Transaction, r Recorded, origKey, acquirerID string) (Forward, bool) {
	if r.Kind != txn.TypeBillPayment || r.Payee == "" || r.IssuerSTAN == "" || r.IssuerTime == "" {
		return Forward{}, false
	}
	f := Forward{Kind: ForwardReversal, MTI: "0420", Issuer: r.Payee, Reason: ReasonCustomerCancel, OriginalKey: origKey,
		OriginalMTI: "0220", OriginalSTAN: r.IssuerSTAN, OriginalTime: r.IssuerTime, AcquirerID: acquirerID,
		ProcessingCode: processingCodeOf(r.Kind)}
	f.fromTxn(t)
	f.Amount, f.Currency, f.RRN, f.AuthCode, f.PANMasked = r.Amount, r.Currency, r.RRN, r.AuthCode, ""
	return f, true
}
