package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/switch/config"
)

// nodeHead starts every node file of these tests: the node, its database (owner_url runs the
// migrations) and one listener on a free port speaking dialect.
func nodeHead(db pgtest.DB, dialect string) string {
	return fmt.Sprintf(`node:
  acquirer_id: "10000000001"
database:
  url: %q
  owner_url: %q
listeners:
  - name: t
    address: 127.0.0.1:0
    dialect: %s
`, db.App, db.Owner, dialect)
}

// parseNodeConfig parses a node file the test expects to load.
func parseNodeConfig(t *testing.T, file, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(file, []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

// standInConfig is a node with two issuers, stand-in enabled for bank-b only when standIn is true.
func standInConfig(t *testing.T, db pgtest.DB, standIn bool) *config.Config {
	t.Helper()
	return parseNodeConfig(t, "switch.yaml", nodeHead(db, "iso87a")+fmt.Sprintf(`issuers:
  - id: bank-a
    endpoints: [127.0.0.1:1]
  - id: bank-b
    endpoints: [127.0.0.1:2]
    stand_in:
      enabled: %v
      currency: "156"
      max_amount: 50000
      floor_amount: 10000
      daily_amount_per_card: 100000
      daily_count_per_card: 5
routes:
  - prefix: "622609"
    issuer: bank-a
merchants:
  - id: MERCHANT0000001
terminals:
  - id: TERM0001
    merchant: MERCHANT0000001
`, standIn))
}

// Stand-in needs the HSM's keyed PAN digest and PAN vault, which only the in-process HSM offers: a
// node given neither (a remote HSM) or only one refuses to open, naming the file, the issuer, what
// is missing and why; with both, or without stand-in, it opens.
func TestOpenRefusesStandInWithoutTheHSMsDigestAndVault(t *testing.T) {
	db := pgtest.NewDatabase(t)
	h := hsm.NewDevelopment()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		name    string
		standIn bool
		parts   Parts
		missing []string // what the error names; nil: Open succeeds
	}{
		{"remote HSM", true, Parts{}, []string{"digest", "vault"}},
		{"no vault", true, Parts{Digest: h}, []string{"vault"}},
		{"no digest", true, Parts{Vault: h}, []string{"digest"}},
		{"in-process HSM", true, Parts{HSM: h, Digest: h, Vault: h}, nil},
		{"no stand-in", false, Parts{}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := Open(ctx, standInConfig(t, db, c.standIn), c.parts, zaptest.NewLogger(t))
			if c.missing == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				st.Close()
				return
			}
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			for _, want := range append([]string{"switch.yaml:", "issuers[1].stand_in", "issuer bank-b", "remote HSM"}, c.missing...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %q", msg, want)
				}
			}
			for _, w := range []string{"digest", "vault"} {
				if !strings.Contains(strings.Join(c.missing, " "), w) && strings.Contains(msg, "PAN "+w) {
					t.Errorf("error %q names the %s, which was given", msg, w)
				}
			}
		})
	}
}
