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

// Send forwards the transaction to its issuer and takes the answer. An issuer that is down or silent
// is 91 at once or at its timeout; the switch never waits longer than the link's timeout.
type Send struct {
	Links      map[string]IssuerLink
	Spec       *iso8583.MessageSpec // the issuer-link spec
	AcquirerID string
	Log        *zap.Logger
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
	switch {
	case err == nil:
	case errors.Is(err, issuerlink.ErrUnavailable):
		t.End(txn.RCIssuerUnavailable, "issuer link down")
		return
	case errors.Is(err, issuerlink.ErrTimeout):
		t.End(txn.RCIssuerUnavailable, "issuer timeout")
		return
	default:
		s.Log.Warn("issuer send failed", zap.Stringer("txn", t), zap.Error(err))
		t.End(txn.RCIssuerUnavailable, "issuer send failed")
		return
	}
	if err := translate.FromIssuer(resp, t); err != nil {
		s.Log.Warn("issuer answer unusable", zap.Stringer("txn", t), zap.Error(err))
		t.End(txn.RCSystemError, "issuer answer unusable")
	}
}
