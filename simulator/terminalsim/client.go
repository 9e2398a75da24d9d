// Package terminalsim simulates POS terminals: it sends purchases over any poswitch dialect, many
// connections and many requests in flight on each, and reports outcomes and latency. Client is the
// low-level piece tests use directly; Run drives a whole load.
package terminalsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/specs"
)

// maxQueuedWrites bounds the requests waiting for the connection's writer.
const maxQueuedWrites = 1024

// ErrClosed is returned for requests on a client whose connection has ended.
var ErrClosed = errors.New("terminal connection closed")

// clientTPDU is the TPDU a simulated terminal sends: to NII 001 from address 0000.
var clientTPDU = specs.NewTPDU(0x0001, 0x0000)

type result struct {
	msg  *iso8583.Message
	body []byte
	err  error
}

// Client is one terminal-side TCP connection with many requests in flight, matched to their
// responses by field 41 (terminal) + field 11 (STAN).
type Client struct {
	dialect *specs.Dialect
	tpdu    bool
	nc      net.Conn
	out     chan []byte

	mu      sync.Mutex
	pending map[string]chan result // by 41+11
	raw     []chan result          // SendRaw callers waiting for the next unmatched response
	err     error                  // why the connection ended

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// keys are the secure elements of the terminals that MAC on this connection (UseKeys), by field
	// 41; nil until one is added, so terminals without MAC pay one atomic load per request.
	keys atomic.Pointer[map[string]*TerminalKeys]
}

// UseKeys makes the client MAC the requests of terminal tid under k's TAK and check the MACs of
// their answers (mac.go). Safe to call while requests are in flight.
func (c *Client) UseKeys(tid string, k *TerminalKeys) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]*TerminalKeys{tid: k}
	if old := c.keys.Load(); old != nil {
		for id, ok := range *old {
			if id != tid {
				next[id] = ok
			}
		}
	}
	c.keys.Store(&next)
}

// macKeys returns the keys that MAC msg, nil for a terminal that does not.
func (c *Client) macKeys(msg *iso8583.Message) *TerminalKeys {
	km := c.keys.Load()
	if km == nil {
		return nil
	}
	tid, _ := msg.GetString(41)
	k := (*km)[tid]
	if mti, _ := msg.GetMTI(); !k.MACs(mti) {
		return nil
	}
	return k
}

// Dial connects to a switch (or an issuer host) speaking dialect; tpdu adds a 5-byte TPDU after the
// length prefix of every frame and expects one on every response.
func Dial(ctx context.Context, addr, dialect string, tpdu bool) (*Client, error) {
	d, err := specs.DialectByName(dialect)
	if err != nil {
		return nil, err
	}
	var dialer net.Dialer
	nc, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	c := &Client{
		dialect: d, tpdu: tpdu, nc: nc,
		out:     make(chan []byte, maxQueuedWrites),
		pending: make(map[string]chan result),
		done:    make(chan struct{}),
	}
	c.wg.Add(2)
	go c.read()
	go c.write()
	return c, nil
}

// Close ends the connection; requests still waiting get ErrClosed.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, nil while it is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) fail(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		for k, ch := range c.pending {
			ch <- result{err: err}
			delete(c.pending, k)
		}
		for _, ch := range c.raw {
			ch <- result{err: err}
		}
		c.raw = nil
		c.mu.Unlock()
		close(c.done)
		_ = c.nc.Close()
	})
}

func matchKey(m *iso8583.Message) string {
	tid, _ := m.GetString(41)
	stan, _ := m.GetString(11)
	return tid + "/" + stan
}

// convert re-encodes msg in the client's dialect when it was built for another one.
func (c *Client) convert(msg *iso8583.Message) (*iso8583.Message, error) {
	if msg.GetSpec() == c.dialect.Spec {
		return msg, nil
	}
	out := iso8583.NewMessage(c.dialect.Spec)
	for id := range msg.GetFields() {
		if id == 1 {
			continue
		}
		v, err := msg.GetBytes(id)
		if err != nil {
			return nil, fmt.Errorf("converting field %d: %w", id, err)
		}
		if err := out.BinaryField(id, v); err != nil {
			return nil, fmt.Errorf("converting field %d: %w", id, err)
		}
	}
	return out, nil
}

// Send sends a request and waits for the response with the same 41+11. A message built for another
// dialect (NewPurchase builds iso87a) is re-encoded in the client's dialect.
func (c *Client) Send(ctx context.Context, msg *iso8583.Message) (*iso8583.Message, error) {
	msg, err := c.convert(msg)
	if err != nil {
		return nil, err
	}
	var body []byte
	keys := c.macKeys(msg)
	if keys != nil {
		body, err = keys.MACRequest(ctx, msg)
	} else {
		body, err = msg.Pack()
	}
	if err != nil {
		return nil, fmt.Errorf("packing request: %w", err)
	}
	key := matchKey(msg)
	ch := make(chan result, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	if _, dup := c.pending[key]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("terminal/STAN %s already in flight on this connection", key)
	}
	c.pending[key] = ch
	c.mu.Unlock()
	if err := c.enqueue(ctx, body); err != nil {
		c.forget(key)
		return nil, err
	}
	select {
	case r := <-ch:
		if keys != nil && r.err == nil {
			if err := keys.VerifyAnswer(ctx, r.msg, r.body); err != nil {
				return r.msg, fmt.Errorf("terminal/STAN %s: %w", key, err)
			}
		}
		return r.msg, r.err
	case <-ctx.Done():
		c.forget(key)
		return nil, ctx.Err()
	}
}

func (c *Client) forget(key string) {
	c.mu.Lock()
	delete(c.pending, key)
	c.mu.Unlock()
}

// SendRaw writes frameBody as one frame (the TPDU is added when the client uses one) and returns the
// body of the next response no pending Send claims, or an error if the peer closed first.
func (c *Client) SendRaw(ctx context.Context, frameBody []byte) ([]byte, error) {
	ch := make(chan result, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.raw = append(c.raw, ch)
	c.mu.Unlock()
	if err := c.enqueue(ctx, frameBody); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.body, r.err
	case <-ctx.Done():
		c.mu.Lock()
		for i, w := range c.raw {
			if w == ch {
				c.raw = append(c.raw[:i], c.raw[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Client) enqueue(ctx context.Context, body []byte) error {
	if c.tpdu {
		body = append(clientTPDU[:], body...)
	}
	framed, err := specs.AppendFrame(nil, body)
	if err != nil {
		return err
	}
	select {
	case c.out <- framed:
		return nil
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) write() {
	defer c.wg.Done()
	w := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		select {
		case <-c.done:
			return
		case framed := <-c.out:
			for more := true; more; {
				if _, err := w.Write(framed); err != nil {
					c.fail(fmt.Errorf("writing request: %w", err))
					return
				}
				select {
				case framed = <-c.out:
				default:
					more = false
				}
			}
			if err := w.Flush(); err != nil {
				c.fail(fmt.Errorf("writing request: %w", err))
				return
			}
		}
	}
}

func (c *Client) read() {
	defer c.wg.Done()
	r := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		body, err := specs.ReadFrame(r, nil) // a fresh buffer: the body outlives this loop
		if err != nil {
			c.fail(fmt.Errorf("reading response: %w", err))
			return
		}
		if c.tpdu {
			if _, body, err = specs.SplitTPDU(body); err != nil {
				c.fail(fmt.Errorf("reading response: %w", err))
				return
			}
		}
		c.deliver(body)
	}
}

// deliver hands a response to the Send waiting for its 41+11, else to the oldest SendRaw.
func (c *Client) deliver(body []byte) {
	msg := iso8583.NewMessage(c.dialect.Spec)
	unpackErr := msg.Unpack(body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if unpackErr == nil {
		key := matchKey(msg)
		if ch, ok := c.pending[key]; ok {
			delete(c.pending, key)
			ch <- result{msg: msg, body: body}
			return
		}
	}
	if len(c.raw) > 0 {
		ch := c.raw[0]
		c.raw = c.raw[1:]
		ch <- result{msg: msg, body: body}
	}
	// Otherwise a late answer to a request that timed out: dropped.
}
