// Package node wires one switch instance from its configuration: the terminal listeners, the issuer
// links, the routing table, the pipeline of steps and the ledger. It is the only place that knows
// all the parts; each part knows only the small interfaces it needs.
package node

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/moov-io/iso8583"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/issuerlink"
	"github.com/poswitch/poswitch/switch/limits"
	"github.com/poswitch/poswitch/switch/listener"
	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/routing"
	"github.com/poswitch/poswitch/switch/termkeys"
	"github.com/poswitch/poswitch/switch/txn"
)

// bookingMargin is the time an approved transaction may spend waiting for its commit, on top of the
// issuer's timeout, before the terminal would have given up anyway.
const bookingMargin = 5 * time.Second

// Node is one running switch.
type Node struct {
	cfg      *config.Config
	log      *zap.Logger
	txnLog   *zap.Logger
	metrics  *metrics
	router   *routing.Router
	links    map[string]*issuerlink.Link
	pipeline *pipeline.Pipeline
	// finishers hear every answered transaction (match releases its identity, keeps the answer).
	finishers []pipeline.Finisher
	batch     *batchDesk      // 0500 batch settlement and 0320 batch upload
	esign     *signatureDesk  // 0820 e-signature upload
	limiter   *limits.Limiter // risk limits; Reload swaps their policy (reload.go)
	reloadMu  sync.Mutex      // one Reload at a time

	// keys rolls terminal working keys and checks MACs (keys.go); nil when no terminal has a TMK.
	keys *termkeys.Manager

	listeners      map[string]*listener.Listener
	requestTimeout time.Duration
	metricsServer  *http.Server
}

// Options are the parts a node is given rather than builds.
type Options struct {
	Log    *zap.Logger
	Booker pipeline.Booker // the ledger writer
	// PIN translates PIN blocks to the issuer's zone key; nil refuses PIN transactions with 88.
	PIN pipeline.PINTranslator
	// Ledger reads what the ledger holds (the application role's pool): a repeat's stored answer,
	// a refund's original, the issuer trace a reversal needs, batch totals. Nil: repeats the cache
	// forgot run again; refunds, completions, reversals that booked and batch settlement are 96.
	Ledger ledger.Querier
	// SAF queues reversals and advices for issuers (store-and-forward); nil only logs them.
	SAF pipeline.StoreAndForward
	// StandIn decides on an issuer's behalf when it is down or silent; nil answers 91.
	StandIn pipeline.StandIn
	// OnLateAnswer hears answers that arrive after their request timed out (a late approval is
	// reversed); nil logs them only.
	OnLateAnswer func(issuerID string, answer *iso8583.Message)
	// Digest is the keyed PAN digest (the HSM's PANDigest) that card limits key cards by; nil: card
	// limits are off.
	Digest PANDigester
	// Keys rolls the working keys of terminals with a master key and checks their MACs (keys.go);
	// nil when no terminal has one.
	Keys *termkeys.Manager
	// Orders is the merchant-presented QR order desk (switch/qrorder); nil: order messages are 12.
	Orders pipeline.Orders
}

// New builds a node from a validated configuration. Nothing is listening or connected until Start.
func New(cfg *config.Config, opts Options) (*Node, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Booker == nil {
		return nil, fmt.Errorf("node: a ledger is required")
	}
	n := &Node{
		cfg: cfg, log: opts.Log, metrics: newMetrics(), links: map[string]*issuerlink.Link{},
		listeners: map[string]*listener.Listener{},
	}
	n.keys = opts.Keys
	// Per-transaction lines are sampled so a load run cannot drown the log: the first 100 a second,
	// then one in 100.
	n.txnLog = opts.Log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 100, 100)
	}))

	table, err := cfg.RoutingTable()
	if err != nil {
		return nil, err
	}
	n.router = routing.NewRouter(table)

	linkSpec := specs.IssuerLink
	sendLinks := map[string]pipeline.IssuerLink{}
	hasLink := map[string]bool{}
	for _, is := range cfg.Issuers {
		link, err := issuerlink.New(issuerlink.Config{
			IssuerID: is.ID, Endpoints: is.Endpoints, ConnectionsPerEndpoint: is.ConnectionsPerEndpoint,
			Timeout: is.Timeout.D(), EchoInterval: is.EchoInterval.D(), ReconnectWait: is.ReconnectWait.D(),
			MaxReconnectWait: is.MaxReconnectWait.D(), Spec: linkSpec, Log: opts.Log,
			OnLateAnswer: opts.OnLateAnswer,
		})
		if err != nil {
			return nil, err
		}
		n.links[is.ID] = link
		sendLinks[is.ID] = link
		hasLink[is.ID] = true
		n.requestTimeout = max(n.requestTimeout, is.Timeout.D())
	}
	n.requestTimeout += bookingMargin

	terminals := map[string]string{}
	for _, t := range cfg.Terminals {
		terminals[t.ID] = t.Merchant
	}
	merchants := map[string]*pipeline.Merchant{}
	for _, m := range cfg.Merchants {
		cur := map[string]bool{}
		for _, c := range m.Currencies {
			cur[c] = true
		}
		merchants[m.ID] = &pipeline.Merchant{ID: m.ID, Name: m.Name, MCC: m.MCC, FeeBP: *m.FeeBP, Currencies: cur}
	}

	var records, repeats pipeline.Records = noRecords{}, nil
	if opts.Ledger != nil {
		records = ledgerRecords{q: opts.Ledger}
		repeats = records
	}
	match := pipeline.NewMatch(pipeline.MatchConfig{Records: repeats, Log: opts.Log})
	n.finishers = append(n.finishers, match)
	limiter, limitStep, err := newLimits(cfg, opts.Digest, opts.Log, n.metrics.registry)
	if err != nil {
		return nil, err
	}
	n.limiter = limiter
	n.finishers = append(n.finishers, limitStep)
	acq := cfg.Node.AcquirerID
	walletBillers := billers(cfg)
	n.pipeline = pipeline.New(n.observeStep,
		pipeline.Validate{Supported: supported},
		&pipeline.Identify{Terminals: terminals, Merchants: merchants, AcquirerID: acq},
		pipeline.Order{Orders: opts.Orders}, // merchant-presented QR orders (0600): ends them before match
		match,
		pipeline.VoidWindow{Records: records, InFlight: match, Log: opts.Log},
		pipeline.Reverse{Ledger: opts.Booker, Records: records, SAF: opts.SAF, InFlight: match, AcquirerID: acq, Log: opts.Log},
		pipeline.Advise{Ledger: opts.Booker, Records: records, SAF: opts.SAF, Router: n.router, InFlight: match, AcquirerID: acq, Log: opts.Log},
		pipeline.Refund{Records: records, InFlight: match, AcquirerID: acq, Log: opts.Log, Window: cfg.Channels.RefundWindow.D(), Wallets: walletIssuers(cfg)},
		limitStep,
		pipeline.CVM{NoCVMLimits: cfg.Channels.NoCVMLimits},
		pipeline.CheckBiller{Billers: walletBillers},
		pipeline.RoutePaymentCode{Router: n.router, Links: hasLink},
		pipeline.Route{Router: n.router, Links: hasLink},
		pipeline.PIN{HSM: opts.PIN},
		pipeline.Send{Links: sendLinks, Spec: linkSpec, AcquirerID: acq, Log: opts.Log, SAF: opts.SAF, StandIn: opts.StandIn},
		pipeline.Book{Ledger: opts.Booker, SAF: opts.SAF, AcquirerID: acq, Log: opts.Log, Types: moneyMoving},
		pipeline.StandInAdvice{SAF: opts.SAF, AcquirerID: acq, Log: opts.Log},
		pipeline.RepaymentAdvice{Billers: walletBillers, SAF: opts.SAF, AcquirerID: acq, Log: opts.Log},
	)
	n.batch = newBatchDesk(opts.Ledger, terminals, acq, opts.Log, n.metrics.registry)
	n.esign = newSignatureDesk(opts.Ledger, terminals, acq, opts.Log, n.metrics.registry)

	for _, lc := range cfg.Listeners {
		d, err := specs.DialectByName(lc.Dialect)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", lc.Name, err)
		}
		n.listeners[lc.Name] = listener.New(listener.Config{
			Name: lc.Name, Address: lc.Address, TPDU: lc.TPDU, MaxConnections: lc.MaxConnections,
			MaxInFlightPerConnection: lc.MaxInFlightPerConnection, IdleTimeout: lc.IdleTimeout.D(), Log: opts.Log,
		}, n.terminalHandler(d))
	}
	return n, nil
}

// supported are the transaction types this node carries end to end today.
var supported = map[txn.Type]bool{txn.TypePurchase: true, txn.TypePreAuth: true, txn.TypeCompletion: true,
	txn.TypeRefund: true, txn.TypeVoid: true, txn.TypeBalanceInquiry: true, txn.TypeBillPayment: true, txn.TypeReversal: true,
	txn.TypeOrderCreate: true, txn.TypeOrderStatus: true, txn.TypeOrderCancel: true}

// moneyMoving are the types the book step books on the issuer's approval. Reversals, voids and
// advices are booked by their own steps (reverse, advise) before the issuer hears of them.
var moneyMoving = map[txn.Type]bool{txn.TypePurchase: true, txn.TypePreAuth: true, txn.TypeRefund: true,
	txn.TypeBillPayment: true}

func (n *Node) observeStep(step string, took time.Duration) {
	n.metrics.steps.WithLabelValues(step).Observe(took.Seconds())
}

// Start connects the issuer links (without waiting for issuers that are down) and opens the listeners.
func (n *Node) Start(ctx context.Context) error {
	for id, l := range n.links {
		if err := l.Start(ctx); err != nil {
			return fmt.Errorf("issuer %s: %w", id, err)
		}
	}
	for _, l := range n.listeners {
		if err := l.Start(); err != nil {
			n.Close()
			return err
		}
	}
	if addr := n.cfg.Node.Metrics; addr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.registry, promhttp.HandlerOpts{}))
		n.metricsServer = &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := n.metricsServer.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				n.log.Error("metrics endpoint", zap.Error(err))
			}
		}()
	}
	return nil
}

// WaitForLinks waits until every issuer link has a signed-on connection, or ctx ends.
func (n *Node) WaitForLinks(ctx context.Context) error {
	for {
		up := true
		for _, l := range n.links {
			up = up && l.Up()
		}
		if up {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for issuer links: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ListenerAddr is the bound address of a listener (useful when configured with port 0).
func (n *Node) ListenerAddr(name string) string {
	if l := n.listeners[name]; l != nil {
		return l.Addr()
	}
	return ""
}

// LinkUp tells whether an issuer's link has a signed-on connection.
func (n *Node) LinkUp(issuer string) bool {
	l := n.links[issuer]
	return l != nil && l.Up()
}

// Close stops listening, lets in-flight transactions finish, then signs off the issuer links.
func (n *Node) Close() {
	for _, l := range n.listeners {
		_ = l.Close()
	}
	for _, l := range n.links {
		_ = l.Close()
	}
	if n.metricsServer != nil {
		_ = n.metricsServer.Close()
	}
}
