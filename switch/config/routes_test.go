package config

import (
	"strings"
	"testing"
)

const walletRoutes = head + `issuers:
  - id: cup
    endpoints: [127.0.0.1:9101]
  - id: unionpay-qr
    endpoints: [127.0.0.1:9102]
    wallet: true
routes:
  - prefix: "62"
    issuer: cup
  - prefix: "62"
    length: 19
    payment_codes: true
    issuer: unionpay-qr
merchants:
  - id: M1
    name: Corner Shop
terminals:
  - id: T1
    merchant: M1
`

func TestPaymentCodeRoutesLoadIntoTheTable(t *testing.T) {
	_, table := mustParseWithTable(t, "switch.yaml", walletRoutes)
	if is, _ := table.LookupPaymentCode("6212345678901234567"); is != "unionpay-qr" {
		t.Errorf("19-digit 62 payment code routed to %q, want unionpay-qr", is)
	}
	if is, _ := table.Lookup("6212345678901234567"); is != "cup" {
		t.Errorf("19-digit 62 card routed to %q, want cup", is)
	}
}

func TestBadPaymentCodeRouteNamesLineAndKey(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(string) string
		line    int
		key     string
		inError string
	}{
		{"payment codes to a card issuer", func(s string) string {
			return strings.Replace(s, "payment_codes: true\n    issuer: unionpay-qr", "payment_codes: true\n    issuer: cup", 1)
		}, 21, "routes[1].payment_codes", "not marked wallet"},
		{"length shorter than the prefix", func(s string) string { return strings.Replace(s, "length: 19", "length: 1", 1) },
			20, "routes[1].length", "shorter than the prefix"},
		{"length not a number", func(s string) string { return strings.Replace(s, "length: 19", "length: long", 1) },
			20, "yaml", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ce, err := parseError(t, "switch.yaml", c.edit(walletRoutes))
			if ce.Key != c.key || ce.Line != c.line || !strings.Contains(ce.Reason, c.inError) {
				t.Errorf("got %q (line %d key %q), want line %d key %q saying %q", err, ce.Line, ce.Key, c.line, c.key, c.inError)
			}
		})
	}
}
