package config

import (
	"errors"
	"fmt"

	"github.com/poswitch/poswitch/switch/routing"
)

// maxEndpoints mirrors issuerlink.MaxEndpoints: a primary, a secondary and two more.
const maxEndpoints = 4

// RouteEntries are the routes as the routing table takes them.
func (c *Config) RouteEntries() []routing.Entry {
	entries := make([]routing.Entry, 0, len(c.Routes))
	for _, r := range c.Routes {
		entries = append(entries, routing.Entry{Prefix: r.Prefix, Range: r.Range, Issuer: r.Issuer, Default: r.Default,
			PaymentCodes: r.PaymentCodes, Length: r.Length})
	}
	return entries
}

// RoutingTable builds the routing table of the file; a route the table refuses is an *Error at its
// line and key.
func (c *Config) RoutingTable() (*routing.Table, error) {
	t, err := routing.NewTable(c.RouteEntries())
	var ee *routing.EntryError
	if errors.As(err, &ee) {
		reason := ee.Reason
		if ee.Other >= 0 && ee.Other < len(c.Routes) {
			reason += fmt.Sprintf(" (line %d)", c.Routes[ee.Other].line.of(ee.Field))
		}
		return nil, c.ErrorAt("routes", ee.Index, ee.Field, "%s", reason)
	}
	return t, err
}

// validateRoutes checks that every route names a configured issuer and that the routes make a table:
// one of prefix, range and default each, no prefix twice, one default, no overlapping ranges of the
// same length, a length (if any) no shorter than the digits matched. A payment_codes route should
// name a wallet issuer (wallet: true); one that does not is refused, since a card issuer cannot
// take a payment code.
func (c *Config) validateRoutes(issuers map[string]bool) error {
	for i, r := range c.Routes {
		if !issuers[r.Issuer] {
			return c.ErrorAt("routes", i, "issuer", "unknown issuer %q", r.Issuer)
		}
		if r.PaymentCodes && !c.walletIssuer(r.Issuer) {
			return c.ErrorAt("routes", i, "payment_codes", "issuer %q takes payment codes but is not marked wallet: true", r.Issuer)
		}
	}
	_, err := c.RoutingTable()
	return err
}

// walletIssuer says whether the issuer is marked wallet: true.
func (c *Config) walletIssuer(id string) bool {
	for _, is := range c.Issuers {
		if is.ID == id {
			return is.Wallet
		}
	}
	return false
}
