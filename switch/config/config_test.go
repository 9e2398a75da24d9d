package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/switch/routing"
)

// head is the start every test file shares: a node, its database and one terminal listener.
const head = `
node:
  acquirer_id: "12345678901"
database:
  url: postgres://app@127.0.0.1:5432/poswitch
listeners:
  - name: pos
    address: 127.0.0.1:0
    dialect: iso87a
`

const good = head + `issuers:
  - id: bank-a
    endpoints: [127.0.0.1:9101]
    timeout: 2s
routes:
  - prefix: "4761"
    issuer: bank-a
  - default: true
    issuer: bank-a
merchants:
  - id: M1
    name: Corner Shop
    fee_bp: 45
  - id: M2
    name: Tea House
terminals:
  - id: T1
    merchant: M1
`

// mustParse parses a file the test expects to load.
func mustParse(t *testing.T, file, src string) *Config {
	t.Helper()
	cfg, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mustParseWithTable parses a file the test expects to load and builds its routing table.
func mustParseWithTable(t *testing.T, file, src string) (*Config, *routing.Table) {
	t.Helper()
	cfg := mustParse(t, file, src)
	table, err := cfg.RoutingTable()
	if err != nil {
		t.Fatal(err)
	}
	return cfg, table
}

// parseError parses a file the test expects to be refused, failing unless the error is a *Error.
func parseError(t *testing.T, file, src string) (*Error, error) {
	t.Helper()
	_, err := Parse(file, []byte(src))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *config.Error", err)
	}
	return ce, err
}

func TestGoodFileLoadsWithDefaults(t *testing.T) {
	cfg := mustParse(t, "good.yaml", good)
	if got := *cfg.Merchants[0].FeeBP; got != 45 {
		t.Errorf("merchant override fee = %d, want 45", got)
	}
	if got := *cfg.Merchants[1].FeeBP; got != DefaultFeeBP {
		t.Errorf("default fee = %d, want %d", got, DefaultFeeBP)
	}
	if got := cfg.Issuers[0].Timeout.D().String(); got != "2s" {
		t.Errorf("timeout = %s", got)
	}
	if cfg.Listeners[0].MaxInFlightPerConnection != defaultMaxInFlightPerConnection {
		t.Errorf("in-flight default not applied")
	}
}

func TestBadFileNamesFileLineAndKey(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(string) string
		line    int
		key     string
		inError string
	}{
		{"unknown dialect", func(s string) string { return strings.Replace(s, "dialect: iso87a", "dialect: iso99", 1) },
			9, "listeners[0].dialect", "unknown dialect"},
		{"route to unknown issuer", func(s string) string {
			return strings.Replace(s, "issuer: bank-a\n  - default", "issuer: bank-z\n  - default", 1)
		},
			16, "routes[0].issuer", "unknown issuer"},
		{"typo in a key", func(s string) string { return strings.Replace(s, "timeout: 2s", "timout: 2s", 1) },
			13, "issuers[0].timout", "unknown key"},
		{"bad duration", func(s string) string { return strings.Replace(s, "timeout: 2s", "timeout: soon", 1) },
			13, "yaml", "not a duration"},
		{"terminal of unknown merchant", func(s string) string { return strings.Replace(s, "merchant: M1", "merchant: M9", 1) },
			27, "terminals[0].merchant", "unknown merchant"},
		{"fee out of range", func(s string) string { return strings.Replace(s, "fee_bp: 45", "fee_bp: 20000", 1) },
			22, "merchants[0].fee_bp", "basis points"},
		{"non-digit prefix", func(s string) string { return strings.Replace(s, `prefix: "4761"`, `prefix: "47A1"`, 1) },
			15, "routes[0].prefix", "digits"},
		{"broken yaml", func(s string) string { return strings.Replace(s, "  - id: M2", "  - id: [M2", 1) },
			0, "yaml", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ce, err := parseError(t, "switch.yaml", c.edit(good))
			if ce.File != "switch.yaml" || ce.Key != c.key || (c.line > 0 && ce.Line != c.line) || ce.Line == 0 {
				t.Errorf("got %q (line %d key %q), want line %d key %q", err, ce.Line, ce.Key, c.line, c.key)
			}
			if !strings.Contains(ce.Reason, c.inError) {
				t.Errorf("reason %q does not say %q", ce.Reason, c.inError)
			}
			if !strings.HasPrefix(err.Error(), "switch.yaml:") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}
