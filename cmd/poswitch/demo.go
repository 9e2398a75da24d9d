package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger/pgcluster"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/simulator/walletsim"
)

func init() { register(newDemoCmd) }

// Bounds of the demo's traffic.
const (
	demoMaxInFlight        = 256              // purchases in flight at once; beyond it a tick is skipped
	demoPurchaseTimeout    = 10 * time.Second // per purchase: longer than the issuer timeout (5s)
	demoProgressInterval   = 500 * time.Millisecond
	demoPlainProgressEvery = 5 * time.Second // progress as ordinary lines when stdout is not a terminal
	demoReceiptsUpToRate   = 50.0            // receipts are on by default up to this rate
	demoMaxLatencyTracked  = time.Minute
	demoTerminalsPerLane   = 4 // one merchant (four terminals) per listener
	demoShutdownTimeout    = 30 * time.Second
	// demoIssuerTimeout is short so the dropped answers of --issuer-drop show as 91 and reversals
	// within a second rather than five.
	demoIssuerTimeout = time.Second
)

// demoOptions are the flags of `poswitch demo`.
type demoOptions struct {
	Dir           string
	PGDir         string // "": <dir>/pg
	PGPort        int
	Database      string
	IssuerPort    int // bank-a; bank-b is the next port; 0: free ports
	SwitchPort    int // iso87a; iso87a-bb and iso87b follow; 0: free ports
	IssuerLatency time.Duration
	Rate          float64
	Receipts      bool
	LogLevel      string
	Duration      time.Duration // 0: until SIGINT/SIGTERM
	Cards         string
	Seed          uint64
	// IssuerDrop is the share of bank-b's answers issuer-sim drops (fault injection): those purchases
	// time out at the switch, are answered 91 and are reversed through store-and-forward.
	IssuerDrop float64
	// PurchasesOnly leaves out the follow-ups (resends, reversals, voids, refunds) and the other
	// transactions (balance inquiry, pre-authorisation and completion, bill payment).
	PurchasesOnly bool
}

func newDemoCmd() *cobra.Command {
	o := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole stack on this machine with simulated terminals buying (what `make run` runs)",
		Long: `demo starts a private PostgreSQL cluster in <dir>/pg (created on first run, reused after), a
development LMK in <dir>/dev.lmk (generated on first run), issuer simulators for bank-a and bank-b,
and a switch node from the configuration it writes to <dir>/demo.yaml. Simulated terminals then buy
with a mix of test cards over the three terminal dialects, and each purchase prints as a one-line
receipt: approved or declined, and why. Ctrl-C stops the traffic, the switch, the issuers and the
database (if this run started it) and prints a summary per response code. See docs/demo.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("receipts") {
				o.Receipts = o.Rate <= demoReceiptsUpToRate
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			_, err := runDemo(ctx, o, cmd.OutOrStdout(), stop)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "var", "working directory: PostgreSQL cluster, LMK and demo.yaml live here")
	f.StringVar(&o.PGDir, "pg-dir", "", "PostgreSQL cluster directory (default <dir>/pg)")
	f.IntVar(&o.PGPort, "pg-port", 55432, "PostgreSQL port when this run starts the cluster (0: any free port)")
	f.StringVar(&o.Database, "database", pgcluster.DefaultDB, "ledger database in the cluster (kept across runs)")
	f.IntVar(&o.IssuerPort, "issuer-port", 9101, "port of issuer-sim bank-a; bank-b takes the next (0: free ports)")
	f.IntVar(&o.SwitchPort, "switch-port", 8583, "port of the iso87a listener; iso87a-bb and iso87b (TPDU) take the next two (0: free ports)")
	f.DurationVar(&o.IssuerLatency, "issuer-latency", 2*time.Millisecond, "issuer-sim think time per authorization")
	f.Float64Var(&o.Rate, "rate", 20, "purchases per second over all listeners")
	f.BoolVar(&o.Receipts, "receipts", true, fmt.Sprintf("print a receipt line per purchase (default: on up to %.0f/s)", demoReceiptsUpToRate))
	f.StringVar(&o.LogLevel, "log-level", "warn", "switch log level on the console: debug, info, warn, error")
	f.DurationVar(&o.Duration, "duration", 0, "stop by itself after this long, e.g. 30s (0: run until Ctrl-C)")
	f.StringVar(&o.Cards, "cards", "all", "test cards to buy with: all, issuer, load, bank-a, bank-b, a response code, or PANs")
	f.Uint64Var(&o.Seed, "seed", 0, "seed for card and amount choice (0: from the clock)")
	f.Float64Var(&o.IssuerDrop, "issuer-drop", 0.01, "share of bank-b's answers issuer-sim drops: those time out (91) and are reversed by store-and-forward")
	f.BoolVar(&o.PurchasesOnly, "purchases-only", false, "send purchases only (no resends, reversals, voids, refunds, balance inquiries, pre-authorisations, bill payments)")
	return cmd
}

// demoResult is what a demo run did, for its caller (the test reads it).
type demoResult struct {
	Summary    terminalsim.Summary // every answer of the ways (or every purchase without channels)
	PerLane    map[string]int64    // answered purchases per listener
	Booked     int64               // purchase entries the ledger booked during the run
	ConfigPath string
	Flows      map[string]map[string]int64 // other messages: type → response code → count
	SAF        string                      // the store-and-forward queue at the end, one line
	IssuerDrop float64                     // the fault injected
	// PurchaseApprovals are the approvals that book a purchase entry (cards, QR codes, orders).
	PurchaseApprovals int64
	// The ways of paying (Channels): per way, the channel figures, the signatures the ledger stored
	// during the run, and what each wallet-sim saw.
	Ways             map[string]wayStat
	Channels         channelStats
	SignaturesStored int64
	WalletStats      map[string]walletsim.Stats
}

// runDemo runs the demo until ctx ends or o.Duration passes. release is called once traffic has
// stopped, so that a second Ctrl-C during shutdown kills the process the ordinary way.
func runDemo(ctx context.Context, o demoOptions, out io.Writer, release func()) (res demoResult, err error) {
	if o.Rate <= 0 {
		return res, errors.New("demo: --rate must be positive")
	}
	dir, err := absDir(o.Dir)
	if err != nil {
		return res, err
	}
	pgDir := o.PGDir
	if pgDir == "" {
		pgDir = filepath.Join(dir, "pg")
	}
	// Setup messages (PostgreSQL start and stop) go to the console at info level.
	setupLog, err := newLogger("console", "info")
	if err != nil {
		return res, err
	}
	defer func() { _ = setupLog.Sync() }()

	fmt.Fprintf(out, "poswitch demo: PostgreSQL in %s, the switch, issuer simulators and terminals on this machine\n", pgDir)
	cluster, err := startPostgres(ctx, pgDir, o.PGPort, setupLog)
	if err != nil && o.PGPort != 0 && !portFree(o.PGPort) {
		// The default port sits in Linux's ephemeral range, so any client socket may hold it for a while.
		fmt.Fprintf(out, "port %d is taken; starting PostgreSQL on a free port instead\n", o.PGPort)
		cluster, err = startPostgres(ctx, pgDir, 0, setupLog)
	}
	if err != nil {
		return res, err
	}
	if cluster.StartedHere() {
		defer func() {
			if err := cluster.Stop(); err != nil {
				fmt.Fprintln(out, "demo: stopping PostgreSQL:", err)
			}
		}()
	}
	owner, app, err := ledgerDatabase(ctx, cluster, o.Database, false)
	if err != nil {
		return res, err
	}

	lmkPath := filepath.Join(dir, "dev.lmk")
	generated, err := ensureDevLMK(lmkPath)
	if err != nil {
		return res, err
	}
	if generated {
		fmt.Fprintf(out, "generated a development LMK in %s (never commit it; .gitignore keeps it out)\n", lmkPath)
	}

	spec := estateSpec{
		ConfigPath: filepath.Join(dir, "demo.yaml"), WrittenBy: "demo", OwnerURL: owner, AppURL: app, LMKFile: lmkPath,
		PINPads:     true,
		IssuerPorts: map[string]int{}, IssuerLatency: o.IssuerLatency, IssuerTimeout: demoIssuerTimeout,
		Terminals: terminalsim.DefaultTerminals(3 * demoTerminalsPerLane),
		LogFormat: "console", LogLevel: o.LogLevel,
		// The catalogue has JPY and KWD accounts too; the merchants take all four.
		Currencies: []string{cards.CNY, cards.USD, cards.JPY, cards.KWD},
		// Every way of paying, unless only plain purchases are asked for.
		Channels: !o.PurchasesOnly, WalletPorts: map[string]int{},
	}
	for i, id := range estateIssuers {
		if o.IssuerPort != 0 {
			spec.IssuerPorts[id] = o.IssuerPort + i
		}
	}
	if o.IssuerPort != 0 {
		// The wallets take the ports after the issuers, and the order notifications the one after.
		for i, w := range estateWallets {
			spec.WalletPorts[w.id] = o.IssuerPort + len(estateIssuers) + i
		}
		spec.NotifyPort = o.IssuerPort + len(estateIssuers) + len(estateWallets)
	}
	for i, l := range []listenerSpec{
		{Name: "iso87a", Dialect: "iso87a"},
		{Name: "iso87a-bb", Dialect: "iso87a-bb"},
		{Name: "iso87b", Dialect: "iso87b", TPDU: true},
	} {
		if o.SwitchPort != 0 {
			l.Port = o.SwitchPort + i
		}
		spec.Listeners = append(spec.Listeners, l)
	}
	est, err := startEstate(ctx, spec)
	if err != nil {
		return res, err
	}
	defer est.Close()
	res.ConfigPath = spec.ConfigPath
	res.IssuerDrop = o.IssuerDrop
	if o.IssuerDrop > 0 {
		if err := est.issuers["bank-b"].SetFaults(issuersim.Faults{DropShare: o.IssuerDrop, Seed: tr0Seed(o.Seed)}); err != nil {
			return res, fmt.Errorf("demo: --issuer-drop: %w", err)
		}
	}

	cs, err := cards.Selection(o.Cards)
	if err != nil {
		return res, err
	}
	tr := &demoTraffic{
		cards: cs, rate: o.Rate, receipts: o.Receipts, out: out, log: est.log, seed: o.Seed,
		perLane: map[string]int64{}, pads: est.pads(), mix: !o.PurchasesOnly,
	}
	if tr.seed == 0 {
		tr.seed = uint64(time.Now().UnixNano())
	}
	if spec.Channels {
		tr.kit = newDemoWays(cs, est)
		// A master-key terminal holds its secure element (the key ceremony loaded its TMK).
		for i := range spec.Terminals {
			if k := est.keys.Terminals[spec.Terminals[i].TID]; k.Keys != nil {
				spec.Terminals[i].Keys = k.Keys
			}
		}
	}
	for i, l := range spec.Listeners {
		lane := &demoLane{
			name: l.Name, dialect: l.Dialect, tpdu: l.TPDU, addr: est.stack.ListenerAddr(l.Name),
			terminals: spec.Terminals[i*demoTerminalsPerLane : (i+1)*demoTerminalsPerLane],
		}
		if spec.Channels {
			lane.signOn = func(ctx context.Context, c *terminalsim.Client) error { return tr.signOn(ctx, c, lane.terminals) }
		}
		tr.lanes = append(tr.lanes, lane)
	}

	fmt.Fprintf(out, "switch configuration: %s (a working example: poswitch switch --config %s)\n", spec.ConfigPath, spec.ConfigPath)
	for _, l := range tr.lanes {
		tpdu := ""
		if l.tpdu {
			tpdu = " with TPDU"
		}
		fmt.Fprintf(out, "  listener %-9s %-15s %s%s, terminals %s-%s of %s\n", l.name, l.addr, l.dialect, tpdu,
			l.terminals[0].TID, l.terminals[len(l.terminals)-1].TID, l.terminals[0].MID)
	}
	for _, id := range estateIssuers {
		faults := ""
		if f := est.issuers[id].Faults(); f.DropShare > 0 {
			faults = fmt.Sprintf(", drops %.1f%% of its answers (switch timeout %v: 91, then a 0420 reversal)", 100*f.DropShare, demoIssuerTimeout)
		}
		emv := ""
		if spec.Channels {
			emv = ", checks ARQCs and answers ARPCs"
		}
		fmt.Fprintf(out, "  issuer   %-9s %-15s issuer-sim, %v per authorization%s%s\n", id, est.issuers[id].Addr(), o.IssuerLatency, emv, faults)
	}
	for _, w := range estateWallets {
		if ws := est.wallets[w.id]; ws != nil {
			fmt.Fprintf(out, "  wallet   %-11s %-15s wallet-sim %s (%s)\n", w.id, ws.Addr(), ws.Wallet(), w.codes)
		}
	}
	if spec.Channels {
		fmt.Fprintf(out, "  orders   %s: wallets notify the switch of order payments here (MACed under their notify keys)\n", est.notifyAddr)
		var mac []string
		for _, t := range spec.Terminals {
			if t.Keys != nil && t.Keys.MAC != "" {
				mac = append(mac, t.TID+" "+t.Keys.MAC)
			}
		}
		fmt.Fprintf(out, "  keys     master-key terminals sign on per connection and MAC every request: %s\n", strings.Join(mac, ", "))
	}
	pin := "PIN translation: not wired into the switch yet, so purchases carry no PIN block"
	if est.pinWired {
		pin = "PIN translation: in-process HSM, LMK " + lmkPath + "; every other purchase carries a PIN (TPK, DUKPT TDES and AES pads)"
	}
	fmt.Fprintf(out, "  ledger   PostgreSQL 127.0.0.1:%d database %s; %s\n", cluster.Port, o.Database, pin)
	stopHow := "Ctrl-C stops everything"
	if o.Duration > 0 {
		stopHow = fmt.Sprintf("stops after %v or on Ctrl-C", o.Duration)
	}
	if tr.kit != nil {
		fmt.Fprintf(out, "paying at %.0f/s, the ways in turn: %s; with %d test cards (docs/test-cards.md); %s\n\n",
			o.Rate, strings.Join(tr.kit.order, ", "), len(cs), stopHow)
	} else {
		fmt.Fprintf(out, "buying at %.0f/s with %d test cards (docs/test-cards.md); %s\n\n", o.Rate, len(cs), stopHow)
	}

	trafficCtx := ctx
	if o.Duration > 0 {
		var cancel context.CancelFunc
		trafficCtx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	started := time.Now()
	tr.run(trafficCtx)
	if release != nil {
		release()
	}
	res.Summary, res.PerLane = tr.summary()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), demoShutdownTimeout)
	defer cancel()
	res.Booked, err = bookedPurchases(shutdownCtx, est, started)
	res.Flows = tr.flows
	tr.mu.Lock()
	res.PurchaseApprovals = tr.purchaseApprovals
	if tr.kit != nil {
		res.Ways = map[string]wayStat{}
		for name, w := range tr.wayStats {
			res.Ways[name] = *w
		}
		res.Channels = tr.ch
	}
	tr.mu.Unlock()
	if tr.kit != nil {
		res.WalletStats = map[string]walletsim.Stats{}
		for id, ws := range est.wallets {
			res.WalletStats[id] = ws.Stats()
		}
		if n, serr := storedSignatures(shutdownCtx, est, started); serr == nil {
			res.SignaturesStored = n
		} else {
			fmt.Fprintln(out, "demo:", serr)
		}
	}
	res.SAF = safLine(shutdownCtx, est)
	fmt.Fprintln(out)
	printDemoSummary(out, res, err)
	return res, nil
}

// storedSignatures counts the e-signatures the ledger stored since start.
func storedSignatures(ctx context.Context, est *estate, since time.Time) (int64, error) {
	var n int64
	if err := est.stack.Pool.QueryRow(ctx, `SELECT count(*) FROM signature WHERE received_at >= $1`, since).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting stored signatures: %w", err)
	}
	return n, nil
}

// bookedPurchases counts the purchase entries the ledger booked since start.
func bookedPurchases(ctx context.Context, est *estate, since time.Time) (int64, error) {
	var n int64
	err := est.stack.Pool.QueryRow(ctx,
		`SELECT count(*) FROM journal_entry WHERE kind = 'purchase' AND status = 'booked' AND booked_at >= $1`,
		since).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting booked purchases: %w", err)
	}
	return n, nil
}

func printDemoSummary(out io.Writer, res demoResult, ledgerErr error) {
	s := res.Summary
	what, expected := "purchases", "catalogue"
	if len(res.Ways) > 0 {
		what, expected = "payment requests", "expected"
	}
	fmt.Fprintf(out, "demo summary: %d %s sent, %d answered in %.1fs (%.1f/s); latency p50 %v p99 %v p99.9 %v\n",
		s.Sent, what, s.Answered, s.Elapsed.Seconds(), s.Rate(), s.Percentile(50), s.Percentile(99), s.Percentile(99.9))
	codes := make([]string, 0, len(s.Codes))
	for c := range s.Codes {
		codes = append(codes, c)
	}
	for c := range s.Expected {
		if _, ok := s.Codes[c]; !ok {
			codes = append(codes, c)
		}
	}
	sort.Strings(codes)
	fmt.Fprintf(out, "  %-4s %-40s %8s %10s\n", "code", "meaning", "answered", expected)
	for _, c := range codes {
		fmt.Fprintf(out, "  %-4s %-40s %8d %10d\n", c, demoMeaning(c), s.Codes[c], s.Expected[c])
	}
	lanes := make([]string, 0, len(res.PerLane))
	for l, n := range res.PerLane {
		lanes = append(lanes, fmt.Sprintf("%s %d", l, n))
	}
	sort.Strings(lanes)
	fmt.Fprintf(out, "  per listener: %s\n", strings.Join(lanes, ", "))
	fmt.Fprintf(out, "  answers differing from the %s: %d; timeouts %d; errors %d\n", expected, s.Mismatches, s.Timeouts, s.Errors)
	if n := s.Codes["91"]; n > 0 && res.IssuerDrop > 0 {
		fmt.Fprintf(out, "  (91 ×%d: bank-b's answers dropped by issuer-sim, --issuer-drop %.2f; each timed-out request is reversed by store-and-forward)\n", n, res.IssuerDrop)
	}
	printWays(out, res)
	printFlows(out, res.Flows)
	if res.SAF != "" {
		fmt.Fprintf(out, "  store-and-forward: %s\n", res.SAF)
	}
	if ledgerErr != nil {
		fmt.Fprintf(out, "  ledger: %v\n", ledgerErr)
	} else {
		fmt.Fprintf(out, "  ledger: %d purchases booked in PostgreSQL during the run, %d purchase approvals answered\n", res.Booked, res.PurchaseApprovals)
	}
}

// demoLane is one listener and the terminals that use it, over one connection.
type demoLane struct {
	name, dialect, addr string
	tpdu                bool
	terminals           []terminalsim.Terminal
	// signOn runs on each new connection before any traffic: the master-key terminals download
	// their working keys and MAC from then on (nil: none).
	signOn func(ctx context.Context, c *terminalsim.Client) error

	mu     sync.Mutex
	client *terminalsim.Client
}

// conn returns the lane's connection, dialling again if it dropped.
func (l *demoLane) conn(ctx context.Context) (*terminalsim.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		select {
		case <-l.client.Done():
			_ = l.client.Close()
			l.client = nil
		default:
			return l.client, nil
		}
	}
	c, err := terminalsim.Dial(ctx, l.addr, l.dialect, l.tpdu)
	if err != nil {
		return nil, err
	}
	if l.signOn != nil {
		if err := l.signOn(ctx, c); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	l.client = c
	return c, nil
}

func (l *demoLane) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		_ = l.client.Close()
		l.client = nil
	}
}

// demoTraffic paces purchases over the lanes, round robin, and prints receipts and progress. It is
// the demo's own driver rather than terminalsim.Run so that three dialects share one progress line
// and one receipt stream.
type demoTraffic struct {
	lanes    []*demoLane
	cards    []cards.Card
	rate     float64
	receipts bool
	out      io.Writer
	log      *zap.Logger
	seed     uint64

	start    time.Time
	stanBase int64
	stans    sync.Map // TID → *atomic.Int64

	mu      sync.Mutex // guards sum and perLane
	sum     terminalsim.Summary
	perLane map[string]int64
	pads    map[string]terminalsim.PINPad // by terminal ID
	mix     bool                          // follow-ups and other transactions besides purchases
	flows   map[string]map[string]int64   // guarded by mu; see demo_flows.go
	// kit is the ways of paying the beats rotate through (nil: plain purchases); wayStats, ch and
	// purchaseApprovals are guarded by mu (demo_ways.go).
	kit               *demoWays
	wayStats          map[string]*wayStat
	ch                channelStats
	purchaseApprovals int64

	outMu   sync.Mutex
	tty     bool
	lastLen int
}

func (tr *demoTraffic) run(ctx context.Context) {
	tr.start = time.Now()
	// Terminals keep their STAN across sessions; starting where the clock says keeps two demo runs in
	// the same second from repeating each other's STANs.
	tr.stanBase = time.Now().UnixMicro() % 999_999
	tr.sum = terminalsim.Summary{Codes: map[string]int64{}, Expected: map[string]int64{},
		Latency: hdrhistogram.New(1, demoMaxLatencyTracked.Microseconds(), 3)}
	if f, ok := tr.out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tr.tty = true
		}
	}
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	progressWG.Add(1)
	go func() { defer progressWG.Done(); tr.progress(progressDone) }()

	rng := rand.New(rand.NewPCG(tr.seed, 0x5eed))
	tick := time.NewTicker(time.Duration(float64(time.Second) / tr.rate))
	defer tick.Stop()
	slots := make(chan struct{}, demoMaxInFlight)
	var wg sync.WaitGroup
	k := 0 // payments of the ways so far
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // the switch is not keeping up: skip a beat rather than queue without bound
		}
		lane := tr.lanes[i%len(tr.lanes)]
		t := lane.terminals[(i/len(tr.lanes))%len(lane.terminals)]
		if tr.kit != nil && len(tr.kit.order) > 0 && (!tr.mix || i%demoOtherEvery != demoOtherEvery-1) {
			way := tr.kit.order[k%len(tr.kit.order)]
			n := k / len(tr.kit.order)
			k++
			beat := rand.New(rand.NewPCG(tr.seed, uint64(i)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				tr.pay(context.WithoutCancel(ctx), lane, t, way, n, beat)
			}()
			continue
		}
		card := tr.cards[rng.IntN(len(tr.cards))]
		lo, hi := cards.StandardAmountRange[0], cards.StandardAmountRange[1]
		amount := lo + rng.Int64N(hi-lo+1)
		if tr.mix && i%demoOtherEvery == demoOtherEvery-1 {
			turn := i / demoOtherEvery
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				tr.other(context.WithoutCancel(ctx), lane, t, card, amount, turn)
			}()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			// A purchase already sent is seen through even after Ctrl-C, so every one is counted.
			tr.purchase(context.WithoutCancel(ctx), lane, t, card, amount)
		}()
	}
	wg.Wait()
	close(progressDone)
	progressWG.Wait()
	for _, l := range tr.lanes {
		l.close()
	}
	tr.mu.Lock()
	tr.sum.Elapsed = time.Since(tr.start)
	tr.mu.Unlock()
}

func (tr *demoTraffic) nextSTAN(tid string) int {
	v, _ := tr.stans.LoadOrStore(tid, new(atomic.Int64))
	return int((tr.stanBase+v.(*atomic.Int64).Add(1)-1)%999_999) + 1
}

func (tr *demoTraffic) purchase(ctx context.Context, lane *demoLane, t terminalsim.Terminal, card cards.Card, amount int64) {
	ctx, cancel := context.WithTimeout(ctx, demoPurchaseTimeout)
	defer cancel()
	tr.mu.Lock()
	tr.sum.Sent++
	tr.sum.Expected[card.Outcome]++
	tr.mu.Unlock()
	c, err := lane.conn(ctx)
	if err != nil {
		tr.mu.Lock()
		tr.sum.Errors++
		tr.mu.Unlock()
		tr.log.Warn("demo terminal cannot connect", zap.String("listener", lane.name), zap.Error(err))
		return
	}
	stan := tr.nextSTAN(t.TID)
	req := terminalsim.NewPurchase(t, card, amount, "", stan)
	// Every other purchase of a terminal is PIN-verified: its PIN pad (TPK, DUKPT TDES or DUKPT AES)
	// encrypts the card's PIN, the switch translates it to the issuer's zone key, the issuer verifies it.
	if pad := tr.pads[t.TID]; pad != nil && card.PIN != "" && stan%2 == 0 {
		if err := terminalsim.WithPIN(ctx, req, pad, card.PAN, card.PIN); err != nil {
			tr.log.Warn("demo PIN pad", zap.String("tid", t.TID), zap.Error(err))
		}
	}
	start := time.Now()
	resp, err := c.Send(ctx, req)
	took := time.Since(start)
	tr.mu.Lock()
	switch {
	case err == nil:
		code, _ := resp.GetString(39)
		tr.sum.Answered++
		tr.sum.Codes[code]++
		tr.perLane[lane.name]++
		if code != card.Outcome {
			tr.sum.Mismatches++
		}
		if code == cards.Approved {
			tr.purchaseApprovals++
		}
		_ = tr.sum.Latency.RecordValue(max(took.Microseconds(), 1))
	case errors.Is(err, context.DeadlineExceeded):
		tr.sum.Timeouts++
	default:
		tr.sum.Errors++
	}
	tr.mu.Unlock()
	if err != nil {
		tr.log.Warn("demo purchase failed", zap.String("listener", lane.name), zap.String("tid", t.TID), zap.Error(err))
		return
	}
	if code, _ := resp.GetString(39); tr.mix && code == cards.Approved {
		tr.followUp(ctx, lane, t, card, req, resp)
	}
	// Plain purchases print their receipt; their signatures are not uploaded (--purchases-only
	// sends purchases and nothing else).
	tr.slip(ctx, c, lane, t, "", req, resp, took, false)
}

// summary is a copy of what the traffic measured.
func (tr *demoTraffic) summary() (terminalsim.Summary, map[string]int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	lanes := make(map[string]int64, len(tr.perLane))
	for k, v := range tr.perLane {
		lanes[k] = v
	}
	return tr.sum, lanes
}

// write prints a receipt above the progress line.
func (tr *demoTraffic) write(s string) {
	tr.outMu.Lock()
	defer tr.outMu.Unlock()
	if tr.tty && tr.lastLen > 0 {
		fmt.Fprintf(tr.out, "\r%s\r", strings.Repeat(" ", tr.lastLen))
		tr.lastLen = 0
	}
	fmt.Fprint(tr.out, s)
}

func (tr *demoTraffic) progress(done <-chan struct{}) {
	every := demoProgressInterval
	if !tr.tty {
		every = demoPlainProgressEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			tr.outMu.Lock()
			if tr.tty && tr.lastLen > 0 {
				fmt.Fprintf(tr.out, "\r%s\r", strings.Repeat(" ", tr.lastLen))
				tr.lastLen = 0
			}
			tr.outMu.Unlock()
			return
		case <-tick.C:
		}
		tr.mu.Lock()
		s := tr.sum
		elapsed := time.Since(tr.start)
		codes := make([]string, 0, len(s.Codes))
		for c, n := range s.Codes {
			codes = append(codes, fmt.Sprintf("%s:%d", c, n))
		}
		line := fmt.Sprintf("%6.1fs sent %d answered %d %.1f/s p50 %v p99 %v timeouts %d errors %d | ",
			elapsed.Seconds(), s.Sent, s.Answered, float64(s.Answered)/elapsed.Seconds(),
			time.Duration(s.Latency.ValueAtQuantile(50))*time.Microsecond,
			time.Duration(s.Latency.ValueAtQuantile(99))*time.Microsecond, s.Timeouts, s.Errors)
		tr.mu.Unlock()
		sort.Strings(codes)
		line += strings.Join(codes, " ")
		tr.outMu.Lock()
		if tr.tty {
			pad := max(tr.lastLen-len(line), 0)
			fmt.Fprintf(tr.out, "\r%s%s", line, strings.Repeat(" ", pad))
			tr.lastLen = len(line)
		} else {
			fmt.Fprintf(tr.out, "-- %s\n", line)
		}
		tr.outMu.Unlock()
	}
}

// portFree says whether a loopback TCP port can be listened on now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
