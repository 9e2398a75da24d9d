// Package integration drives the whole switch over real TCP against a real PostgreSQL, the real HSM
// code and the issuer simulators, the way a terminal estate would.
package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/hsm/service"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/issuersim/issuersimtest"
	"github.com/poswitch/poswitch/simulator/keyceremony"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/node"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// stack is one running estate: database, issuers, switch.
type stack struct {
	t         *testing.T
	db        pgtest.DB
	issuers   map[string]*issuersim.Server
	node      *node.Stack
	terminals []terminalsim.Terminal
	logs      *observer.ObservedLogs
	yaml      string
	keys      *keyceremony.Estate
	hsm       *hsm.HSM
	appURL    string
	// metricsAddr is the node's Prometheus endpoint (stackOptions.metrics), "" when off.
	metricsAddr string

	// secondaries are the secondary endpoints' issuer-sims (stackOptions.secondary), by issuer.
	secondaries map[string]*issuersim.Server
}

type stackOptions struct {
	terminals     int
	issuerTimeout time.Duration
	echoInterval  time.Duration
	dialects      []string // one listener per dialect, named after it
	tpdu          bool
	issuerLatency time.Duration
	// pinPads gives terminals (by index) a PIN pad kind from keyceremony; the switch then runs an
	// in-process HSM, and the issuers verify PINs with HSMs of their own.
	pinPads map[int]string
	// remoteHSM puts the switch's HSM behind `hsm serve` over TCP instead of in-process.
	remoteHSM bool
	// appURL rewrites the database URL the switch books through (to put a proxy in the way).
	appURL func(string) string
	// issuerFaults are the faults an issuer-sim (by issuer ID) starts with.
	issuerFaults map[string]issuersim.Faults
	// secondary starts a second issuer-sim per issuer, listed as its secondary endpoint.
	secondary bool
	// safRetryBase, safRetryMax and safPollInterval set the saf: section when not zero.
	safRetryBase, safRetryMax, safPollInterval time.Duration
	// vault runs an in-process HSM when there are no PIN pads, for the keyed PAN digest (stand-in
	// counters, card limits) and the PAN vault (field 2 of queued advices).
	vault bool
	// standIn is the stand_in section of issuers (by ID); an issuer not listed has stand-in off.
	standIn map[string]config.StandIn
	// metrics serves the node's Prometheus endpoint on a free port (stack.metricsAddr).
	metrics bool

	// Hooks for the tests of one way of paying (each test file keeps its own parts):
	// before runs after the issuer-sims start and before the configuration is written (start a
	// wallet-sim there); issuerSim edits an issuer-sim's configuration before it starts;
	// issuerYAML and terminalYAML return lines appended to an issuer's or a terminal's entry
	// (4-space indented); yamlEdit rewrites the whole file last (add issuers, routes, channels:).
	before       func(s *stack)
	issuerSim    func(s *stack, id string, c *issuersim.Config)
	issuerYAML   func(s *stack, id string) string
	terminalYAML func(s *stack, t terminalsim.Terminal) string
	yamlEdit     func(s *stack, yaml string) string
}

// startStack starts issuer-sims for bank-a and bank-b, a switch routing the catalogue's BINs to them,
// and a fresh ledger database. Everything stops at the end of the test.
func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	if o.terminals == 0 {
		o.terminals = 8
	}
	if o.issuerTimeout == 0 {
		o.issuerTimeout = 3 * time.Second
	}
	if o.echoInterval == 0 {
		o.echoInterval = 500 * time.Millisecond
	}
	if len(o.dialects) == 0 {
		o.dialects = []string{"iso87a"}
	}
	s := &stack{t: t, db: pgtest.NewDatabase(t), issuers: map[string]*issuersim.Server{},
		secondaries: map[string]*issuersim.Server{}, terminals: terminalsim.DefaultTerminals(o.terminals)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var parts node.Parts
	if o.pinPads != nil {
		s.hsm = hsm.NewDevelopment()
		kinds := map[string]string{}
		for i, kind := range o.pinPads {
			kinds[s.terminals[i].TID] = kind
		}
		var err error
		if s.keys, err = keyceremony.Run(ctx, s.hsm, []string{cards.BankA, cards.BankB}, kinds); err != nil {
			t.Fatal(err)
		}
		parts = node.Parts{HSM: s.hsm, Digest: s.hsm, Vault: s.hsm}
		if o.remoteHSM {
			srv, err := service.NewServer(s.hsm, service.Config{})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			sctx, stop := context.WithCancel(context.Background())
			served := make(chan struct{})
			go func() { srv.Serve(sctx, ln); close(served) }()
			t.Cleanup(func() { stop(); <-served })
			client, err := service.Dial(ctx, ln.Addr().String(), service.ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { client.Close() })
			parts = node.Parts{HSM: client}
		}
	}
	if o.pinPads == nil && o.vault {
		s.hsm = hsm.NewDevelopment()
		parts = node.Parts{Digest: s.hsm, Vault: s.hsm}
	}
	for _, id := range []string{cards.BankA, cards.BankB} {
		ic := issuersim.Config{IssuerID: id, Latency: o.issuerLatency, Faults: o.issuerFaults[id]}
		if s.keys != nil {
			ic.PIN = s.keys.Issuers[id].PIN
		}
		if o.issuerSim != nil {
			o.issuerSim(s, id, &ic)
		}
		s.issuers[id] = issuersimtest.Start(t, ic)
		if o.secondary {
			s.secondaries[id] = issuersimtest.Start(t, ic)
		}
	}
	if o.appURL != nil {
		s.appURL = o.appURL(s.db.App)
	} else {
		s.appURL = s.db.App
	}
	if o.metrics {
		ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the node to listen on
		if err != nil {
			t.Fatal(err)
		}
		s.metricsAddr = ln.Addr().String()
		ln.Close()
	}
	if o.before != nil {
		o.before(s)
	}
	s.yaml = s.configYAML(o)
	if o.yamlEdit != nil {
		s.yaml = o.yamlEdit(s, s.yaml)
	}
	cfg, err := config.Parse("integration.yaml", []byte(s.yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, s.yaml)
	}
	core, logs := observer.New(zap.DebugLevel)
	s.logs = logs
	log := zap.New(core)
	st, err := node.Open(ctx, cfg, parts, log)
	if err != nil {
		t.Fatal(err)
	}
	s.node = st
	t.Cleanup(st.Close)
	if err := st.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.WaitForLinks(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stack) configYAML(o stackOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  acquirer_id: \"10000000001\"\n")
	if s.metricsAddr != "" {
		fmt.Fprintf(&b, "  metrics: %s\n", s.metricsAddr)
	}
	fmt.Fprintf(&b, "database:\n  url: %q\n  owner_url: %q\n", s.appURL, s.db.Owner)
	b.WriteString("listeners:\n")
	for _, d := range o.dialects {
		fmt.Fprintf(&b, "  - name: %s\n    address: 127.0.0.1:0\n    dialect: %s\n    tpdu: %v\n", d, d, o.tpdu)
	}
	b.WriteString("issuers:\n")
	for _, id := range []string{cards.BankA, cards.BankB} {
		endpoints := s.issuers[id].Addr()
		if sec := s.secondaries[id]; sec != nil {
			endpoints += ", " + sec.Addr()
		}
		fmt.Fprintf(&b, "  - id: %s\n    endpoints: [%s]\n    connections_per_endpoint: 2\n    timeout: %s\n    echo_interval: %s\n    reconnect_wait: 50ms\n    max_reconnect_wait: 500ms\n",
			id, endpoints, o.issuerTimeout, o.echoInterval)
		if s.keys != nil {
			fmt.Fprintf(&b, "    zpk: %q\n", string(s.keys.Issuers[id].SwitchZPK))
		}
		if r, ok := o.standIn[id]; ok {
			fmt.Fprintf(&b, "    stand_in:\n      enabled: %v\n      currency: %q\n      max_amount: %d\n      floor_amount: %d\n      daily_amount_per_card: %d\n      daily_count_per_card: %d\n",
				r.Enabled, r.Currency, r.MaxAmount, r.FloorAmount, r.DailyAmountPerCard, r.DailyCountPerCard)
		}
		if o.issuerYAML != nil {
			b.WriteString(o.issuerYAML(s, id))
		}
	}
	if o.safRetryBase != 0 || o.safRetryMax != 0 || o.safPollInterval != 0 {
		b.WriteString("saf:\n")
		for _, kv := range []struct {
			key string
			d   time.Duration
		}{{"retry_base", o.safRetryBase}, {"retry_max", o.safRetryMax}, {"poll_interval", o.safPollInterval}} {
			if kv.d != 0 {
				fmt.Fprintf(&b, "  %s: %s\n", kv.key, kv.d)
			}
		}
	}
	b.WriteString("routes:\n")
	routes := cards.Routes()
	prefixes := make([]string, 0, len(routes))
	for p := range routes {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		fmt.Fprintf(&b, "  - prefix: %q\n    issuer: %s\n", p, routes[p])
	}
	b.WriteString("merchants:\n")
	seen := map[string]bool{}
	for i, t := range s.terminals {
		if seen[t.MID] {
			continue
		}
		seen[t.MID] = true
		fee := ""
		if i == 0 {
			fee = "\n    fee_bp: 45" // one merchant with an override
		}
		fmt.Fprintf(&b, "  - id: %s\n    name: Shop %d\n    currencies: [\"156\", \"840\"]%s\n", t.MID, i, fee)
	}
	b.WriteString("terminals:\n")
	for _, t := range s.terminals {
		fmt.Fprintf(&b, "  - id: %s\n    merchant: %s\n", t.TID, t.MID)
		if o.terminalYAML != nil {
			b.WriteString(o.terminalYAML(s, t))
		}
		if s.keys == nil {
			continue
		}
		if k, ok := s.keys.Terminals[t.TID]; ok && k.SwitchTPK != "" {
			fmt.Fprintf(&b, "    tpk: %q\n", string(k.SwitchTPK))
		} else if ok {
			fmt.Fprintf(&b, "    bdk: %q\n", string(k.SwitchBDK))
		}
	}
	return b.String()
}

// feeBP is the fee rule the configuration gives a merchant.
func (s *stack) feeBP(mid string) int64 {
	if mid == s.terminals[0].MID {
		return 45
	}
	return 60
}

// dial connects a terminal to a listener.
func (s *stack) dial(listener, dialect string, tpdu bool) *terminalsim.Client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := terminalsim.Dial(ctx, s.node.ListenerAddr(listener), dialect, tpdu)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// halfUpFee is the fee rule written out independently of the ledger's code.
func halfUpFee(amount, bp int64) int64 {
	return (amount*bp + 5000) / 10000
}
