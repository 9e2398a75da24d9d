package integration

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/switch/txn"
)

// tcpProxy forwards a local port to a target; cut drops every connection and refuses new ones until
// restore, the way a database host that goes away looks to the switch.
type tcpProxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

func (p *tcpProxy) restore(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

func TestDatabaseDownAnswers96AndBooksNothingThenRecovers(t *testing.T) {
	var proxy *tcpProxy
	s := startStack(t, stackOptions{terminals: 2, appURL: func(u string) string {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		proxy = newTCPProxy(t, parsed.Host)
		parsed.Host = proxy.addr
		return parsed.String()
	}})
	c := s.dial("iso87a", "iso87a", false)
	card := cards.Load()[0]
	if rc, _ := purchaseRC(t, c, s.terminals[0], card, 1); rc != txn.RCApproved {
		t.Fatalf("before the cut: %s", rc)
	}

	proxy.cut()
	downKeys := map[string]string{}
	for stan := 2; stan <= 6; stan++ {
		req := purchaseReq(s.terminals[0], card, stan)
		rc, took := sendReq(t, c, req)
		downKeys[keyOf(req, s.terminals[0].TID)] = rc
		if rc != txn.RCSystemError {
			t.Errorf("database down, stan %d: answered %s, want 96", stan, rc)
		}
		if took > 15*time.Second {
			t.Errorf("database down: the answer took %v", took)
		}
	}

	proxy.restore(t)
	deadline := time.Now().Add(30 * time.Second)
	stan, rc := 100, ""
	for ; time.Now().Before(deadline); stan++ {
		if rc, _ = purchaseRC(t, c, s.terminals[0], card, stan); rc == txn.RCApproved {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rc != txn.RCApproved {
		t.Fatalf("the switch did not recover within 30s of the database's return: last answer %s", rc)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for key := range downKeys {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM journal_entry WHERE txn_key = $1 AND status = 'booked'`, key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s was answered 96 but is booked", key)
		}
	}
}
