package service

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poswitch/poswitch/hsm"
)

// ClientConfig bounds a client. Zero values take the defaults.
type ClientConfig struct {
	// HeaderLength must match the server's; the client puts a request id in it. Default 4. With 0,
	// requests are sent one at a time.
	HeaderLength int
	// MaxInFlight requests on the connection at once; further calls wait. Default 128.
	MaxInFlight int
	// DialTimeout bounds connecting. Default 5 seconds.
	DialTimeout time.Duration
	// RequestTimeout bounds a call whose context has no deadline. Default 5 seconds.
	RequestTimeout time.Duration
}

func (c ClientConfig) withDefaults() (ClientConfig, error) {
	if c.HeaderLength == 0 {
		c.HeaderLength = defaultHeaderLength
	}
	if c.HeaderLength < 0 || c.HeaderLength > maxHeaderLength {
		return c, fmt.Errorf("header length %d, want 0–%d", c.HeaderLength, maxHeaderLength)
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 128
	}
	if c.HeaderLength == 0 {
		c.MaxInFlight = 1
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	return c, nil
}

// ErrClosed is returned by calls on a closed client.
var ErrClosed = errors.New("hsm client closed")

// Client talks to `poswitch hsm serve` over one TCP connection, with many requests in flight matched
// by header. It redials after the connection fails. It implements hsm.PINTranslator, hsm.Verifier
// and hsm.MACer, so a switch can hold either it or an in-process *hsm.HSM.
type Client struct {
	addr  string
	cfg   ClientConfig
	slots chan struct{}

	mu     sync.Mutex
	sess   *session
	closed bool
	nextID atomic.Uint64
}

// Dial connects to addr. The connection is re-established on demand if it breaks later.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{addr: addr, cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight)}
	if _, err := c.session(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.sess != nil {
		c.sess.fail(ErrClosed)
		c.sess = nil
	}
	return nil
}

// session is one connection: a writer goroutine coalescing requests, a reader goroutine routing
// replies to waiting calls by header.
type session struct {
	nc       net.Conn
	hl       int
	requests chan []byte
	done     chan struct{}

	mu      sync.Mutex
	pending map[string]chan []byte
	err     error
}

func (c *Client) session(ctx context.Context) (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.sess != nil && c.sess.alive() {
		return c.sess, nil
	}
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to HSM at %s: %w", c.addr, err)
	}
	s := &session{nc: nc, hl: c.cfg.HeaderLength, requests: make(chan []byte, c.cfg.MaxInFlight), done: make(chan struct{}), pending: map[string]chan []byte{}}
	go s.write()
	go s.read()
	c.sess = s
	return s, nil
}

func (s *session) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		close(s.done)
		s.nc.Close()
		for id, ch := range s.pending {
			close(ch)
			delete(s.pending, id)
		}
	}
	s.mu.Unlock()
}

func (s *session) write() {
	bw := bufio.NewWriterSize(s.nc, writeBufferBytes)
	for {
		var frame []byte
		select {
		case frame = <-s.requests:
		case <-s.done:
			return
		}
		if _, err := bw.Write(frame); err != nil {
			s.fail(fmt.Errorf("writing to HSM: %w", err))
			return
		}
		if len(s.requests) == 0 {
			if err := bw.Flush(); err != nil {
				s.fail(fmt.Errorf("writing to HSM: %w", err))
				return
			}
		}
	}
}

func (s *session) read() {
	br := bufio.NewReaderSize(s.nc, readBufferBytes)
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			s.fail(fmt.Errorf("reading from HSM: %w", err))
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		frame := make([]byte, n)
		if _, err := io.ReadFull(br, frame); err != nil {
			s.fail(fmt.Errorf("reading from HSM: %w", err))
			return
		}
		if n < s.hl {
			s.fail(fmt.Errorf("reading from HSM: reply of %d bytes has no header", n))
			return
		}
		s.mu.Lock()
		ch, ok := s.pending[string(frame[:s.hl])]
		if ok {
			delete(s.pending, string(frame[:s.hl]))
		}
		s.mu.Unlock()
		if ok {
			ch <- frame[s.hl:] // buffered: never blocks
		}
	}
}

const headerAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// header renders request id n in the header's width (base 36). MaxInFlight is far below 36^width for
// any useful width, and ids in use are skipped, so headers are unique among requests in flight.
func (c *Client) header(n uint64) string {
	b := make([]byte, c.cfg.HeaderLength)
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = headerAlphabet[n%36]
		n /= 36
	}
	return string(b)
}

// Do sends one command (2-letter code and fields) and returns the reply after the header: the
// response code, the error code and the fields. It is the raw form the typed methods use.
func (c *Client) Do(ctx context.Context, command []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	if len(command)+c.cfg.HeaderLength > 0xFFFF {
		return nil, fmt.Errorf("command of %d bytes does not fit a frame: %w", len(command), hsm.ErrInvalidInput)
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for an HSM request slot: %w", ctx.Err())
	}
	defer func() { <-c.slots }()

	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan []byte, 1)
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return nil, err
	}
	var hdr string
	for {
		hdr = c.header(c.nextID.Add(1))
		if _, busy := s.pending[hdr]; !busy {
			break
		}
	}
	s.pending[hdr] = ch
	s.mu.Unlock()

	frame := make([]byte, 2, 2+len(hdr)+len(command))
	binary.BigEndian.PutUint16(frame, uint16(len(hdr)+len(command)))
	frame = append(frame, hdr...)
	frame = append(frame, command...)
	select {
	case s.requests <- frame:
	case <-s.done:
		return nil, s.errOr()
	case <-ctx.Done():
		s.forget(hdr)
		return nil, fmt.Errorf("sending to HSM: %w", ctx.Err())
	}
	select {
	case reply, ok := <-ch:
		if !ok {
			return nil, s.errOr()
		}
		return reply, nil
	case <-ctx.Done():
		s.forget(hdr)
		return nil, fmt.Errorf("waiting for HSM reply: %w", ctx.Err())
	}
}

func (s *session) forget(hdr string) {
	s.mu.Lock()
	delete(s.pending, hdr)
	s.mu.Unlock()
}

func (s *session) errOr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return errors.New("HSM connection lost")
}

// call sends a command and checks the response code; it returns the fields after the error code,
// or the error the code stands for.
func (c *Client) call(ctx context.Context, command []byte) ([]byte, error) {
	reply, err := c.Do(ctx, command)
	if err != nil {
		return nil, err
	}
	if len(reply) < 4 {
		return nil, fmt.Errorf("HSM reply of %d bytes: %w", len(reply), hsm.ErrInternal)
	}
	want := responseCode(command[:2])
	if reply[0] != want[0] || reply[1] != want[1] {
		return nil, fmt.Errorf("HSM answered %q to %q: %w", reply[:2], command[:2], hsm.ErrInternal)
	}
	if err := hsm.ErrorForCode(string(reply[2:4])); err != nil {
		return nil, fmt.Errorf("HSM %s: %w", command[:2], err)
	}
	return reply[4:], nil
}
