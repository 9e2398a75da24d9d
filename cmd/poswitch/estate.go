package main

// estate.go is what `poswitch demo` and `poswitch bench` share: a private PostgreSQL cluster and a
// ledger database in it, a development LMK, the issuer simulators, and a switch node started from a
// configuration file this code writes and then loads like any other.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/pgcluster"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/keyceremony"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/simulator/walletsim"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/node"
)

// Bounds of starting an estate.
const (
	linksUpTimeout    = 30 * time.Second // issuer sign-ons after the node starts
	databaseSetupTime = 2 * time.Minute  // creating or dropping a database
)

// estateIssuers are the simulated issuers of the test-card catalogue, in port order.
var estateIssuers = []string{cards.BankA, cards.BankB}

// listenerSpec is one terminal listener of the generated configuration. Port 0 takes a free port.
type listenerSpec struct {
	Name    string
	Dialect string
	Port    int
	TPDU    bool
}

// estateSpec says what to start.
type estateSpec struct {
	ConfigPath string // where the generated configuration is written (and loaded from)
	WrittenBy  string // the subcommand, named in the file's header
	OwnerURL   string // database owner (migrations)
	AppURL     string // application role the switch books through
	LMKFile    string // the HSM's LMK; "" leaves the hsm section at its defaults

	IssuerPorts            map[string]int // issuer ID → port; 0 or absent: a free port
	IssuerLatency          time.Duration
	IssuerConnsPerEndpoint int           // 0: 2
	IssuerTimeout          time.Duration // 0: 5s
	// IssuerMaxRecords bounds the requests each issuer-sim remembers (issuersim.Config.MaxRecords);
	// 0: the simulator's default.
	IssuerMaxRecords int
	Listeners        []listenerSpec
	Terminals        []terminalsim.Terminal

	LogFormat, LogLevel string
	Metrics             string // Prometheus endpoint address; "": off
	// PINPads gives every terminal a PIN pad (needs LMKFile): keyceremony delivers TPKs and DUKPT BDKs
	// (TDES and AES, in turn) to them and ZPKs to the issuers, whose own HSMs verify the PINs.
	PINPads bool
	// Currencies the merchants accept (ISO 4217 numeric); nil: 156 and 840.
	Currencies []string
	// Channels turns on the ways of paying beyond a plain card read (needs PINPads): issuer-sims check
	// chip cryptograms and answer ARPCs, wallet-sims play Alipay, WeChat Pay and UnionPay QR behind
	// issuers marked wallet, merchant-presented QR orders and the Huabei biller are configured, and some
	// terminals hold a master key (key download at sign-on, MAC). Only the demo sets it: the bench keeps
	// its plain estate so that its figures stay comparable between runs.
	Channels bool
	// WalletPorts: wallet issuer ID → port; 0 or absent: a free port. NotifyPort is where the switch
	// hears of order payments; 0: a free port.
	WalletPorts map[string]int
	NotifyPort  int
}

// estate is a running switch with its issuer simulators.
type estate struct {
	cfg        *config.Config
	log        *zap.Logger
	issuers    map[string]*issuersim.Server
	wallets    map[string]*walletsim.Server // by issuer ID (Channels)
	notifyAddr string                       // channels.orders.notify_address (Channels)
	stack      *node.Stack
	closeParts func()
	pinWired   bool // the node was given a PIN translator (HSM)
	keys       *keyceremony.Estate
	closeOnce  sync.Once
}

// pads are the terminals' PIN pads by terminal ID (nil without PINPads).
func (e *estate) pads() map[string]terminalsim.PINPad {
	if e.keys == nil {
		return nil
	}
	return e.keys.Pads()
}

// padKinds cycles the terminals through the three kinds of PIN pad.
var padKinds = []string{keyceremony.TPK, keyceremony.DUKPTTDES, keyceremony.DUKPTAES}

// channelPadKinds adds the master-key terminals to the cycle when Channels is on: every fourth and
// fifth terminal downloads its working keys at sign-on and MACs with X9.19 or AES-CMAC.
var channelPadKinds = []string{keyceremony.TPK, keyceremony.DUKPTTDES, keyceremony.DUKPTAES, keyceremony.TMKX919, keyceremony.TMKAESCMAC}

// runKeyCeremony loads the switch's LMK into an HSM and establishes the estate's keys with it. It
// returns that HSM too: key blocks it makes are under the LMK the switch runs with.
func runKeyCeremony(ctx context.Context, spec estateSpec) (*keyceremony.Estate, *hsm.HSM, error) {
	lmk, err := hsm.LoadLMK(spec.LMKFile, "")
	if err != nil {
		return nil, nil, err
	}
	h, err := hsm.New(lmk)
	clear(lmk)
	if err != nil {
		return nil, nil, err
	}
	kinds := map[string]string{}
	cycle := padKinds
	if spec.Channels {
		cycle = channelPadKinds
	}
	for i, t := range spec.Terminals {
		kinds[t.TID] = cycle[i%len(cycle)]
	}
	keys, err := keyceremony.Run(ctx, h, estateIssuers, kinds)
	return keys, h, err
}

// startEstate starts the issuer simulators, writes the switch configuration to spec.ConfigPath,
// loads it back with config.Load, and starts a node from it the way `poswitch switch` does.
func startEstate(ctx context.Context, spec estateSpec) (_ *estate, err error) {
	log, err := newLogger(spec.LogFormat, spec.LogLevel)
	if err != nil {
		return nil, err
	}
	e := &estate{log: log, issuers: map[string]*issuersim.Server{}, wallets: map[string]*walletsim.Server{}, closeParts: func() {}}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if spec.Channels && (!spec.PINPads || spec.LMKFile == "") {
		return nil, errors.New("estate: channels need PIN pads and an LMK (chip keys, master keys, notify keys)")
	}
	var switchHSM *hsm.HSM
	if spec.PINPads && spec.LMKFile != "" {
		if e.keys, switchHSM, err = runKeyCeremony(ctx, spec); err != nil {
			return nil, fmt.Errorf("key ceremony: %w", err)
		}
	}
	var notifyKeys map[string]hsm.KeyBlock
	if spec.Channels {
		if notifyKeys, err = e.startWallets(ctx, spec, switchHSM); err != nil {
			return nil, err
		}
	}
	for _, id := range estateIssuers {
		ic := issuersim.Config{
			Addr: fmt.Sprintf("127.0.0.1:%d", spec.IssuerPorts[id]), IssuerID: id,
			Latency: spec.IssuerLatency, Log: log.Named("issuer-sim"), MaxRecords: spec.IssuerMaxRecords,
		}
		if e.keys != nil {
			ic.PIN = e.keys.Issuers[id].PIN
		}
		if spec.Channels {
			// Chip and tap requests carry an ARQC the issuer checks and answers with an ARPC.
			ic.EMV = e.keys.Issuers[id].EMV
		}
		srv, err := issuersim.New(ic)
		if err != nil {
			return nil, err
		}
		if err := srv.Start(); err != nil {
			return nil, err
		}
		e.issuers[id] = srv
	}
	if err := os.WriteFile(spec.ConfigPath, []byte(estateYAML(spec, e, notifyKeys)), 0o644); err != nil {
		return nil, fmt.Errorf("writing the switch configuration: %w", err)
	}
	if e.cfg, err = config.Load(spec.ConfigPath); err != nil {
		return nil, err
	}
	parts, closeParts, err := switchParts(ctx, e.cfg, log)
	if err != nil {
		return nil, err
	}
	e.closeParts = closeParts
	e.pinWired = parts.HSM != nil
	if e.stack, err = node.Open(ctx, e.cfg, parts, log); err != nil {
		return nil, err
	}
	if err := e.stack.Start(ctx); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, linksUpTimeout)
	defer cancel()
	if err := e.stack.WaitForLinks(wctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Close stops the node (in-flight transactions finish and are booked), the HSM parts and the issuers.
// It may be called more than once.
func (e *estate) Close() { e.closeOnce.Do(e.close) }

func (e *estate) close() {
	if e.stack != nil {
		e.stack.Close()
	}
	e.closeParts()
	for _, id := range estateIssuers {
		if s := e.issuers[id]; s != nil {
			if err := s.Close(); err != nil {
				e.log.Warn("closing issuer-sim", zap.String("issuer", id), zap.Error(err))
			}
		}
	}
	for _, w := range estateWallets {
		if s := e.wallets[w.id]; s != nil {
			if err := s.Close(); err != nil {
				e.log.Warn("closing wallet-sim", zap.String("wallet", w.id), zap.Error(err))
			}
		}
	}
	_ = e.log.Sync()
}

// estateYAML is the switch configuration of an estate, written for people to read: it is the working
// example `make run` points at.
func estateYAML(spec estateSpec, e *estate, notifyKeys map[string]hsm.KeyBlock) string {
	issuers, keys := e.issuers, e.keys
	connsPerEndpoint := spec.IssuerConnsPerEndpoint
	issuerTimeout := spec.IssuerTimeout
	if issuerTimeout == 0 {
		issuerTimeout = 5 * time.Second
	}
	if connsPerEndpoint == 0 {
		connsPerEndpoint = 2
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# poswitch switch configuration, written by `poswitch %s` at %s.\n", spec.WrittenBy, time.Now().Format(time.RFC3339))
	b.WriteString("# A complete, working example: `poswitch switch --config <this file>` runs the same node\n")
	if spec.Channels {
		b.WriteString("# (start PostgreSQL, the issuer and wallet simulators first). Keys: docs/configuration.md;\n")
		b.WriteString("# the ways of paying (channels, wallets, master keys): docs/channels.md.\n")
	} else {
		b.WriteString("# (start PostgreSQL and the issuer simulators first). Keys: docs/configuration.md.\n")
	}
	b.WriteString("node:\n  acquirer_id: \"10000000001\"   # field 32 on issuer links\n")
	fmt.Fprintf(&b, "  log_format: %s\n  log_level: %s\n", spec.LogFormat, spec.LogLevel)
	if spec.Metrics != "" {
		fmt.Fprintf(&b, "  metrics: %q\n", spec.Metrics)
	}
	b.WriteString("database:\n")
	fmt.Fprintf(&b, "  url: %q         # the application role; books through the group-commit writer\n", spec.AppURL)
	fmt.Fprintf(&b, "  owner_url: %q   # runs the migrations at start\n", spec.OwnerURL)
	b.WriteString("  batch_window: 0s   # group commit: each batch takes what queued during the previous commit\n  max_batch: 2000\n  max_connections: 8\n")
	if spec.LMKFile != "" {
		fmt.Fprintf(&b, "hsm:\n  mode: in-process\n  lmk_file: %q   # development LMK: never commit a real one\n", spec.LMKFile)
	}
	b.WriteString("listeners:\n")
	for _, l := range spec.Listeners {
		fmt.Fprintf(&b, "  - name: %s\n    address: 127.0.0.1:%d\n    dialect: %s\n    tpdu: %v\n", l.Name, l.Port, l.Dialect, l.TPDU)
	}
	b.WriteString("issuers:\n")
	for _, id := range estateIssuers {
		fmt.Fprintf(&b, "  - id: %s\n    endpoints: [%s]\n    connections_per_endpoint: %d\n    timeout: %v\n    echo_interval: 10s\n",
			id, issuers[id].Addr(), connsPerEndpoint, issuerTimeout)
		if keys != nil {
			fmt.Fprintf(&b, "    zpk: %q   # zone PIN key, a TR-31 block under the LMK\n", string(keys.Issuers[id].SwitchZPK))
		}
	}
	if spec.Channels {
		walletIssuersYAML(&b, e, notifyKeys, connsPerEndpoint, issuerTimeout)
	}
	b.WriteString("routes:   # longest prefix wins; BIN 300000 is deliberately unrouted (answered 15)\n")
	if spec.Channels {
		paymentCodeRoutesYAML(&b)
	}
	routes := cards.Routes()
	prefixes := make([]string, 0, len(routes))
	for p := range routes {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		fmt.Fprintf(&b, "  - prefix: %q\n    issuer: %s\n", p, routes[p])
	}
	currencies := spec.Currencies
	if len(currencies) == 0 {
		currencies = []string{"156", "840"}
	}
	b.WriteString("merchants:\n")
	seen := map[string]bool{}
	n := 0
	for _, t := range spec.Terminals {
		if seen[t.MID] {
			continue
		}
		seen[t.MID] = true
		n++
		fee := ""
		if n == 1 {
			fee = "\n    fee_bp: 45   # a negotiated rate; the others pay the default 60 bp (0.6%)"
		}
		fmt.Fprintf(&b, "  - id: %s\n    name: Test Shop %03d\n    mcc: \"5411\"\n    currencies: [%s]%s\n", t.MID, n, quotedList(currencies), fee)
	}
	b.WriteString("terminals:\n")
	for _, t := range spec.Terminals {
		fmt.Fprintf(&b, "  - id: %s\n    merchant: %s\n", t.TID, t.MID)
		if keys == nil {
			continue
		}
		switch k := keys.Terminals[t.TID]; {
		case k.SwitchTPK != "":
			fmt.Fprintf(&b, "    tpk: %q   # terminal PIN key\n", string(k.SwitchTPK))
		case k.SwitchBDK != "":
			fmt.Fprintf(&b, "    bdk: %q   # %s PIN pad: KSN in field 62\n", string(k.SwitchBDK), k.Kind)
		case k.SwitchTMK != "":
			fmt.Fprintf(&b, "    tmk: %q   # terminal master key: working keys come under it at sign-on\n", string(k.SwitchTMK))
			if k.MAC != "" {
				fmt.Fprintf(&b, "    mac: %s   # requests and answers carry a MAC (field 64/128)\n", k.MAC)
			}
		}
	}
	if spec.Channels {
		channelsYAML(&b, e.notifyAddr)
	}
	return b.String()
}

// quotedList is a YAML flow list of quoted strings.
func quotedList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// startPostgres starts (or reuses) the private cluster in dir. The caller stops it when
// StartedHere says this call started it.
func startPostgres(ctx context.Context, dir string, port int, log *zap.Logger) (*pgcluster.Cluster, error) {
	c, err := pgcluster.Start(ctx, dir, port, log)
	if err != nil {
		return nil, fmt.Errorf("starting PostgreSQL in %s: %w", dir, err)
	}
	return c, nil
}

// ledgerDatabase makes sure database name exists in the cluster, dropping it first when fresh, and
// returns the owner and application URLs.
func ledgerDatabase(ctx context.Context, c *pgcluster.Cluster, name string, fresh bool) (owner, app string, err error) {
	ctx, cancel := context.WithTimeout(ctx, databaseSetupTime)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL(pgcluster.SuperUser, "postgres"))
	if err != nil {
		return "", "", fmt.Errorf("connecting to PostgreSQL on port %d: %w", c.Port, err)
	}
	defer conn.Close(ctx)
	if fresh {
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
			return "", "", fmt.Errorf("dropping database %s: %w", name, err)
		}
	}
	if err := pgcluster.CreateDatabase(ctx, conn, name); err != nil {
		return "", "", err
	}
	return c.URL(pgcluster.OwnerRole, name), c.URL(pgcluster.AppRole, name), nil
}

// dropDatabase removes a scratch database.
func dropDatabase(ctx context.Context, c *pgcluster.Cluster, name string) error {
	ctx, cancel := context.WithTimeout(ctx, databaseSetupTime)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL(pgcluster.SuperUser, "postgres"))
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL on port %d: %w", c.Port, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// ensureDevLMK generates the development LMK at path unless it exists, then checks that it loads.
// It says whether it generated one.
func ensureDevLMK(path string) (generated bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := hsm.GenerateLMKFile(path); err != nil {
			return false, err
		}
		generated = true
	} else if err != nil {
		return false, fmt.Errorf("inspecting LMK file: %w", err)
	}
	lmk, err := hsm.LoadLMK(path, "")
	if err != nil {
		return generated, err
	}
	clear(lmk)
	return generated, nil
}

// absDir makes dir absolute and creates it.
func absDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", abs, err)
	}
	return abs, nil
}

// estateAcquirerGUID names the switch in its order QR codes (channels.orders.acquirer_guid).
const estateAcquirerGUID = "cn.poswitch.qr"

// estateWallets are the wallet-sims of a Channels estate: issuer ID, the wallet it plays, and the
// notify key's algorithm (X9.19 or AES-CMAC, to show both).
var estateWallets = []struct {
	id, wallet string
	notifyAlg  hsm.KeyAlgorithm
	codes      string // the payment-code route, for the YAML
}{
	{"alipay", walletsim.Alipay, hsm.TDES, "Alipay: 18 digits starting 25-30"},
	{"wechat", walletsim.WeChat, hsm.AES, "WeChat Pay: 18 digits starting 10-15"},
	{"unionpay-qr", walletsim.UnionPay, hsm.TDES, "UnionPay QR: 19 digits starting 62"},
}

// estateCustomers are a wallet's default customers with room for a long run: the balance payer and
// the Huabei payer never run dry, the third keeps its small balance (a deliberate 51).
func estateCustomers(wallet string) []walletsim.Customer {
	cs := walletsim.DefaultCustomers(wallet)
	cs[0].Balance = 1_000_000_000_000
	cs[1].CreditLimit = 1_000_000_000_000
	return cs
}

// startWallets starts one wallet-sim per wallet and shares with each a notify key (under the switch's
// LMK for issuers[].notify_key, in the wallet's own HSM for the wallet-sim). It picks the address
// where the switch hears of order payments. It returns the switch's notify keys by issuer ID.
func (e *estate) startWallets(ctx context.Context, spec estateSpec, switchHSM *hsm.HSM) (map[string]hsm.KeyBlock, error) {
	e.notifyAddr = fmt.Sprintf("127.0.0.1:%d", spec.NotifyPort)
	if spec.NotifyPort == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a port for order notifications: %w", err)
		}
		e.notifyAddr = ln.Addr().String()
		ln.Close()
	}
	keys := map[string]hsm.KeyBlock{}
	for _, w := range estateWallets {
		walletHSM := hsm.NewDevelopment()
		onSwitch, onWallet, err := keyceremony.WalletNotifyKey(ctx, switchHSM, walletHSM, w.notifyAlg)
		if err != nil {
			return nil, fmt.Errorf("wallet %s: %w", w.id, err)
		}
		keys[w.id] = onSwitch
		ws, err := walletsim.New(walletsim.Config{
			Addr: fmt.Sprintf("127.0.0.1:%d", spec.WalletPorts[w.id]), Wallet: w.wallet, IssuerID: w.id,
			Customers: estateCustomers(w.wallet), HSM: walletHSM, NotifyKey: onWallet,
			Acquirers: map[string]string{estateAcquirerGUID: "http://" + e.notifyAddr},
			Log:       e.log.Named("wallet-sim"),
		})
		if err != nil {
			return nil, err
		}
		if err := ws.Start(); err != nil {
			return nil, err
		}
		e.wallets[w.id] = ws
	}
	return keys, nil
}

// walletIssuersYAML writes the wallets' issuer entries.
func walletIssuersYAML(b *strings.Builder, e *estate, notifyKeys map[string]hsm.KeyBlock, conns int, timeout time.Duration) {
	b.WriteString("  # Wallets (wallet-sim): scanned payment codes are routed to them, refunds of their payments go\n")
	b.WriteString("  # back to them, and they report payments of merchant-presented QR orders, MACed under notify_key.\n")
	for _, w := range estateWallets {
		alg := "X9.19"
		if w.notifyAlg == hsm.AES {
			alg = "AES-CMAC"
		}
		fmt.Fprintf(b, "  - id: %s\n    endpoints: [%s]\n    connections_per_endpoint: %d\n    timeout: %v\n    echo_interval: 10s\n    wallet: true\n",
			w.id, e.wallets[w.id].Addr(), conns, timeout)
		fmt.Fprintf(b, "    notify_key: %q   # %s, a key block under the LMK\n", string(notifyKeys[w.id]), alg)
	}
}

// paymentCodeRoutesYAML writes the routes of wallet payment codes (matched before card BINs: a
// payment_codes route applies to entry mode 03 only, and its length tells codes from cards).
func paymentCodeRoutesYAML(b *strings.Builder) {
	for _, r := range []struct{ match, issuer, note string }{
		{`range: "25-30"`, "alipay", estateWallets[0].codes},
		{`range: "10-15"`, "wechat", estateWallets[1].codes},
		{`prefix: "62"`, "unionpay-qr", estateWallets[2].codes},
	} {
		length := 18
		if r.issuer == "unionpay-qr" {
			length = 19
		}
		fmt.Fprintf(b, "  - %s   # %s (entry mode 03 only)\n    length: %d\n    payment_codes: true\n    issuer: %s\n", r.match, r.note, length, r.issuer)
	}
}

// channelsYAML writes the channels section: contactless limits, refunds, orders and billers.
func channelsYAML(b *strings.Builder, notifyAddr string) {
	b.WriteString("channels:\n")
	b.WriteString("  no_cvm_limits:   # a tap up to this amount needs no PIN and no signature; above it: 1A, insert the chip\n")
	b.WriteString("    \"156\": 100000   # CNY 1,000.00\n    \"840\": 5000     # USD 50.00\n")
	b.WriteString("  refund_window: 4320h   # 180 days\n")
	b.WriteString("  orders:   # merchant-presented dynamic QR: the terminal shows it, the customer's wallet pays it\n")
	fmt.Fprintf(b, "    notify_address: %s   # wallets POST order payments here\n", notifyAddr)
	fmt.Fprintf(b, "    ttl: 5m\n    acquirer_guid: %s\n", estateAcquirerGUID)
	b.WriteString("  billers:\n    - id: HUABEI   # Huabei credit repaid by card at a POS, owed to the wallet\n      wallet: alipay\n      fee_bp: 15\n")
}
