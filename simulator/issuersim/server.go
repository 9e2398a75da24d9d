// Package issuersim is an issuer host for tests, demos and benchmarks: it speaks the issuer-link
// dialect (specs.IssuerLink) over TCP with 2-byte length framing, keeps cardholder accounts from the
// test-card catalogue, and approves or declines as docs/test-cards.md says.
package issuersim

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/linkhost"
)

// Defaults for the bounds of Config.
const (
	defaultMaxConns           = 1024
	defaultMaxInFlightPerConn = 1024
)

// Config configures a simulated issuer host.
type Config struct {
	Addr     string        // listen address; "" means 127.0.0.1:0 (a free port)
	Latency  time.Duration // fixed delay before each answer
	Jitter   time.Duration // plus a uniformly random delay in [0, Jitter)
	Log      *zap.Logger   // nil: no logging
	Cards    []cards.Card  // accounts; nil: the whole catalogue
	IssuerID string        // serve only cards of this issuer; "" serves all

	MaxConns           int              // concurrent connections; 0: 1024
	MaxInFlightPerConn int              // requests read but not yet answered, per connection; 0: 1024
	Now                func() time.Time // clock for expiry checks; nil: time.Now
	// PIN verifies PIN blocks (field 52) with the issuer's own HSM; nil answers 88 to PIN requests.
	PIN *PINCheck
	// EMV verifies the cryptogram of requests carrying chip data (field 55) with the issuer's own HSM
	// and answers with an ARPC; nil: field 55 is not checked and the answer carries none.
	EMV *EMVCheck
	// Faults at start; SetFaults changes them while the server runs.
	Faults Faults
	// MaxRecords bounds the financial requests and advices remembered for duplicates, reversals and
	// Transactions/Advices; the oldest are forgotten first. 0: 1,000,000.
	MaxRecords int
}

// Stats counts what the simulator saw since it started.
type Stats struct {
	Connections      int64            // accepted connections
	Requests         map[string]int64 // requests per MTI
	Responses        map[string]int64 // financial responses per response code (field 39)
	SignOns          int64            // 0800 with 70 = 001
	SignOffs         int64            // 0800 with 70 = 002
	Echoes           int64            // 0800 with 70 = 301
	Reversals        int64            // 0400/0401/0420/0421 received
	ReversalsApplied int64            // reversals that restored money or a hold (the first reversal of an approved request)
	ReversalsUnknown int64            // reversals naming an original the simulator never saw (or forgot)
	Advices          int64            // 0120/0121/0220/0221 received
	Duplicates       int64            // financial requests and advices answered from memory
	Unanswered       int64            // requests deliberately left unanswered (NoResponseAmount)
	BadMessages      int64            // frames that did not unpack
	Dropped          int64            // answers dropped by fault injection (the request was processed)
	Delayed          int64            // answers delayed by fault injection
	Closed           int64            // connections closed by fault injection instead of answering
	SignOnsRefused   int64            // sign-ons answered 91 because Faults.RefuseSignOn
	ARQCsVerified    int64            // chip requests whose cryptogram verified (Config.EMV)
	ARQCsFailed      int64            // chip requests whose cryptogram did not verify or could not be read
}

// Server is a running simulated issuer host.
type Server struct {
	cfg    Config
	log    *zap.Logger
	ledger *ledger
	now    func() time.Time

	host *linkhost.Host

	statsMu   sync.Mutex
	requests  map[string]int64
	responses map[string]int64
	counters  struct {
		signOns, signOffs, echoes, reversals, reversalsApplied, reversalsOfUnknown, advices,
		duplicates, unanswered, badMessages, dropped, delayed, closed, signOnsRefused, arqcOK, arqcBad atomic.Int64
	}
	faults atomic.Pointer[faultState]
}

// New checks the configuration and builds the accounts; Start listens.
func New(cfg Config) (*Server, error) {
	if cfg.Latency < 0 || cfg.Jitter < 0 {
		return nil, fmt.Errorf("issuer-sim: latency %v and jitter %v must not be negative", cfg.Latency, cfg.Jitter)
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxRecords < 0 {
		return nil, fmt.Errorf("issuer-sim: max records %d must not be negative", cfg.MaxRecords)
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = defaultMaxRecords
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.MaxInFlightPerConn <= 0 {
		cfg.MaxInFlightPerConn = defaultMaxInFlightPerConn
	}
	cs := cfg.Cards
	if cs == nil {
		cs = cards.Catalogue()
	}
	if cfg.IssuerID != "" && len(cards.ByIssuer(cfg.IssuerID)) == 0 && cfg.Cards == nil {
		return nil, fmt.Errorf("issuer-sim: issuer %q has no cards in the catalogue (known: %s, %s)",
			cfg.IssuerID, cards.BankA, cards.BankB)
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		cfg: cfg, log: log.With(zap.String("issuer", cfg.IssuerID)), ledger: newLedger(cs, cfg.IssuerID, cfg.MaxRecords),
		now: now, requests: make(map[string]int64), responses: make(map[string]int64),
	}
	s.faults.Store(&faultState{faults: cfg.Faults})
	host, err := linkhost.New(linkhost.Config{Name: "issuer-sim", Addr: cfg.Addr, MaxConns: cfg.MaxConns,
		MaxInFlightPerConn: cfg.MaxInFlightPerConn, Handler: s.answer, Log: s.log})
	if err != nil {
		return nil, err
	}
	s.host = host
	return s, nil
}

// Start listens on Config.Addr and serves connections until Close.
func (s *Server) Start() error {
	if err := s.host.Start(); err != nil {
		return err
	}
	s.log.Info("issuer-sim listening", zap.String("addr", s.host.Addr()),
		zap.Int("accounts", len(s.ledger.accounts)), zap.Duration("latency", s.cfg.Latency),
		zap.Duration("jitter", s.cfg.Jitter), zap.Float64("drop_share", s.cfg.Faults.DropShare),
		zap.Float64("delay_share", s.cfg.Faults.DelayShare), zap.Duration("delay", s.cfg.Faults.Delay),
		zap.Float64("close_share", s.cfg.Faults.CloseShare), zap.Bool("refuse_sign_on", s.cfg.Faults.RefuseSignOn))
	return nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() string { return s.host.Addr() }

// Close stops listening, closes every connection and waits for their goroutines.
func (s *Server) Close() error { return s.host.Close() }

// Balance returns the ledger balance of a card's account, for tests.
func (s *Server) Balance(pan string) (int64, bool) {
	b, _, ok := s.ledger.balance(pan)
	return b, ok
}

// Available returns the available balance of a card's account: the ledger balance less open
// pre-authorisation holds.
func (s *Server) Available(pan string) (int64, bool) {
	_, a, ok := s.ledger.balance(pan)
	return a, ok
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Connections: s.host.Connections(), SignOns: s.counters.signOns.Load(),
		SignOffs: s.counters.signOffs.Load(), Echoes: s.counters.echoes.Load(),
		Reversals: s.counters.reversals.Load(), ReversalsApplied: s.counters.reversalsApplied.Load(),
		ReversalsUnknown: s.counters.reversalsOfUnknown.Load(), Advices: s.counters.advices.Load(),
		Duplicates: s.counters.duplicates.Load(), Unanswered: s.counters.unanswered.Load(),
		BadMessages: s.counters.badMessages.Load(), Dropped: s.counters.dropped.Load(),
		Delayed: s.counters.delayed.Load(), Closed: s.counters.closed.Load(),
		SignOnsRefused: s.counters.signOnsRefused.Load(),
		ARQCsVerified:  s.counters.arqcOK.Load(), ARQCsFailed: s.counters.arqcBad.Load(),
	}
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st.Requests, st.Responses = maps.Clone(s.requests), maps.Clone(s.responses)
	return st
}

func (s *Server) countRequest(mti string) {
	s.statsMu.Lock()
	s.requests[mti]++
	s.statsMu.Unlock()
}

func (s *Server) countResponse(code string) {
	s.statsMu.Lock()
	s.responses[code]++
	s.statsMu.Unlock()
}

// answer hands one request to handle and turns its reply into what the link host does: nothing, close
// the connection, or send the answer after the configured latency (plus a fault's delay).
func (s *Server) answer(body []byte) linkhost.Answer {
	r := s.handle(body)
	if r.fate == fateClose {
		// The request was processed; the connection goes down instead of the answer, taking any
		// answers still queued on it along.
		return linkhost.Answer{Close: true}
	}
	if r.body == nil {
		return linkhost.Answer{}
	}
	return linkhost.Answer{Body: r.body, Delay: s.delay() + r.delay}
}

func (s *Server) delay() time.Duration {
	d := s.cfg.Latency
	if s.cfg.Jitter > 0 {
		d += rand.N(s.cfg.Jitter)
	}
	return d
}
