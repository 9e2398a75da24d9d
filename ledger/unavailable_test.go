package ledger

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/poswitch/poswitch/ledger/pgtest"
)

// cutProxy is a TCP proxy to PostgreSQL that the test can cut (every connection dropped, new
// ones closed at once) and restore, standing in for a database that goes away and comes back.
type cutProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func TestDatabaseDownGivesErrUnavailableAndTheWriterRecovers(t *testing.T) {
	db := pgtest.NewDatabase(t)
	u, err := url.Parse(db.App)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.l.Addr().String()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	w := NewWriter(pool, WriterConfig{Chain: "down", CommitTimeout: 2 * time.Second}, zaptest.NewLogger(t))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	defer func() { cancel(); <-done }()

	book := func(b Booking) (Result, error) {
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return w.Book(c, b)
	}
	if _, err := book(purchase("M1", "ISS1", 1000)); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	proxy.cut()
	declined := purchase("M1", "ISS1", 2000)
	if _, err := book(declined); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("database down: err %v, want ErrUnavailable", err)
	}
	proxy.restore()
	var res Result
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err = book(purchase("M1", "ISS1", 3000))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || res.Status != StatusBooked {
		t.Fatalf("after the database came back: %+v %v", res, err)
	}
	// The declined booking was never acknowledged, and nothing of it is in the books unless it is
	// also reversed (a COMMIT that went through unanswered is compensated).
	var net int64
	if err := pool.QueryRow(ctx, `SELECT COALESCE(sum(p.amount), 0) FROM posting p JOIN journal_entry e ON e.id = p.entry_id
	                               WHERE p.account = 'issuer_receivable:ISS1' AND (e.txn_key = $1 OR e.original_key = $1)`, declined.Key).Scan(&net); err != nil {
		t.Fatal(err)
	}
	if net != 0 {
		t.Errorf("a booking answered ErrUnavailable left %d on the issuer's account", net)
	}
}
