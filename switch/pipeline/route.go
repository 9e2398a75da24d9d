package pipeline

import (
	"context"

	"github.com/poswitch/poswitch/switch/txn"
)

// Router answers which issuer serves a card number (longest prefix, then the default).
type Router interface {
	Lookup(pan string) (issuer string, ok bool)
}

// Route picks the issuer by BIN: no matching route is 15 (no such issuer); a route to an issuer this
// node has no link for is 92 (unable to route). An issuer an earlier step chose already (a wallet
// refund goes to the wallet its original was paid from) is kept; it still needs a link.
type Route struct {
	Router Router
	Links  map[string]bool // issuers with a configured link
}

func (Route) Name() string { return "route" }

func (s Route) Run(_ context.Context, t *txn.Transaction) {
	issuer := t.IssuerID
	if issuer == "" {
		var ok bool
		if issuer, ok = s.Router.Lookup(t.PAN); !ok {
			t.End(txn.RCNoSuchIssuer, "no route for the card's BIN")
			return
		}
	}
	if !s.Links[issuer] {
		t.End(txn.RCUnableToRoute, "route names issuer "+issuer+" with no link")
		return
	}
	t.IssuerID = issuer
}
