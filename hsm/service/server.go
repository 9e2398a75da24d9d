// Package service runs the HSM as a TCP service framed like a Thales payShield: a 2-byte big-endian
// length, a fixed-length header echoed back, a 2-letter command and its fields; the reply carries the
// command code with its second letter incremented and a 2-digit error code. Many requests may be in
// flight on one connection; replies return in completion order, each with its request's header.
// Client is the Go side of the same protocol.
package service

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
)

// Config bounds the service. Zero values take the defaults.
type Config struct {
	// HeaderLength is the number of header bytes each request starts with and each reply echoes
	// (payShield's "message header length"). Default 4.
	HeaderLength int
	// MaxConnections open at once; further connections are closed on accept. Default 1024.
	MaxConnections int
	// MaxInFlightPerConn is how many requests of one connection may be queued or running; the reader
	// stops reading that connection until replies are written. Default 256.
	MaxInFlightPerConn int
	// Workers run commands for all connections. Default GOMAXPROCS: commands are CPU-bound.
	Workers int
	// IdleTimeout closes a connection that sends nothing for this long. Default 10 minutes.
	IdleTimeout time.Duration
	// WriteTimeout bounds one flush of replies to a slow reader. Default 10 seconds.
	WriteTimeout time.Duration
	Logger       *zap.Logger
}

const (
	defaultHeaderLength   = 4
	defaultMaxConnections = 1024
	defaultMaxInFlight    = 256
	defaultIdleTimeout    = 10 * time.Minute
	defaultWriteTimeout   = 10 * time.Second
	// maxHeaderLength keeps a misconfiguration from eating whole frames.
	maxHeaderLength = 64
	// jobQueuePerWorker bounds the shared queue between connection readers and workers.
	jobQueuePerWorker = 512
	readBufferBytes   = 64 * 1024
	writeBufferBytes  = 64 * 1024
)

func (c Config) withDefaults() (Config, error) {
	if c.HeaderLength == 0 {
		c.HeaderLength = defaultHeaderLength
	}
	if c.HeaderLength < 0 || c.HeaderLength > maxHeaderLength {
		return c, fmt.Errorf("header length %d, want 0–%d", c.HeaderLength, maxHeaderLength)
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = defaultMaxConnections
	}
	if c.MaxInFlightPerConn <= 0 {
		c.MaxInFlightPerConn = defaultMaxInFlight
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// Server serves one HSM over TCP.
type Server struct {
	hsm  *hsm.HSM
	cfg  Config
	log  *zap.Logger
	jobs chan job

	mu    sync.Mutex
	conns map[*conn]struct{}
	open  atomic.Int64
}

// job is one request on its way to a worker: the frame body (header and command) and its connection.
type job struct {
	c     *conn
	frame *[]byte
}

// NewServer prepares a server for h. Call Serve to accept connections.
func NewServer(h *hsm.HSM, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Server{hsm: h, cfg: cfg, log: cfg.Logger, jobs: make(chan job, cfg.Workers*jobQueuePerWorker), conns: map[*conn]struct{}{}}, nil
}

// Serve accepts connections on ln until ctx is cancelled or ln fails; it then closes every
// connection and returns after the workers stop. It returns nil on cancellation.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// A listener failure stops the connections too, the same way a cancellation does.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var workers sync.WaitGroup
	for i := 0; i < s.cfg.Workers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			s.work(ctx)
		}()
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var readers sync.WaitGroup
	var err error
	for {
		nc, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("accepting HSM connections: %w", aerr)
			}
			break
		}
		if s.open.Load() >= int64(s.cfg.MaxConnections) {
			s.log.Warn("hsm connection refused: connection limit reached", zap.Int("max_connections", s.cfg.MaxConnections), zap.Stringer("remote", nc.RemoteAddr()))
			nc.Close()
			continue
		}
		c := s.newConn(nc)
		readers.Add(1)
		go func() {
			defer readers.Done()
			c.serve(ctx)
		}()
	}
	ln.Close()
	cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	readers.Wait()
	close(s.jobs)
	workers.Wait()
	return err
}

// ListenAndServe listens on addr and serves until ctx is cancelled. ready, when not nil, receives the
// bound address once listening (useful with port 0).
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	if ready != nil {
		ready(ln.Addr())
	}
	return s.Serve(ctx, ln)
}

// work runs commands until the job queue closes.
func (s *Server) work(ctx context.Context) {
	for j := range s.jobs {
		frame := *j.frame
		hl := s.cfg.HeaderLength
		reply := replyPool.Get().(*[]byte)
		out := append((*reply)[:0], 0, 0)
		out = append(out, frame[:hl]...)
		out = execute(ctx, s.hsm, frame[hl:], out)
		binary.BigEndian.PutUint16(out, uint16(len(out)-2))
		*reply = out
		framePool.Put(j.frame)
		j.c.replies <- reply
	}
}

var (
	framePool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}
	replyPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}
)

// conn is one client connection: a reader goroutine (serve) and a writer goroutine (write).
type conn struct {
	s        *Server
	nc       net.Conn
	replies  chan *[]byte
	inFlight chan struct{} // a slot per request read and not yet answered
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, replies: make(chan *[]byte, s.cfg.MaxInFlightPerConn), inFlight: make(chan struct{}, s.cfg.MaxInFlightPerConn)}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.open.Add(1)
	return c
}

// serve reads frames until the peer closes, a frame is unreadable, or the server stops. Replies
// still being computed are written before the connection closes.
func (c *conn) serve(ctx context.Context) {
	s := c.s
	remote := c.nc.RemoteAddr().String()
	s.log.Info("hsm connection opened", zap.String("remote", remote))
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.write()
	}()

	err := c.read(ctx)
	// Wait for every outstanding request by taking all in-flight slots, then stop the writer.
	for i := 0; i < cap(c.inFlight); i++ {
		c.inFlight <- struct{}{}
	}
	close(c.replies)
	<-writerDone
	c.nc.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.open.Add(-1)
	switch {
	case err == nil || errors.Is(err, io.EOF) || ctx.Err() != nil:
		s.log.Info("hsm connection closed", zap.String("remote", remote))
	default:
		// The error names lengths and timeouts only, never frame contents.
		s.log.Warn("hsm connection closed", zap.String("remote", remote), zap.Error(err))
	}
}

// errUnreadable closes a connection whose framing cannot be trusted any more.
var errUnreadable = errors.New("unreadable frame")

func (c *conn) read(ctx context.Context) error {
	s := c.s
	hl := s.cfg.HeaderLength
	br := bufio.NewReaderSize(c.nc, readBufferBytes)
	var lenBuf [2]byte
	for {
		c.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		// Checked after the deadline is set: shutdown cancels, then sets every deadline to now, so
		// one of the two always stops this reader.
		if ctx.Err() != nil {
			return nil
		}
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: connection closed inside a length prefix", errUnreadable)
			}
			return err
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if n < hl {
			return fmt.Errorf("%w: %d bytes cannot hold a %d-byte header", errUnreadable, n, hl)
		}
		fp := framePool.Get().(*[]byte)
		frame := *fp
		if cap(frame) < n {
			frame = make([]byte, n)
		}
		frame = frame[:n]
		if _, err := io.ReadFull(br, frame); err != nil {
			return fmt.Errorf("%w: frame of %d bytes cut short", errUnreadable, n)
		}
		*fp = frame
		c.inFlight <- struct{}{}
		s.jobs <- job{c: c, frame: fp}
	}
}

// write sends replies as they complete, flushing when no more are waiting so that pipelined replies
// share system calls. After a write error it keeps draining (and freeing slots) so readers and
// workers never block on a dead connection.
func (c *conn) write() {
	bw := bufio.NewWriterSize(c.nc, writeBufferBytes)
	failed := false
	for r := range c.replies {
		for {
			if !failed {
				if _, err := bw.Write(*r); err != nil {
					failed = true
					c.nc.Close()
				}
			}
			replyPool.Put(r)
			<-c.inFlight
			if len(c.replies) == 0 {
				break
			}
			var ok bool
			if r, ok = <-c.replies; !ok {
				break
			}
		}
		if !failed && bw.Buffered() > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			if err := bw.Flush(); err != nil {
				failed = true
				c.nc.Close()
			}
		}
	}
	if !failed {
		bw.Flush()
	}
}
