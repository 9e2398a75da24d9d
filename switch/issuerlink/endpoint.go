package issuerlink

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// endpoint is one host:port of an issuer with its connections. Only signed-on connections are in
// online, the set Send picks from.
type endpoint struct {
	link *Link
	addr string
	role string

	mu     sync.Mutex
	online atomic.Pointer[[]*conn] // replaced whole under mu; read without a lock on every Send
	next   atomic.Uint32           // round robin over online

	sent, answered atomic.Int64
}

func newEndpoint(l *Link, addr, role string) *endpoint {
	e := &endpoint{link: l, addr: addr, role: role}
	e.online.Store(&[]*conn{})
	return e
}

// pick returns a signed-on connection, round robin, or nil.
func (e *endpoint) pick() *conn {
	online := *e.online.Load()
	if len(online) == 0 {
		return nil
	}
	return online[int(e.next.Add(1)-1)%len(online)]
}

// up is the number of signed-on connections.
func (e *endpoint) up() int { return len(*e.online.Load()) }

// setOnline adds a connection to the traffic set or removes it.
func (e *endpoint) setOnline(c *conn, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := *e.online.Load()
	i := slices.Index(cur, c)
	switch {
	case on && i < 0:
		next := append(slices.Clip(cur), c)
		e.online.Store(&next)
	case !on && i >= 0:
		next := slices.Delete(slices.Clone(cur), i, i+1)
		e.online.Store(&next)
	}
}

// keep holds one connection slot of the endpoint until ctx ends: dial, sign on, serve (echo when
// idle), and after any failure redial with exponential back-off from ReconnectWait to
// MaxReconnectWait; a connection that signed on resets the back-off.
func (e *endpoint) keep(ctx context.Context) {
	l := e.link
	wait := l.cfg.ReconnectWait
	for {
		if signedOn := e.serveOnce(ctx); signedOn {
			wait = l.cfg.ReconnectWait
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, l.cfg.MaxReconnectWait)
	}
}

// serveOnce dials, signs on and serves one connection until it fails or ctx ends, then signs off
// (when ctx ended) and closes it. It tells whether the connection got signed on.
func (e *endpoint) serveOnce(ctx context.Context) bool {
	l := e.link
	d := net.Dialer{Timeout: max(l.cfg.Timeout, time.Second)}
	nc, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Debug("dialling issuer", zap.String("addr", e.addr), zap.String("role", e.role), zap.Error(err))
		}
		return false
	}
	c := newConn(l, e, nc)
	if err := l.networkMessage(ctx, c, codeSignOn, l.cfg.Timeout); err != nil {
		if ctx.Err() == nil {
			l.log.Warn("sign-on refused", zap.String("addr", e.addr), zap.String("role", e.role), zap.Error(err))
		}
		c.fail(fmt.Errorf("sign-on: %w: %w", errConnClose, err))
		return false
	}
	l.signOns.Add(1)
	e.setOnline(c, true)
	l.log.Info("issuer link signed on", zap.String("addr", e.addr), zap.String("role", e.role))
	e.watch(ctx, c)
	if ctx.Err() != nil {
		// Closing: no new traffic, tell the issuer, then close.
		e.setOnline(c, false)
		if err := l.networkMessage(context.Background(), c, codeSignOff, min(l.cfg.Timeout, signOffTimeout)); err != nil {
			l.log.Debug("sign-off", zap.String("addr", e.addr), zap.Error(err))
		}
		c.fail(errConnClose)
	}
	return true
}

// watch echoes the connection whenever nothing was written to it for an echo interval, until it
// fails (a failed echo fails it) or ctx ends.
func (e *endpoint) watch(ctx context.Context, c *conn) {
	l := e.link
	interval := l.cfg.EchoInterval
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		idle := time.Since(time.Unix(0, c.lastWrite.Load()))
		if idle < interval {
			t.Reset(interval - idle)
			continue
		}
		if err := l.networkMessage(ctx, c, codeEcho, l.cfg.Timeout); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.fail(fmt.Errorf("echo failed: %w", err))
			return
		}
		t.Reset(interval)
	}
}
