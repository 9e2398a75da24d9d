package pipeline

import (
	"context"

	"github.com/poswitch/poswitch/switch/txn"
)

// PaymentCodeRouter answers which wallet issuer serves a payment code, payment-code routes
// (routes with payment_codes: true) included.
type PaymentCodeRouter interface {
	LookupPaymentCode(code string) (issuer string, ok bool)
}

// RoutePaymentCode routes a wallet payment code the terminal scanned (entry mode 03x) before the
// BIN route step: by the most specific route, payment-code routes included, so that a 19-digit
// UnionPay QR code goes to the UnionPay wallet while a 62 card goes to its bank. No route is 15, a
// route to an issuer without a link 92, as for cards. Cards, and transactions that already have
// their issuer, pass untouched; Route keeps the issuer chosen here.
type RoutePaymentCode struct {
	Router PaymentCodeRouter
	Links  map[string]bool
}

func (RoutePaymentCode) Name() string { return "route_payment_code" }

func (s RoutePaymentCode) Run(_ context.Context, t *txn.Transaction) {
	if !t.PaymentCode() || t.PAN == "" || t.IssuerID != "" {
		return
	}
	issuer, ok := s.Router.LookupPaymentCode(t.PAN)
	if !ok {
		t.End(txn.RCNoSuchIssuer, "no route for the payment code")
		return
	}
	if !s.Links[issuer] {
		t.End(txn.RCUnableToRoute, "route names issuer "+issuer+" with no link")
		return
	}
	t.IssuerID = issuer
}
