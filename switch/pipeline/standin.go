package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// StandIn decides for an issuer that is down or silent (switch/standin implements it). An approval
// has already counted against the card's stand-in limits; why names the rule that decided.
type StandIn interface {
	Decide(ctx context.Context, t *txn.Transaction) (approve bool, why string)
}

// ReasonStandIn is the message reason code of a stand-in advice: stand-in processing at the
// acquirer's option (ISO 8583:1993 1007).
const ReasonStandIn = "1007"

// StandInAuthPrefix starts every authorisation code the switch makes, so that a stand-in approval is
// told apart from an issuer's on the receipt, in the ledger and in reconciliation.
const StandInAuthPrefix = "S"

// standInAuthCode is "S" and 5 random digits. Authorisation codes need not be unique; they let the
// cardholder and the issuer refer to an approval.
func standInAuthCode() string { return fmt.Sprintf("%s%05d", StandInAuthPrefix, rand.IntN(100000)) }

// approveInStandIn approves t on its issuer's behalf. The transaction goes on to be booked like any
// approval, and StandInAdvice queues its advice afterwards. From here on the issuer trace (IssuerSTAN,
// IssuerTime) is the identity the issuer will know the transaction by: the terminal's STAN and field
// 7, carried in field 90 of the advice and of any later reversal of it. A request that timed out has
// had its own reversal queued under the link's STAN before this.
func approveInStandIn(t *txn.Transaction, why string) {
	t.Response, t.AuthCode, t.StandIn = txn.RCApproved, standInAuthCode(), true
	t.Reason = "stand-in approval: " + why
	t.IssuerSTAN, t.IssuerTime = t.STAN, t.TransmissionTime
}

// StandInAdvice queues the advice (0220, or 0120 for a pre-authorisation) of a stand-in approval once the
// ledger has booked it, so the issuer posts it when it is back. It never changes the answer: the
// approval is booked, and an advice that could not be queued is logged at error with the
// transaction's identity (its "S" code makes it findable in the ledger).
type StandInAdvice struct {
	SAF        StoreAndForward
	AcquirerID string
	Log        *zap.Logger
}

func (StandInAdvice) Name() string { return "standin_advice" }

func (s StandInAdvice) Run(ctx context.Context, t *txn.Transaction) {
	if !t.StandIn || !t.Approved() || !t.Booked {
		return
	}
	mti := "0220"
	if t.Type == txn.TypePreAuth {
		mti = "0120"
	}
	f := Forward{Kind: ForwardAdvice, MTI: mti, Issuer: t.IssuerID, Reason: ReasonStandIn, OriginalKey: t.Key(),
		OriginalMTI: linkMTI(t.MTI), OriginalSTAN: t.IssuerSTAN, OriginalTime: t.IssuerTime, AcquirerID: s.AcquirerID,
		PAN: t.PAN}
	f.fromTxn(t)
	if s.SAF == nil {
		s.Log.Error("no store-and-forward queue: the issuer never hears of this stand-in approval", zap.Stringer("txn", t))
		return
	}
	if err := s.SAF.Enqueue(ctx, f); err != nil {
		s.Log.Error("stand-in approval booked but its advice not queued", zap.Stringer("txn", t),
			zap.String("issuer", t.IssuerID), zap.String("auth_code", t.AuthCode), zap.Error(err))
	}
}
