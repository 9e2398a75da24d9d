// Package issuersim is an issuer host for tests, demos and benchmarks: it speaks the issuer-link
// dialect (specs.IssuerLink) over TCP with 2-byte length framing, keeps cardholder accounts from the
// test-card catalogue, and approves or declines as docs/test-cards.md says.
package issuersim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/specs"
)

// Defaults for the bounds of Config.
const (
	defaultMaxConns           = 1024
	defaultMaxInFlightPerConn = 1024
	// maxWriteBatchBytes bounds how many bytes of responses the writer coalesces before a flush.
	maxWriteBatchBytes = 64 << 10
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

	ln     net.Listener
	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup

	statsMu   sync.Mutex
	requests  map[string]int64
	responses map[string]int64
	counters  struct {
		connections, signOns, signOffs, echoes, reversals, reversalsApplied, reversalsOfUnknown, advices,
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
		now: now, conns: make(map[*conn]struct{}), requests: make(map[string]int64), responses: make(map[string]int64),
	}
	s.faults.Store(&faultState{faults: cfg.Faults})
	return s, nil
}

// Start listens on Config.Addr and serves connections until Close.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("issuer-sim listening on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.log.Info("issuer-sim listening", zap.String("addr", ln.Addr().String()),
		zap.Int("accounts", len(s.ledger.accounts)), zap.Duration("latency", s.cfg.Latency),
		zap.Duration("jitter", s.cfg.Jitter), zap.Float64("drop_share", s.cfg.Faults.DropShare),
		zap.Float64("delay_share", s.cfg.Faults.DelayShare), zap.Duration("delay", s.cfg.Faults.Delay),
		zap.Float64("close_share", s.cfg.Faults.CloseShare), zap.Bool("refuse_sign_on", s.cfg.Faults.RefuseSignOn))
	s.wg.Add(1)
	go s.accept()
	return nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// Close stops listening, closes every connection and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

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
		Connections: s.counters.connections.Load(), SignOns: s.counters.signOns.Load(),
		SignOffs: s.counters.signOffs.Load(), Echoes: s.counters.echoes.Load(),
		Reversals: s.counters.reversals.Load(), ReversalsApplied: s.counters.reversalsApplied.Load(),
		ReversalsUnknown: s.counters.reversalsOfUnknown.Load(), Advices: s.counters.advices.Load(),
		Duplicates: s.counters.duplicates.Load(), Unanswered: s.counters.unanswered.Load(),
		BadMessages: s.counters.badMessages.Load(), Dropped: s.counters.dropped.Load(),
		Delayed: s.counters.delayed.Load(), Closed: s.counters.closed.Load(),
		SignOnsRefused: s.counters.signOnsRefused.Load(),
		ARQCsVerified:  s.counters.arqcOK.Load(), ARQCsFailed: s.counters.arqcBad.Load(),
		Requests: make(map[string]int64), Responses: make(map[string]int64),
	}
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	for k, v := range s.requests {
		st.Requests[k] = v
	}
	for k, v := range s.responses {
		st.Responses[k] = v
	}
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

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("issuer-sim accept", zap.Error(err))
			}
			return
		}
		s.mu.Lock()
		if s.closed || len(s.conns) >= s.cfg.MaxConns {
			s.mu.Unlock()
			s.log.Warn("issuer-sim refusing connection", zap.Int("max_conns", s.cfg.MaxConns))
			_ = nc.Close()
			continue
		}
		c := &conn{
			srv: s, nc: nc,
			out:  make(chan []byte, s.cfg.MaxInFlightPerConn),
			sem:  make(chan struct{}, s.cfg.MaxInFlightPerConn),
			done: make(chan struct{}),
		}
		s.conns[c] = struct{}{}
		s.counters.connections.Add(1)
		s.wg.Add(2)
		s.mu.Unlock()
		go c.read()
		go c.write()
	}
}

// conn is one issuer-link connection: one reader, one writer, responses in completion order.
type conn struct {
	srv       *Server
	nc        net.Conn
	out       chan []byte   // framed responses waiting for the writer
	sem       chan struct{} // a slot per request in flight; bounds out so sends never block
	done      chan struct{}
	closeOnce sync.Once
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.nc.Close()
	})
}

func (c *conn) read() {
	defer c.srv.wg.Done()
	defer c.forget()
	r := bufio.NewReaderSize(c.nc, 16<<10)
	buf := make([]byte, specs.MaxFrameLength)
	for {
		body, err := specs.ReadFrame(r, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.srv.log.Info("issuer-sim closing connection", zap.String("remote", c.nc.RemoteAddr().String()), zap.Error(err))
			}
			return
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.done:
			return
		}
		r := c.srv.handle(body)
		if r.fate == fateClose {
			// The request was processed; the connection goes down instead of the answer, taking any
			// answers still queued on it along.
			c.srv.log.Info("issuer-sim closing connection by fault injection", zap.String("remote", c.nc.RemoteAddr().String()))
			<-c.sem
			return
		}
		if r.body == nil {
			<-c.sem
			continue
		}
		framed, err := specs.AppendFrame(nil, r.body)
		if err != nil {
			c.srv.log.Error("issuer-sim framing response", zap.Error(err))
			<-c.sem
			continue
		}
		if d := c.srv.delay() + r.delay; d > 0 {
			time.AfterFunc(d, func() { c.send(framed) })
		} else {
			c.send(framed)
		}
	}
}

func (c *conn) forget() {
	c.close()
	c.srv.mu.Lock()
	delete(c.srv.conns, c)
	c.srv.mu.Unlock()
}

// send hands a framed response to the writer; the slot taken in read is released once it is written.
func (c *conn) send(framed []byte) {
	select {
	case c.out <- framed:
	case <-c.done:
		<-c.sem
	}
}

func (c *conn) write() {
	defer c.srv.wg.Done()
	w := bufio.NewWriterSize(c.nc, maxWriteBatchBytes)
	for {
		select {
		case <-c.done:
			return
		case framed := <-c.out:
			if err := c.writeBatch(w, framed); err != nil {
				c.close()
				return
			}
		}
	}
}

// writeBatch writes one response and any others already waiting, then flushes once.
func (c *conn) writeBatch(w *bufio.Writer, framed []byte) error {
	for {
		if _, err := w.Write(framed); err != nil {
			return err
		}
		<-c.sem
		if w.Buffered() >= maxWriteBatchBytes/2 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
		select {
		case framed = <-c.out:
		default:
			return w.Flush()
		}
	}
}

func (s *Server) delay() time.Duration {
	d := s.cfg.Latency
	if s.cfg.Jitter > 0 {
		d += rand.N(s.cfg.Jitter)
	}
	return d
}
