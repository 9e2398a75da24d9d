// Package issuerlink is the switch's connection to one issuer host: a pool of TCP connections over
// iso8583-connection, each signed on (0800, field 70 = 001) before it carries traffic, echoed (301)
// when idle, and reconnected with exponential back-off when it drops. The link assigns its own STAN,
// unique among its in-flight requests, because iso8583-connection matches answers by STAN alone.
package issuerlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	connection "github.com/moov-io/iso8583-connection"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/specs"
)

// Network management codes (field 70).
const (
	codeSignOn  = "001"
	codeSignOff = "002"
	codeEcho    = "301"
)

// ErrUnavailable means no signed-on connection to the issuer exists: the answer is 91 at once.
var ErrUnavailable = errors.New("issuer unavailable")

// ErrTimeout means the issuer did not answer within its timeout: the answer is 91 and the request may
// still have been approved, so it must be reversed.
var ErrTimeout = errors.New("issuer timeout")

// Config is one issuer's link settings.
type Config struct {
	IssuerID               string
	Endpoints              []string // the first is primary
	ConnectionsPerEndpoint int
	Timeout                time.Duration // per request
	EchoInterval           time.Duration // idle time before an echo
	ReconnectWait          time.Duration // first back-off
	MaxReconnectWait       time.Duration // back-off cap
	Spec                   *iso8583.MessageSpec
	Log                    *zap.Logger
	// OnLateAnswer receives answers that arrive after their request timed out (a late approval must be
	// reversed). It must not block.
	OnLateAnswer func(issuerID string, answer *iso8583.Message)
}

// Link is the pool of connections to one issuer.
type Link struct {
	cfg  Config
	pool *connection.Pool
	log  *zap.Logger

	stan     atomic.Uint32
	mu       sync.Mutex
	inFlight map[string]struct{}

	signOns, lateAnswers, timeouts atomic.Int64
}

// maxSTAN is the largest 6-digit trace number.
const maxSTAN = 999999

// New builds a link; Start connects it.
func New(cfg Config) (*Link, error) {
	if cfg.Spec == nil || len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("issuer %s: spec and at least one endpoint are required", cfg.IssuerID)
	}
	if cfg.ConnectionsPerEndpoint < 1 {
		cfg.ConnectionsPerEndpoint = 1
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	l := &Link{cfg: cfg, log: cfg.Log.With(zap.String("issuer", cfg.IssuerID)), inFlight: map[string]struct{}{}}
	var addrs []string
	for _, ep := range cfg.Endpoints {
		for i := 0; i < cfg.ConnectionsPerEndpoint; i++ {
			addrs = append(addrs, ep)
		}
	}
	pool, err := connection.NewPool(l.newConnection, addrs,
		connection.PoolReconnectWait(cfg.ReconnectWait),
		connection.PoolMaxReconnectWait(cfg.MaxReconnectWait),
		connection.PoolMinConnections(0), // start even when the issuer is down; reconnect finds it later
		connection.PoolConnectionsFilter(func(c *connection.Connection) bool {
			return c.Status() == connection.StatusOnline
		}),
		connection.PoolErrorHandler(func(err error) { l.log.Debug("issuer link", zap.Error(err)) }),
	)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", cfg.IssuerID, err)
	}
	l.pool = pool
	return l, nil
}

func (l *Link) newConnection(addr string) (*connection.Connection, error) {
	return connection.New(addr, l.cfg.Spec, specs.ReadMessageLength, specs.WriteMessageLength,
		connection.SendTimeout(l.cfg.Timeout),
		connection.ConnectTimeout(max(l.cfg.Timeout, time.Second)),
		connection.IdleTime(l.cfg.EchoInterval),
		// A peer silent for three echo intervals is dead even if TCP has not noticed.
		connection.ReadTimeout(3*l.cfg.EchoInterval),
		connection.ReadTimeoutHandler(func(c *connection.Connection) {
			l.log.Warn("issuer silent past read timeout; closing connection", zap.String("addr", c.Addr()))
			c.TriggerFailure(errors.New("read timeout"))
		}),
		connection.PingHandler(l.echo),
		connection.OnConnectCtx(l.signOn),
		connection.OnCloseCtx(l.signOff),
		connection.InboundMessageHandler(l.inbound),
		connection.SetMessageWriter(frameWriter{}),
		connection.ErrorHandler(func(err error) { l.log.Debug("issuer connection", zap.Error(err)) }),
	)
}

// Start connects the pool. It does not wait for the issuer: connections that fail keep retrying.
func (l *Link) Start(ctx context.Context) error {
	return l.pool.ConnectCtx(ctx)
}

// Close signs off and closes every connection.
func (l *Link) Close() error { return l.pool.Close() }

// Up tells whether at least one connection is signed on.
func (l *Link) Up() bool {
	for _, c := range l.pool.Connections() {
		if c.Status() == connection.StatusOnline {
			return true
		}
	}
	return false
}

// Send forwards a request with the link's own STAN and transmission time and waits for the answer.
// It returns at once with ErrUnavailable when no connection is signed on.
func (l *Link) Send(ctx context.Context, req *iso8583.Message) (*iso8583.Message, string, error) {
	conn, err := l.pool.Get()
	if err != nil {
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
	timeout := l.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	resp, err := conn.Send(req, connection.SendTimeout(timeout))
	switch {
	case err == nil:
		return resp, stan, nil
	case errors.Is(err, connection.ErrSendTimeout):
		l.timeouts.Add(1)
		return nil, stan, ErrTimeout
	case errors.Is(err, connection.ErrConnectionClosed):
		return nil, stan, ErrUnavailable
	default:
		return nil, stan, fmt.Errorf("sending to issuer %s: %w", l.cfg.IssuerID, err)
	}
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
func (l *Link) networkMessage(c *connection.Connection, code string) error {
	m := iso8583.NewMessage(l.cfg.Spec)
	m.MTI("0800")
	stan := l.allocateSTAN()
	defer l.release(stan)
	for id, v := range map[int]string{7: time.Now().UTC().Format("0102150405"), 11: stan, 70: code} {
		if err := m.Field(id, v); err != nil {
			return fmt.Errorf("building 0800: field %d: %w", id, err)
		}
	}
	resp, err := c.Send(m, connection.SendTimeout(l.cfg.Timeout))
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

func (l *Link) signOn(ctx context.Context, c *connection.Connection) error {
	if err := l.networkMessage(c, codeSignOn); err != nil {
		l.log.Warn("sign-on refused", zap.String("addr", c.Addr()), zap.Error(err))
		return err
	}
	c.SetStatus(connection.StatusOnline)
	l.signOns.Add(1)
	l.log.Info("issuer link signed on", zap.String("addr", c.Addr()))
	return nil
}

func (l *Link) signOff(ctx context.Context, c *connection.Connection) error {
	c.SetStatus(connection.StatusOffline)
	if err := l.networkMessage(c, codeSignOff); err != nil {
		l.log.Debug("sign-off", zap.Error(err))
	}
	return nil
}

// echo keeps an idle link proven alive; a failed echo takes the connection down for a reconnect.
func (l *Link) echo(c *connection.Connection) {
	if err := l.networkMessage(c, codeEcho); err != nil {
		l.log.Warn("echo failed; reconnecting", zap.String("addr", c.Addr()), zap.Error(err))
		c.TriggerFailure(err)
	}
}

// inbound handles messages nobody waits for: late answers, and the issuer's own network messages.
func (l *Link) inbound(c *connection.Connection, m *iso8583.Message) {
	mti, _ := m.GetMTI()
	switch {
	case mti == "0800":
		resp := iso8583.NewMessage(l.cfg.Spec)
		resp.MTI("0810")
		for _, id := range []int{7, 11, 70} {
			if v, err := m.GetString(id); err == nil && v != "" {
				_ = resp.Field(id, v)
			}
		}
		_ = resp.Field(39, "00")
		if err := c.Reply(resp); err != nil {
			l.log.Debug("answering issuer 0800", zap.Error(err))
		}
	case len(mti) == 4 && (mti[2] == '1' || mti[2] == '3'):
		l.lateAnswers.Add(1)
		rc, _ := m.GetString(39)
		stan, _ := m.GetString(11)
		l.log.Warn("late issuer answer", zap.String("mti", mti), zap.String("stan", stan), zap.String("rc", rc))
		if l.cfg.OnLateAnswer != nil {
			l.cfg.OnLateAnswer(l.cfg.IssuerID, m)
		}
	default:
		l.log.Warn("unexpected message from issuer", zap.String("mti", mti))
	}
}

// Stats are counters for metrics and tests.
type Stats struct{ SignOns, LateAnswers, Timeouts int64 }

func (l *Link) Stats() Stats {
	return Stats{SignOns: l.signOns.Load(), LateAnswers: l.lateAnswers.Load(), Timeouts: l.timeouts.Load()}
}

// frameWriter writes length and message in one write, so a message never goes out in two segments.
type frameWriter struct{}

func (frameWriter) WriteMessage(w io.Writer, m *iso8583.Message) error {
	body, err := m.Pack()
	if err != nil {
		return err
	}
	frame, err := specs.AppendFrame(make([]byte, 0, 2+len(body)), body)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}
