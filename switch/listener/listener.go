// Package listener accepts terminal connections on one TCP port and frames their messages. Each
// connection has one reader goroutine (NATS style); each request is handled in its own goroutine so a
// terminal can have many requests in flight, bounded per connection; answers are written back in the
// order they complete, coalesced into as few writes as the moment allows. The listener knows frames,
// not ISO 8583: the Handler turns a request body into an answer body.
package listener

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/specs"
)

// Handler answers one request body (the ISO 8583 message, TPDU removed). A nil answer sends nothing.
type Handler func(ctx context.Context, body []byte) []byte

// Config bounds one listener.
type Config struct {
	Name                     string
	Address                  string
	TPDU                     bool
	MaxConnections           int
	MaxInFlightPerConnection int
	IdleTimeout              time.Duration // 0: a connection may stay idle for ever
	Log                      *zap.Logger
}

const (
	readBufferBytes = 2048 // small: 10,000 idle terminals must fit in 30 KiB each
	// maxPendingWriteBytes bounds answers queued for a terminal that does not read them.
	maxPendingWriteBytes = 1 << 20
)

// Listener serves one port.
type Listener struct {
	cfg     Config
	handler Handler
	log     *zap.Logger

	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // reader goroutines and request goroutines

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	accepted, rejected, brokenFrames, active atomic.Int64
}

// New builds a listener; Start opens the port.
func New(cfg Config, h Handler) *Listener {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.MaxInFlightPerConnection < 1 {
		cfg.MaxInFlightPerConnection = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Listener{cfg: cfg, handler: h, log: cfg.Log.With(zap.String("listener", cfg.Name)),
		ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
}

// Start opens the port and accepts in the background.
func (l *Listener) Start() error {
	ln, err := net.Listen("tcp", l.cfg.Address)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.cfg.Name, err)
	}
	l.ln = ln
	l.wg.Add(1)
	go l.accept()
	l.log.Info("listening", zap.String("address", ln.Addr().String()), zap.Bool("tpdu", l.cfg.TPDU))
	return nil
}

// Addr is the bound address (useful with port 0).
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for in-flight requests to finish.
func (l *Listener) Close() error {
	l.cancel()
	if l.ln == nil {
		return nil
	}
	err := l.ln.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

func (l *Listener) accept() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed", zap.Error(err), zap.Duration("retry_in", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if l.cfg.MaxConnections > 0 && l.active.Load() >= int64(l.cfg.MaxConnections) {
			l.rejected.Add(1)
			nc.Close()
			continue
		}
		l.mu.Lock()
		l.conns[nc] = struct{}{}
		l.mu.Unlock()
		l.active.Add(1)
		l.accepted.Add(1)
		l.wg.Add(1)
		go l.serve(nc)
	}
}

// serve is the connection's one reader.
func (l *Listener) serve(nc net.Conn) {
	defer l.wg.Done()
	var inFlight sync.WaitGroup
	defer func() {
		nc.Close()
		l.mu.Lock()
		delete(l.conns, nc)
		l.mu.Unlock()
		// The slot is free once the connection's requests have finished (they may still be booking).
		go func() { inFlight.Wait(); l.active.Add(-1) }()
	}()
	r := bufio.NewReaderSize(nc, readBufferBytes)
	w := &connWriter{conn: nc}
	slots := make(chan struct{}, l.cfg.MaxInFlightPerConnection)
	for {
		if l.cfg.IdleTimeout > 0 {
			_ = nc.SetReadDeadline(time.Now().Add(l.cfg.IdleTimeout))
		}
		body, err := specs.ReadFrame(r, nil) // a fresh buffer: the request goroutine keeps it
		if err != nil {
			l.endOfStream(nc, err)
			return
		}
		var tpdu specs.TPDU
		msg := body
		if l.cfg.TPDU {
			if tpdu, msg, err = specs.SplitTPDU(body); err != nil {
				l.brokenFrames.Add(1)
				l.log.Warn("broken TPDU; closing connection", zap.String("remote", nc.RemoteAddr().String()), zap.Error(err))
				return
			}
		}
		select {
		case slots <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		inFlight.Add(1)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer inFlight.Done()
			defer func() { <-slots }()
			answer := l.handle(msg)
			if answer == nil {
				return
			}
			if l.cfg.TPDU {
				reply := tpdu.Reply()
				answer = append(reply[:], answer...)
			}
			frame, err := specs.AppendFrame(make([]byte, 0, len(answer)+2), answer)
			if err != nil {
				l.log.Error("answer cannot be framed", zap.Error(err))
				return
			}
			if err := w.write(frame); err != nil {
				l.log.Debug("writing answer", zap.Error(err))
			}
		}()
	}
}

// handle calls the handler and turns a panic into a dropped answer and a log line, never a crash.
// The handler's context is not cancelled by Close: a request already read runs to its end (it may
// be approved and must then be booked); each transaction bounds itself with its own timeout.
func (l *Listener) handle(msg []byte) (answer []byte) {
	defer func() {
		if p := recover(); p != nil {
			l.log.Error("request handler panicked", zap.Any("panic", p))
			answer = nil
		}
	}()
	return l.handler(context.WithoutCancel(l.ctx), msg)
}

func (l *Listener) endOfStream(nc net.Conn, err error) {
	var ne net.Error
	var fle *specs.FrameLengthError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), l.ctx.Err() != nil:
	case errors.As(err, &ne) && ne.Timeout():
		l.log.Info("idle terminal connection closed", zap.String("remote", nc.RemoteAddr().String()))
	case errors.As(err, &fle), errors.Is(err, io.ErrUnexpectedEOF):
		l.brokenFrames.Add(1)
		l.log.Warn("broken frame; closing connection", zap.String("remote", nc.RemoteAddr().String()), zap.Error(err))
	default:
		l.log.Debug("connection read", zap.Error(err))
	}
}

// Stats are counters for metrics and tests.
type Stats struct{ Accepted, Rejected, BrokenFrames, Active int64 }

func (l *Listener) Stats() Stats {
	return Stats{Accepted: l.accepted.Load(), Rejected: l.rejected.Load(), BrokenFrames: l.brokenFrames.Load(), Active: l.active.Load()}
}

// connWriter coalesces answers: whoever finds the writer idle flushes everything queued meanwhile,
// so a burst of answers costs one write and no goroutine waits on another's syscall.
type connWriter struct {
	conn     net.Conn
	mu       sync.Mutex
	pending  []byte
	spare    []byte
	flushing bool
	failed   error
}

func (w *connWriter) write(frame []byte) error {
	w.mu.Lock()
	if w.failed != nil {
		w.mu.Unlock()
		return w.failed
	}
	if len(w.pending)+len(frame) > maxPendingWriteBytes {
		w.failed = errors.New("terminal is not reading its answers")
		w.mu.Unlock()
		w.conn.Close()
		return w.failed
	}
	w.pending = append(w.pending, frame...)
	if w.flushing {
		w.mu.Unlock()
		return nil
	}
	w.flushing = true
	for len(w.pending) > 0 && w.failed == nil {
		out := w.pending
		w.pending = w.spare[:0]
		w.mu.Unlock()
		_ = w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := w.conn.Write(out)
		w.mu.Lock()
		w.spare = out[:0]
		if err != nil {
			w.failed = err
		}
	}
	w.flushing = false
	err := w.failed
	w.mu.Unlock()
	return err
}
