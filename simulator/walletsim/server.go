// Package walletsim is a wallet host for tests, demos and benchmarks: Alipay-, WeChat Pay- and
// UnionPay QR-style wallets behind one issuer link each. It speaks the issuer-link dialect
// (specs.IssuerLink) over TCP with 2-byte length framing like simulator/issuersim, issues one-time
// payment codes the terminal scans (entry mode 03x), pays them from the customer's balance or from a
// Huabei-style credit line (optionally in instalments), takes reversals, refunds and credit-line
// repayments, and pays merchant-presented dynamic QR orders (PayOrder). docs/simulators.md
// describes it; docs/channels.md the flows.
package walletsim

import (
	"fmt"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/simulator/linkhost"
)

// Wallets the simulator plays, as field 63 of an answer names them.
const (
	Alipay   = "ALIPAY"   // payment codes of 18 digits starting 25-30
	WeChat   = "WECHAT"   // payment codes of 18 digits starting 10-15
	UnionPay = "UNIONPAY" // UnionPay QR payment codes of 19 digits starting 62
)

// Funding sources, as field 63 of an answer names them.
const (
	FundingBalance = "BALANCE" // the wallet's stored balance
	FundingHuabei  = "HUABEI"  // the wallet's credit line (Huabei-style), repaid later
)

// Bounds and defaults of Config.
const (
	DefaultCodeTTL       = 60 * time.Second
	defaultMaxCodes      = 100_000 // live and remembered payment codes
	defaultMaxRecords    = 100_000 // remembered requests and advices, for repeats, reversals and refunds
	defaultMaxConns      = 256
	maxInFlightPerConn   = 1024 // requests read but not yet answered, per connection
	defaultNotifyTimeout = 10 * time.Second
	maxNotifyAttempts    = 3 // POSTs of one order payment before the reservation is released
	// codeRetention is how long a used or expired code is remembered after it expires, so that a
	// late reuse is still told apart from a code never issued.
	codeRetention = 10 * time.Minute
)

// Response codes the wallet answers besides approval.
const (
	rcApproved          = "00"
	rcInvalidTxn        = "12" // instalments other than 3, 6 or 12; a request the wallet does not do
	rcInvalidAmount     = "13" // a refund above what is left of the original
	rcInvalidCode       = "14" // a payment code never issued, already used, or an unknown customer account
	rcNoRecord          = "25" // a refund of an original the wallet never saw
	rcFormatError       = "30"
	rcInsufficientFunds = "51" // balance or credit line too small
	rcExpiredCode       = "54" // a payment code past its validity
	rcNotPermitted      = "57" // other currency; Huabei asked of a customer without a credit line
)

// Config configures a simulated wallet host.
type Config struct {
	Addr string // listen address; "" means 127.0.0.1:0 (a free port)
	// Wallet is which wallet this host plays: Alipay, WeChat or UnionPay (its codes' format).
	Wallet string
	// IssuerID is the wallet's issuer ID at the switch (issuers[].id): X-Poswitch-Wallet of order
	// notifications. "" uses Wallet in lower case.
	IssuerID  string
	Customers []Customer    // nil: DefaultCustomers(Wallet)
	CodeTTL   time.Duration // how long a payment code may be used; 0: 60 s
	MaxCodes  int           // live and remembered codes; 0: 100,000 (issuing beyond is an error)
	// MaxRecords bounds the requests and advices remembered for repeats, reversals and refunds; the
	// oldest are forgotten first. 0: 100,000.
	MaxRecords int
	MaxConns   int              // concurrent link connections; 0: 256
	Now        func() time.Time // clock for code validity; nil: time.Now
	Log        *zap.Logger      // nil: no logging

	// Merchant-presented orders (PayOrder). HSM is the wallet's own HSM holding NotifyKey, the MAC
	// key it shares with the acquirer (exchanged under a KEK like a ZPK); Acquirers maps an acquirer
	// GUID (EMV QRCPS ID 26 sub-ID 00) to the base URL of its notification endpoint
	// ("http://127.0.0.1:8443").
	HSM           *hsm.HSM
	NotifyKey     hsm.KeyBlock
	Acquirers     map[string]string
	HTTPClient    *http.Client  // nil: a client with NotifyTimeout
	NotifyTimeout time.Duration // per POST; 0: 10 s
}

// Stats counts what the simulator saw since it started.
type Stats struct {
	Connections int64
	Requests    map[string]int64 // per MTI
	Responses   map[string]int64 // financial answers per response code
	Payments    int64            // approved QR payments
	Reversals   int64            // reversal messages received
	Refunds     int64            // approved refunds
	Repayments  int64            // credit-line repayments applied (each once)
	Duplicates  int64            // requests and advices answered from memory
	BadMessages int64
	Orders      int64 // order payments captured (PayOrder)
	OrdersFreed int64 // order payments released after the acquirer refused or did not answer
}

// Server is a running simulated wallet host.
type Server struct {
	cfg  Config
	log  *zap.Logger
	now  func() time.Time
	book *book
	http *http.Client

	host *linkhost.Host

	statsMu   sync.Mutex
	requests  map[string]int64
	responses map[string]int64
	counters  struct {
		payments, reversals, refunds, repayments, duplicates, badMessages, orders, ordersFreed atomic.Int64
	}
}

// New checks the configuration and opens the customers' accounts; Start listens.
func New(cfg Config) (*Server, error) {
	if _, ok := codeFormats[cfg.Wallet]; !ok {
		return nil, fmt.Errorf("wallet-sim: unknown wallet %q (known: %s, %s, %s)", cfg.Wallet, Alipay, WeChat, UnionPay)
	}
	if cfg.CodeTTL < 0 || cfg.MaxCodes < 0 || cfg.MaxRecords < 0 || cfg.NotifyTimeout < 0 {
		return nil, fmt.Errorf("wallet-sim: code TTL, bounds and notify timeout must not be negative")
	}
	if cfg.CodeTTL == 0 {
		cfg.CodeTTL = DefaultCodeTTL
	}
	if cfg.MaxCodes == 0 {
		cfg.MaxCodes = defaultMaxCodes
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = defaultMaxRecords
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.NotifyTimeout == 0 {
		cfg.NotifyTimeout = defaultNotifyTimeout
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.IssuerID == "" {
		cfg.IssuerID = lower(cfg.Wallet)
	}
	if cfg.Customers == nil {
		cfg.Customers = DefaultCustomers(cfg.Wallet)
	}
	b, err := newBook(cfg.Wallet, cfg.Customers, cfg.MaxCodes, cfg.MaxRecords)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: cfg.NotifyTimeout}
	}
	s := &Server{cfg: cfg, log: log.With(zap.String("wallet", cfg.Wallet)), now: now, book: b, http: client,
		requests: map[string]int64{}, responses: map[string]int64{}}
	// A wallet decision is microseconds under one lock and never delayed, so answers leave in the
	// order the requests came.
	s.host, err = linkhost.New(linkhost.Config{Name: "wallet-sim", Addr: cfg.Addr, MaxConns: cfg.MaxConns,
		MaxInFlightPerConn: maxInFlightPerConn, Log: s.log,
		Handler: func(body []byte) linkhost.Answer { return linkhost.Answer{Body: s.handle(body)} }})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Start listens on Config.Addr and serves issuer-link connections until Close.
func (s *Server) Start() error {
	if err := s.host.Start(); err != nil {
		return err
	}
	s.log.Info("wallet-sim listening", zap.String("addr", s.host.Addr()), zap.Int("customers", len(s.cfg.Customers)),
		zap.Duration("code_ttl", s.cfg.CodeTTL))
	return nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() string { return s.host.Addr() }

// Wallet is the wallet this host plays (Alipay, WeChat or UnionPay).
func (s *Server) Wallet() string { return s.cfg.Wallet }

// Close stops listening, closes every connection and waits for their goroutines.
func (s *Server) Close() error { return s.host.Close() }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Connections: s.host.Connections(), Payments: s.counters.payments.Load(),
		Reversals: s.counters.reversals.Load(), Refunds: s.counters.refunds.Load(),
		Repayments: s.counters.repayments.Load(), Duplicates: s.counters.duplicates.Load(),
		BadMessages: s.counters.badMessages.Load(), Orders: s.counters.orders.Load(),
		OrdersFreed: s.counters.ordersFreed.Load(),
	}
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st.Requests, st.Responses = maps.Clone(s.requests), maps.Clone(s.responses)
	return st
}

func (s *Server) count(m map[string]int64, k string) {
	s.statsMu.Lock()
	m[k]++
	s.statsMu.Unlock()
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
