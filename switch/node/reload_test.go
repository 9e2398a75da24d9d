package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/limits"
	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/txn"
)

// noBooking stands where the ledger would: Reload never books, and nothing here sends traffic.
type noBooking struct{}

func (noBooking) Book(context.Context, *txn.Transaction) (pipeline.Booked, error) {
	return pipeline.Booked{}, errors.New("reload tests book nothing")
}

const reloadBase = `database:
  url: postgres://app@127.0.0.1:1/poswitch
listeners:
  - name: pos
    address: 127.0.0.1:0
    dialect: iso87a
issuers:
  - id: bank-a
    endpoints: [127.0.0.1:1, 127.0.0.1:2]
  - id: cup
    endpoints: [127.0.0.1:3]
merchants:
  - id: M1
terminals:
  - id: T1
    merchant: M1
routes:
  - prefix: "62"
    issuer: bank-a
`

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newReloadNode(t *testing.T) (*Node, string, *observer.ObservedLogs) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switch.yaml")
	writeConfig(t, path, reloadBase)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	n, err := New(cfg, Options{Log: zap.New(core), Booker: noBooking{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n, path, logs
}

func route(t *testing.T, n *Node, pan string) string {
	t.Helper()
	is, _ := n.router.Lookup(pan)
	return is
}

func TestReloadSwapsRoutesAndLimitsAndLeavesTheRestForARestart(t *testing.T) {
	n, path, logs := newReloadNode(t)
	if got := route(t, n, "6221260000000003"); got != "bank-a" {
		t.Fatalf("before: %q", got)
	}
	next := strings.Replace(reloadBase, "address: 127.0.0.1:0", "address: 127.0.0.1:9999", 1) + `  - range: "622126-622925"
    issuer: cup
limits:
  terminals:
    - id: T1
      currency: "156"
      daily_count: 1
`
	writeConfig(t, path, next)
	if err := n.Reload(path); err != nil {
		t.Fatal(err)
	}
	if got := route(t, n, "6221260000000003"); got != "cup" {
		t.Errorf("after reload the range route gives %q, want cup", got)
	}
	if got := route(t, n, "6200000000000000"); got != "bank-a" {
		t.Errorf("after reload the prefix route gives %q, want bank-a", got)
	}
	r := limits.Request{Merchant: "M1", Terminal: "T1", Currency: "156", Amount: 1}
	if _, d := n.limiter.Reserve(r); d != nil {
		t.Fatalf("first purchase declined: %v", d)
	}
	if _, d := n.limiter.Reserve(r); d == nil || d.Kind != limits.KindDailyCount {
		t.Errorf("reloaded daily count of 1 not in force: %v", d)
	}
	if got := n.cfg.Listeners[0].Address; got != "127.0.0.1:0" {
		t.Errorf("listener address %s taken without a restart", got)
	}
	warned := logs.FilterMessageSnippet("need a restart").All()
	if len(warned) != 1 {
		t.Fatalf("%d restart warnings, want 1", len(warned))
	}
	if got, ok := warned[0].ContextMap()["sections"].([]any); !ok || len(got) != 1 || got[0] != "listeners" {
		t.Errorf("sections needing a restart %v, want [listeners]", warned[0].ContextMap()["sections"])
	}
}

func TestReloadOfABadFileKeepsWhatIsInForceAndNamesTheLine(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"overlapping ranges", reloadBase + `  - range: "622126-622925"
    issuer: cup
  - range: "622900-622999"
    issuer: bank-a
`, "switch.yaml:22: routes[2].range: 622900-622999 overlaps 622126-622925"},
		{"route to an issuer the node does not run", strings.Replace(reloadBase, "  - id: cup\n    endpoints: [127.0.0.1:3]\n",
			"  - id: cup\n    endpoints: [127.0.0.1:3]\n  - id: new-bank\n    endpoints: [127.0.0.1:4]\n", 1) + `  - prefix: "9"
    issuer: new-bank
`, `switch.yaml:23: routes[1].issuer: issuer "new-bank" has no link in the running node`},
		{"limit of an unknown terminal", reloadBase + `limits:
  terminals:
    - id: T9
      daily_count: 1
      currency: "156"
`, `switch.yaml:22: limits.terminals[0].id: unknown terminal "T9"`},
		{"typo", strings.Replace(reloadBase, `prefix: "62"`, `prefx: "62"`, 1), "switch.yaml:18: routes[0].prefx: unknown key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, path, _ := newReloadNode(t)
			policy := n.limiter.Policy()
			writeConfig(t, path, c.file)
			err := n.Reload(path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), path+":") {
				t.Errorf("error %q does not start with the file", err)
			}
			if got := route(t, n, "6221260000000003"); got != "bank-a" {
				t.Errorf("routes changed by a refused file: %q", got)
			}
			if n.limiter.Policy() != policy {
				t.Errorf("limits changed by a refused file")
			}
		})
	}
}
