package pipeline

import (
	"context"
	"errors"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/issuerlink"
	"github.com/poswitch/poswitch/switch/translate"
	"github.com/poswitch/poswitch/switch/txn"
)

// IssuerLink is what Send needs of a link: forward a request, get the answer and the STAN used.
type IssuerLink interface {
	Send(ctx context.Context, req *iso8583.Message) (*iso8583.Message, string, error)
}

// ReasonInvalidResponse is the reversal reason when the issuer's answer was unusable: what it decided
// is unknown, so whatever it did is undone.
const ReasonInvalidResponse = "4020"

// Send forwards the transaction to its issuer and takes the answer. An issuer that is down is 91 at
// once (or a stand-in answer); one that stays silent is 91 (or stand-in) at the link's timeout, and
// since it may have approved, a reversal naming the request as the link sent it (field 90: link MTI,
// STAN and field 7) goes into the store-and-forward queue first. The switch never waits longer than
// the link's timeout.
type Send struct {
	Links      map[string]IssuerLink
	Spec       *iso8583.MessageSpec // the issuer-link spec
	AcquirerID string
	Log        *zap.Logger
	// SAF queues reversals of requests the issuer may have acted on unheard; nil only logs them.
	SAF StoreAndForward
	// StandIn decides on the issuer's behalf when it is down or silent; nil answers 91.
	StandIn StandIn
}

func (Send) Name() string { return "send" }

func (s Send) Run(ctx context.Context, t *txn.Transaction) {
	link := s.Links[t.IssuerID]
	if link == nil {
		t.End(txn.RCUnableToRoute, "no link for issuer "+t.IssuerID)
		return
	}
	req, err := translate.ToIssuer(s.Spec, t, s.AcquirerID)
	if err != nil {
		s.Log.Error("building issuer request", zap.Stringer("txn", t), zap.Error(err))
		t.End(txn.RCSystemError, "cannot build the issuer request")
		return
	}
	resp, stan, err := link.Send(ctx, req)
	t.IssuerSTAN = stan
	if stan != "" {
		t.IssuerTime, _ = req.GetString(7) // the link stamps field 7 as it sends
	}
	switch {
	case err == nil:
	case errors.Is(err, issuerlink.ErrUnavailable):
		// Nothing was written to the issuer: nothing to reverse.
		s.issuerCannot(ctx, t, "issuer link down")
		return
	case errors.Is(err, issuerlink.ErrTimeout): // also a connection lost with the request in flight
		s.reverse(ctx, t, req, ReasonTimeout)
		s.issuerCannot(ctx, t, "issuer timeout")
		return
	default:
		s.Log.Warn("issuer send failed", zap.Stringer("txn", t), zap.Error(err))
		t.End(txn.RCIssuerUnavailable, "issuer send failed")
		return
	}
	if err := translate.FromIssuer(resp, t); err != nil {
		s.Log.Warn("issuer answer unusable; reversing it", zap.Stringer("txn", t), zap.Error(err))
		s.reverse(ctx, t, req, ReasonInvalidResponse)
		t.End(txn.RCSystemError, "issuer answer unusable")
	}
}

// unreversed are the requests a reversal never follows: an inquiry moves nothing, and an advice the
// issuer did not acknowledge is repeated (store-and-forward), not reversed.
func unreversed(t *txn.Transaction) bool {
	return t.Type == txn.TypeBalanceInquiry || t.Type == txn.TypeNetwork || t.Type == txn.TypeReversal || t.Advice()
}

// reverse queues the reversal of the request as the link sent it. It returns after the queue has
// committed it, so the terminal hears 91 only once the reversal is durable (or its failure logged).
func (s Send) reverse(ctx context.Context, t *txn.Transaction, req *iso8583.Message, reason string) {
	if unreversed(t) || t.IssuerSTAN == "" || t.IssuerTime == "" {
		return
	}
	mti, _ := req.GetMTI()
	f := Forward{Kind: ForwardReversal, MTI: "0420", Issuer: t.IssuerID, Reason: reason, OriginalKey: t.Key(),
		OriginalMTI: mti, OriginalSTAN: t.IssuerSTAN, OriginalTime: t.IssuerTime, AcquirerID: s.AcquirerID}
	f.fromTxn(t)
	f.AuthCode = "" // the switch never heard the issuer's
	if s.SAF == nil {
		s.Log.Error("no store-and-forward queue: the request stays unreversed at the issuer", zap.Stringer("txn", t),
			zap.String("issuer", t.IssuerID), zap.String("issuer_stan", t.IssuerSTAN), zap.String("reason", reason))
		return
	}
	if err := s.SAF.Enqueue(ctx, f); err != nil {
		s.Log.Error("queueing the issuer reversal failed", zap.Stringer("txn", t), zap.String("issuer", t.IssuerID),
			zap.String("issuer_stan", t.IssuerSTAN), zap.String("issuer_time", t.IssuerTime),
			zap.String("reason", reason), zap.Error(err))
	}
}

// issuerCannot answers for an issuer that is down or silent: stand-in within its limits, else 91.
func (s Send) issuerCannot(ctx context.Context, t *txn.Transaction, why string) {
	if s.StandIn != nil {
		ok, rule := s.StandIn.Decide(ctx, t)
		if ok {
			approveInStandIn(t, why)
			return
		}
		why += "; no stand-in: " + rule
	}
	t.End(txn.RCIssuerUnavailable, why)
}
