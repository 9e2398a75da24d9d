// Package issuerlink is the switch's connection to one issuer host: a primary endpoint and a
// secondary (failover) endpoint, each with several TCP connections. A connection carries traffic only
// once it is signed on (0800, field 70 = 001); it is echoed (301) when idle and redialled with
// exponential back-off when it drops. Traffic goes to the primary's signed-on connections while any
// is up, else to the secondary's, and returns to the primary as soon as one of its connections signs
// on again. With no signed-on connection at all, Send answers ErrUnavailable at once.
//
// The link assigns its own STAN, unique among its in-flight requests, and matches answers by it.
//
// The connections are this package's own (conn.go), not iso8583-connection's: v0.9.0 (our pinned
// version) deadlocks when a connection fails while answers are being delivered — handleConnectionError
// holds pendingRequestsMu while sending on an unbuffered channel that a Send which has just received
// its answer (or timed out) no longer reads, while that Send waits for the same mutex. Killing an
// issuer under load hung every sender on that connection and lost the connection's slot for good
// (reproduced in TestKilledPrimaryUnderLoadFailsOverWithoutHangingASender). Ours delivers on
// channels of capacity one, so no delivery ever blocks, and it knows whether a request reached the
// wire, so a request that never left a dying connection is retried on another one.
package issuerlink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/specs"
)

// Network management codes (field 70).
const (
	codeSignOn  = "001"
	codeSignOff = "002"
	codeEcho    = "301"
)

// Bounds of a link.
const (
	// MaxEndpoints bounds the endpoints of one issuer: a primary, a secondary and two more in order
	// of preference.
	MaxEndpoints = 4
	// MaxConnectionsPerEndpoint bounds the connections to one endpoint.
	MaxConnectionsPerEndpoint = 64
	// maxInFlightPerConnection bounds the requests waiting for an answer on one connection (and the
	// frames queued for its writer).
	maxInFlightPerConnection = 4096
	// signOffTimeout bounds the wait for an 0810 to a sign-off when the link closes.
	signOffTimeout = time.Second
)

// ErrUnavailable means no signed-on connection to the issuer exists, or the request could not be
// written before its timeout: the issuer never saw it, the answer is 91 at once and nothing needs
// reversing.
var ErrUnavailable = errors.New("issuer unavailable")

// ErrTimeout means the issuer did not answer within its timeout: the answer is 91 and the request may
// still have been approved, so it must be reversed.
var ErrTimeout = errors.New("issuer timeout")

// ErrConnectionLost means the connection failed after the request was written and before its answer
// came. Like a timeout the issuer may have approved it, so it is an ErrTimeout (errors.Is holds):
// 91 to the terminal and a reversal.
var ErrConnectionLost = fmt.Errorf("%w: connection lost with the request in flight", ErrTimeout)

// Config is one issuer's link settings.
type Config struct {
	IssuerID               string
	Endpoints              []string // host:port in order of preference: the first is the primary
	ConnectionsPerEndpoint int
	Timeout                time.Duration // per request; also bounds a connect and a write
	EchoInterval           time.Duration // idle time before an echo; three of them silent = dead
	ReconnectWait          time.Duration // first back-off
	MaxReconnectWait       time.Duration // back-off cap
	Spec                   *iso8583.MessageSpec
	Log                    *zap.Logger
	// OnLateAnswer receives answers that arrive after their request timed out (a late approval must be
	// reversed). It runs on the connection's reader and must not block.
	OnLateAnswer func(issuerID string, answer *iso8583.Message)
}

// Link is the set of connections to one issuer.
type Link struct {
	cfg       Config
	log       *zap.Logger
	endpoints []*endpoint

	stan     atomic.Uint32
	mu       sync.Mutex
	inFlight map[string]struct{}

	stop      context.CancelFunc
	ctx       context.Context
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once

	signOns, lateAnswers, timeouts, unavailable atomic.Int64
}

// maxSTAN is the largest 6-digit trace number.
const maxSTAN = 999999

// New checks the settings and builds a link; Start connects it.
func New(cfg Config) (*Link, error) {
	if cfg.Spec == nil {
		return nil, fmt.Errorf("issuer %s: a message spec is required", cfg.IssuerID)
	}
	if len(cfg.Endpoints) == 0 || len(cfg.Endpoints) > MaxEndpoints {
		return nil, fmt.Errorf("issuer %s: 1 to %d endpoints are required, got %d", cfg.IssuerID, MaxEndpoints, len(cfg.Endpoints))
	}
	if cfg.ConnectionsPerEndpoint < 1 {
		cfg.ConnectionsPerEndpoint = 1
	}
	if cfg.ConnectionsPerEndpoint > MaxConnectionsPerEndpoint {
		return nil, fmt.Errorf("issuer %s: at most %d connections per endpoint, got %d", cfg.IssuerID, MaxConnectionsPerEndpoint, cfg.ConnectionsPerEndpoint)
	}
	if cfg.Timeout <= 0 || cfg.EchoInterval <= 0 {
		return nil, fmt.Errorf("issuer %s: timeout and echo interval must be positive", cfg.IssuerID)
	}
	if cfg.ReconnectWait <= 0 {
		cfg.ReconnectWait = 200 * time.Millisecond
	}
	if cfg.MaxReconnectWait < cfg.ReconnectWait {
		cfg.MaxReconnectWait = cfg.ReconnectWait
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	ctx, stop := context.WithCancel(context.Background())
	l := &Link{cfg: cfg, log: cfg.Log.With(zap.String("issuer", cfg.IssuerID)), inFlight: map[string]struct{}{},
		ctx: ctx, stop: stop}
	// Start the trace numbers at a random point: a node restarted within the same second as its last
	// request would otherwise resend STAN 000001 with the same field 7, and the issuer would take it
	// for a retransmission of another transaction.
	l.stan.Store(rand.Uint32N(maxSTAN))
	for i, addr := range cfg.Endpoints {
		l.endpoints = append(l.endpoints, newEndpoint(l, addr, roleOf(i)))
	}
	return l, nil
}

func roleOf(i int) string {
	switch i {
	case 0:
		return "primary"
	case 1:
		return "secondary"
	default:
		return fmt.Sprintf("backup-%d", i)
	}
}

// Start begins dialling every connection of every endpoint in the background. It does not wait for
// the issuer: connections that fail keep retrying with back-off. ctx is not kept; Close stops the link.
func (l *Link) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.startOnce.Do(func() {
		for _, ep := range l.endpoints {
			for i := 0; i < l.cfg.ConnectionsPerEndpoint; i++ {
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					ep.keep(l.ctx)
				}()
			}
		}
	})
	return nil
}

// Close signs off every connection, closes it and waits for the link's goroutines. Requests still
// waiting get ErrConnectionLost (or ErrUnavailable if they were never written).
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.stop()
		l.wg.Wait()
	})
	return nil
}

// Up tells whether at least one connection is signed on.
func (l *Link) Up() bool {
	for _, ep := range l.endpoints {
		if ep.up() > 0 {
			return true
		}
	}
	return false
}

// pick returns a signed-on connection of the most preferred endpoint that has one.
func (l *Link) pick() (*conn, *endpoint) {
	for _, ep := range l.endpoints {
		if c := ep.pick(); c != nil {
			return c, ep
		}
	}
	return nil, nil
}

// Send forwards a request with the link's own STAN (field 11) and transmission time (field 7), both
// set on req, and waits for the answer, never longer than the link's timeout or ctx's deadline.
//
// Errors: ErrUnavailable when no connection is signed on or the request could not be written in time
// (the issuer never saw it); ErrTimeout when it was written and no answer came; ErrConnectionLost (an
// ErrTimeout) when the connection failed after writing it. A request caught in a connection that
// fails before writing it is sent on another signed-on connection, preferring the primary.
func (l *Link) Send(ctx context.Context, req *iso8583.Message) (*iso8583.Message, string, error) {
	c, ep := l.pick()
	if c == nil {
		l.unavailable.Add(1)
		return nil, "", ErrUnavailable
	}
	stan := l.allocateSTAN()
	defer l.release(stan)
	if err := req.Field(11, stan); err != nil {
		return nil, stan, fmt.Errorf("setting STAN: %w", err)
	}
	if err := req.Field(7, time.Now().UTC().Format("0102150405")); err != nil {
		return nil, stan, fmt.Errorf("setting transmission time: %w", err)
	}
	frame, err := pack(req)
	if err != nil {
		return nil, stan, fmt.Errorf("packing request to issuer %s: %w", l.cfg.IssuerID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	// Every retry is on a connection that failed before writing: bounded by the connections there are.
	for attempt := 0; attempt <= len(l.endpoints)*l.cfg.ConnectionsPerEndpoint; attempt++ {
		resp, err := c.exchange(ctx, stan, frame)
		if !errors.Is(err, errNotSent) {
			ep.sent.Add(1)
		}
		switch {
		case err == nil:
			ep.answered.Add(1)
			return resp, stan, nil
		case errors.Is(err, errNotSent):
			if ctx.Err() != nil {
				l.unavailable.Add(1)
				return nil, stan, ErrUnavailable
			}
			if c, ep = l.pick(); c == nil {
				l.unavailable.Add(1)
				return nil, stan, ErrUnavailable
			}
		case errors.Is(err, errLost):
			return nil, stan, ErrConnectionLost
		default: // errTimedOut
			l.timeouts.Add(1)
			l.probe(c)
			return nil, stan, ErrTimeout
		}
	}
	l.unavailable.Add(1)
	return nil, stan, ErrUnavailable
}

// probe echoes a connection on which a request just timed out, unless a probe is already running:
// an issuer that answers the echo is slow or dropped one answer and keeps its connection; one that
// does not is hung, and the connection is failed so traffic moves on without waiting for the read
// timeout of three echo intervals.
func (l *Link) probe(c *conn) {
	if l.ctx.Err() != nil || !c.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.probing.Store(false)
		if err := l.networkMessage(l.ctx, c, codeEcho, l.cfg.Timeout); err != nil && l.ctx.Err() == nil {
			c.fail(fmt.Errorf("echo after a timeout: %w", err))
		}
	}()
}

// pack frames a message: 2-byte length and body in one buffer, so it goes out in one write.
func pack(m *iso8583.Message) ([]byte, error) {
	body, err := m.Pack()
	if err != nil {
		return nil, err
	}
	return specs.AppendFrame(make([]byte, 0, 2+len(body)), body)
}

// allocateSTAN returns the next trace number that no in-flight request of this link holds.
func (l *Link) allocateSTAN() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		n := l.stan.Add(1)
		v := n%maxSTAN + 1
		s := fmt.Sprintf("%06d", v)
		if _, busy := l.inFlight[s]; !busy {
			l.inFlight[s] = struct{}{}
			return s
		}
	}
}

func (l *Link) release(stan string) {
	l.mu.Lock()
	delete(l.inFlight, stan)
	l.mu.Unlock()
}

// networkMessage sends an 0800 with the given field 70 code on one connection and checks the answer.
func (l *Link) networkMessage(ctx context.Context, c *conn, code string, timeout time.Duration) error {
	m := iso8583.NewMessage(l.cfg.Spec)
	m.MTI("0800")
	stan := l.allocateSTAN()
	defer l.release(stan)
	for id, v := range map[int]string{7: time.Now().UTC().Format("0102150405"), 11: stan, 70: code} {
		if err := m.Field(id, v); err != nil {
			return fmt.Errorf("building 0800: field %d: %w", id, err)
		}
	}
	frame, err := pack(m)
	if err != nil {
		return fmt.Errorf("packing 0800 %s: %w", code, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.exchange(ctx, stan, frame)
	if err != nil {
		return fmt.Errorf("0800 %s: %w", code, err)
	}
	rc, err := resp.GetString(39)
	if err != nil {
		return fmt.Errorf("0810 %s: no response code: %w", code, err)
	}
	if rc != "00" {
		return fmt.Errorf("0810 %s: issuer answered %s", code, rc)
	}
	return nil
}

// lateAnswer hands an answer nobody waits for any more to OnLateAnswer.
func (l *Link) lateAnswer(mti string, m *iso8583.Message) {
	l.lateAnswers.Add(1)
	rc, _ := m.GetString(39)
	stan, _ := m.GetString(11)
	l.log.Warn("late issuer answer", zap.String("mti", mti), zap.String("stan", stan), zap.String("rc", rc))
	if l.cfg.OnLateAnswer != nil {
		l.cfg.OnLateAnswer(l.cfg.IssuerID, m)
	}
}

// Stats are counters for metrics and tests.
type Stats struct {
	SignOns     int64 // sign-ons the issuer accepted, over all connections
	LateAnswers int64 // answers that came after their request timed out
	Timeouts    int64 // requests written and not answered in time
	Unavailable int64 // requests answered ErrUnavailable (never written)
	Endpoints   []EndpointStats
}

// EndpointStats are one endpoint's figures.
type EndpointStats struct {
	Addr        string
	Role        string // primary, secondary, backup-N
	Connections int    // configured
	Up          int    // signed on now
	Sent        int64  // requests written on this endpoint's connections (Send only, not 0800s)
	Answered    int64  // of which answered in time
}

// Stats returns the link's counters and, per endpoint in order of preference, its figures.
func (l *Link) Stats() Stats {
	s := Stats{SignOns: l.signOns.Load(), LateAnswers: l.lateAnswers.Load(), Timeouts: l.timeouts.Load(),
		Unavailable: l.unavailable.Load()}
	for _, ep := range l.endpoints {
		s.Endpoints = append(s.Endpoints, EndpointStats{Addr: ep.addr, Role: ep.role,
			Connections: l.cfg.ConnectionsPerEndpoint, Up: ep.up(), Sent: ep.sent.Load(), Answered: ep.answered.Load()})
	}
	return s
}
