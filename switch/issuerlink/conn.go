package issuerlink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/specs"
)

// Outcomes of one exchange on one connection, turned into the package's errors by Send.
var (
	errNotSent   = errors.New("request not written")             // safe to send elsewhere
	errLost      = errors.New("connection lost after writing")   // the issuer may have it
	errTimedOut  = errors.New("no answer before the deadline")   // the issuer may have it
	errConnClose = errors.New("link closed")                     // why a connection ends at Close
	errSaturated = errors.New("too many requests in flight")     // register refused
	errReadIdle  = errors.New("issuer silent past read timeout") // three echo intervals of silence
)

// writeBufferBytes is the writer's buffer: frames queued together go out in one write.
const writeBufferBytes = 16 << 10

// A call is one request waiting for its answer. Its state moves once from queued to written (the
// writer took it) or to abandoned (the sender gave up, or the connection failed, before the writer
// took it): so exactly one side decides whether the issuer can have seen the request.
type call struct {
	state atomic.Int32
	done  chan result // capacity 1: whoever removes the call from pending delivers without blocking
}

const (
	callQueued int32 = iota
	callWritten
	callAbandoned
)

type result struct {
	msg *iso8583.Message
	err error
}

type outFrame struct {
	frame []byte
	call  *call // nil for a reply to the issuer's own 0800
}

// conn is one TCP connection to an endpoint: one reader goroutine that matches answers to pending
// calls by STAN, one writer goroutine that coalesces queued frames into few writes.
type conn struct {
	link *Link
	ep   *endpoint
	nc   net.Conn
	out  chan outFrame
	done chan struct{}

	failOnce sync.Once
	mu       sync.Mutex
	pending  map[string]*call
	closed   bool

	lastWrite atomic.Int64 // unix nanoseconds of the last flush, for the idle echo
	probing   atomic.Bool  // an echo after a timeout is running
}

func newConn(l *Link, ep *endpoint, nc net.Conn) *conn {
	c := &conn{link: l, ep: ep, nc: nc, out: make(chan outFrame, maxInFlightPerConnection),
		done: make(chan struct{}), pending: map[string]*call{}}
	c.lastWrite.Store(time.Now().UnixNano())
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		c.readLoop()
	}()
	go func() {
		defer l.wg.Done()
		c.writeLoop()
	}()
	return c
}

// exchange writes one framed request carrying stan and waits for the answer with that STAN until ctx
// ends. It returns errNotSent, errLost or errTimedOut when no answer comes.
func (c *conn) exchange(ctx context.Context, stan string, frame []byte) (*iso8583.Message, error) {
	k := &call{done: make(chan result, 1)}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, errNotSent
	case len(c.pending) >= maxInFlightPerConnection:
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", errNotSent, errSaturated)
	}
	c.pending[stan] = k
	c.mu.Unlock()

	select {
	case c.out <- outFrame{frame: frame, call: k}:
	case <-c.done: // fail has delivered errNotSent to k
	case <-ctx.Done():
	}
	select {
	case r := <-k.done:
		return r.msg, r.err
	case <-ctx.Done():
	}
	if !c.forget(stan, k) {
		// The reader or fail took the call just now and is delivering its outcome.
		r := <-k.done
		return r.msg, r.err
	}
	if k.state.CompareAndSwap(callQueued, callAbandoned) {
		return nil, errNotSent
	}
	return nil, errTimedOut
}

// forget removes a pending call; false means someone else removed it and will deliver to it.
func (c *conn) forget(stan string, k *call) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[stan] != k {
		return false
	}
	delete(c.pending, stan)
	return true
}

// claim removes and returns the call waiting for stan, if any.
func (c *conn) claim(stan string) *call {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.pending[stan]
	if k != nil {
		delete(c.pending, stan)
	}
	return k
}

// fail closes the connection once, takes it out of traffic and ends every pending call: errNotSent
// for those the writer never took, errLost for the rest.
func (c *conn) fail(why error) {
	c.failOnce.Do(func() {
		c.ep.setOnline(c, false)
		c.mu.Lock()
		c.closed = true
		pending := c.pending
		c.pending = nil
		c.mu.Unlock()
		for _, k := range pending {
			if k.state.CompareAndSwap(callQueued, callAbandoned) {
				k.done <- result{err: errNotSent}
			} else {
				k.done <- result{err: errLost}
			}
		}
		close(c.done)
		_ = c.nc.Close()
		if !errors.Is(why, errConnClose) {
			c.link.log.Warn("issuer connection lost", zap.String("addr", c.ep.addr), zap.String("role", c.ep.role),
				zap.Int("requests_in_flight", len(pending)), zap.Error(why))
		}
	})
}

// writeLoop writes queued frames, as many as are waiting per write, each under a write deadline so
// that a peer that stopped reading cannot hold a sender past its timeout.
func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, writeBufferBytes)
	writeTimeout := max(c.link.cfg.Timeout, time.Second)
	for {
		var f outFrame
		select {
		case f = <-c.out:
		case <-c.done:
			return
		}
		if err := c.nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
			c.fail(fmt.Errorf("setting write deadline: %w", err))
			return
		}
		for more := true; more; {
			if f.call == nil || f.call.state.CompareAndSwap(callQueued, callWritten) {
				if _, err := w.Write(f.frame); err != nil {
					c.fail(fmt.Errorf("writing: %w", err))
					return
				}
			}
			if w.Buffered() >= writeBufferBytes/2 {
				break // flush now, and take a fresh write deadline for the next batch
			}
			select {
			case f = <-c.out:
			default:
				more = false
			}
		}
		if err := w.Flush(); err != nil {
			c.fail(fmt.Errorf("writing: %w", err))
			return
		}
		c.lastWrite.Store(time.Now().UnixNano())
	}
}

// readLoop reads frames under a read deadline of three echo intervals (an idle link is echoed every
// interval, so a healthy issuer is never that silent) and hands each to dispatch.
func (c *conn) readLoop() {
	r := bufio.NewReaderSize(c.nc, writeBufferBytes)
	readTimeout := 3 * c.link.cfg.EchoInterval
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(readTimeout)); err != nil {
			c.fail(fmt.Errorf("setting read deadline: %w", err))
			return
		}
		// A fresh buffer per frame: an unpacked message may keep slices of it.
		body, err := specs.ReadFrame(r, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = errReadIdle
			}
			c.fail(fmt.Errorf("reading: %w", err))
			return
		}
		m := iso8583.NewMessage(c.link.cfg.Spec)
		if err := m.Unpack(body); err != nil {
			// The frame boundary is intact, so the connection keeps serving; the request this was
			// meant to answer times out and is reversed.
			c.link.log.Warn("unreadable message from issuer", zap.String("addr", c.ep.addr), zap.Error(err))
			continue
		}
		c.dispatch(m)
	}
}

// dispatch delivers an answer to its waiting call, reports a late one, and answers the issuer's own
// network management requests.
func (c *conn) dispatch(m *iso8583.Message) {
	mti, _ := m.GetMTI()
	switch {
	case len(mti) == 4 && (mti[2] == '1' || mti[2] == '3'):
		stan, _ := m.GetString(11)
		if k := c.claim(stan); k != nil {
			k.done <- result{msg: m}
			return
		}
		if mti[1] != '8' { // a late 0810 to an echo is of no interest
			c.link.lateAnswer(mti, m)
		}
	case mti == "0800":
		c.answerNetwork(m)
	default:
		c.link.log.Warn("unexpected message from issuer", zap.String("mti", mti))
	}
}

// answerNetwork answers the issuer's 0800 (its sign-on, echo) with 0810 00; when the writer's queue is
// full the answer is dropped and the issuer repeats.
func (c *conn) answerNetwork(m *iso8583.Message) {
	resp := iso8583.NewMessage(c.link.cfg.Spec)
	resp.MTI("0810")
	for _, id := range []int{7, 11, 70} {
		if v, err := m.GetString(id); err == nil && v != "" {
			_ = resp.Field(id, v)
		}
	}
	_ = resp.Field(39, "00")
	frame, err := pack(resp)
	if err != nil {
		c.link.log.Warn("answering issuer 0800", zap.Error(err))
		return
	}
	select {
	case c.out <- outFrame{frame: frame}:
	default:
		c.link.log.Warn("writer queue full; issuer 0800 left unanswered", zap.String("addr", c.ep.addr))
	}
}
