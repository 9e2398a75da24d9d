// Package linkhost is the TCP side of a simulated host on the issuer-link dialect: it accepts up to
// a bound of connections, reads 2-byte length frames, hands each request body to a Handler and writes
// the answers back, coalescing them into few flushes, and closes cleanly. What a request means is the
// Handler's business (simulator/issuersim, simulator/walletsim).
package linkhost

import (
	"bufio"
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

const (
	// maxWriteBatchBytes bounds how many bytes of answers the writer coalesces before a flush.
	maxWriteBatchBytes = 64 << 10
	readBufferBytes    = 16 << 10
)

// Answer is what a Handler decided for one request.
type Answer struct {
	Body  []byte        // unframed answer; nil: nothing is sent
	Delay time.Duration // send the answer this much later; answers without delay go out in request order
	Close bool          // close the connection instead of answering, with any answers still queued on it
}

// Handler answers one request body. It is called from the connection's reader, one request at a
// time per connection, and must not keep body: the buffer is reused for the next frame.
type Handler func(body []byte) Answer

// Config configures a Host. Name, Addr, MaxConns, MaxInFlightPerConn and Handler are required.
type Config struct {
	Name               string      // names the host in errors and log lines: "issuer-sim"
	Addr               string      // listen address
	MaxConns           int         // concurrent connections; more are closed as accepted
	MaxInFlightPerConn int         // requests read but not yet answered, per connection
	Handler            Handler     // answers each request
	Log                *zap.Logger // nil: no logging
}

// Host is a listening issuer-link host.
type Host struct {
	cfg Config
	log *zap.Logger

	ln          net.Listener
	mu          sync.Mutex
	conns       map[*conn]struct{}
	closed      bool
	wg          sync.WaitGroup
	connections atomic.Int64
}

// New checks the configuration; Start listens.
func New(cfg Config) (*Host, error) {
	if cfg.Name == "" || cfg.Addr == "" || cfg.Handler == nil {
		return nil, fmt.Errorf("linkhost: name %q, address %q and a handler are required", cfg.Name, cfg.Addr)
	}
	if cfg.MaxConns <= 0 || cfg.MaxInFlightPerConn <= 0 {
		return nil, fmt.Errorf("%s: max connections %d and max in flight per connection %d must be positive",
			cfg.Name, cfg.MaxConns, cfg.MaxInFlightPerConn)
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	return &Host{cfg: cfg, log: log, conns: make(map[*conn]struct{})}, nil
}

// Start listens on Config.Addr and serves connections until Close.
func (h *Host) Start() error {
	ln, err := net.Listen("tcp", h.cfg.Addr)
	if err != nil {
		return fmt.Errorf("%s listening on %s: %w", h.cfg.Name, h.cfg.Addr, err)
	}
	h.ln = ln
	h.wg.Add(1)
	go h.accept()
	return nil
}

// Addr is the address the host listens on (useful with port 0), or Config.Addr before Start.
func (h *Host) Addr() string {
	if h.ln == nil {
		return h.cfg.Addr
	}
	return h.ln.Addr().String()
}

// Connections counts the connections accepted since Start.
func (h *Host) Connections() int64 { return h.connections.Load() }

// Close stops listening, closes every connection and waits for their goroutines.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	var err error
	if h.ln != nil {
		err = h.ln.Close()
	}
	for c := range h.conns {
		c.close()
	}
	h.mu.Unlock()
	h.wg.Wait()
	return err
}

func (h *Host) accept() {
	defer h.wg.Done()
	for {
		nc, err := h.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				h.log.Error(h.cfg.Name+" accept", zap.Error(err))
			}
			return
		}
		h.mu.Lock()
		if h.closed || len(h.conns) >= h.cfg.MaxConns {
			h.mu.Unlock()
			h.log.Warn(h.cfg.Name+" refusing connection", zap.Int("max_conns", h.cfg.MaxConns))
			_ = nc.Close()
			continue
		}
		c := &conn{
			host: h, nc: nc,
			out:  make(chan []byte, h.cfg.MaxInFlightPerConn),
			sem:  make(chan struct{}, h.cfg.MaxInFlightPerConn),
			done: make(chan struct{}),
		}
		h.conns[c] = struct{}{}
		h.connections.Add(1)
		h.wg.Add(2)
		h.mu.Unlock()
		go c.read()
		go c.write()
	}
}

// conn is one issuer-link connection: one reader, one writer, answers in completion order.
type conn struct {
	host      *Host
	nc        net.Conn
	out       chan []byte   // framed answers waiting for the writer
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
	defer c.host.wg.Done()
	defer c.forget()
	name, log := c.host.cfg.Name, c.host.log
	r := bufio.NewReaderSize(c.nc, readBufferBytes)
	buf := make([]byte, specs.MaxFrameLength)
	for {
		body, err := specs.ReadFrame(r, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Info(name+" closing connection", zap.String("remote", c.nc.RemoteAddr().String()), zap.Error(err))
			}
			return
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.done:
			return
		}
		a := c.host.cfg.Handler(body)
		if a.Close {
			log.Info(name+" closing connection as the handler asked", zap.String("remote", c.nc.RemoteAddr().String()))
			<-c.sem
			return
		}
		if a.Body == nil {
			<-c.sem
			continue
		}
		framed, err := specs.AppendFrame(nil, a.Body)
		if err != nil {
			log.Error(name+" framing answer", zap.Error(err))
			<-c.sem
			continue
		}
		if a.Delay > 0 {
			time.AfterFunc(a.Delay, func() { c.send(framed) })
		} else {
			c.send(framed)
		}
	}
}

func (c *conn) forget() {
	c.close()
	c.host.mu.Lock()
	delete(c.host.conns, c)
	c.host.mu.Unlock()
}

// send hands a framed answer to the writer; the slot taken in read is released once it is written.
func (c *conn) send(framed []byte) {
	select {
	case c.out <- framed:
	case <-c.done:
		<-c.sem
	}
}

func (c *conn) write() {
	defer c.host.wg.Done()
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

// writeBatch writes one answer and any others already waiting, then flushes once.
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
