package issuerlink

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/specs"
)

func startIssuer(t *testing.T, addr string) *issuersim.Server {
	t.Helper()
	s, err := issuersim.New(issuersim.Config{Addr: addr, IssuerID: cards.BankA})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newLink(t *testing.T, addr string, echo time.Duration) *Link {
	t.Helper()
	l, err := New(Config{IssuerID: cards.BankA, Endpoints: []string{addr}, ConnectionsPerEndpoint: 2,
		Timeout: 2 * time.Second, EchoInterval: echo, ReconnectWait: 20 * time.Millisecond,
		MaxReconnectWait: 100 * time.Millisecond, Spec: specs.IssuerLink})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func waitUp(t *testing.T, l *Link) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !l.Up() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !l.Up() {
		t.Fatal("link did not sign on")
	}
}

func purchase(card cards.Card) *iso8583.Message {
	m := iso8583.NewMessage(specs.IssuerLink)
	m.MTI("0200")
	for id, v := range map[int]string{2: card.PAN, 3: "000000", 4: "000000001000", 14: card.Expiry, 41: "TERM0001",
		42: "MERCHANT0000001", 49: card.Currency} {
		m.Field(id, v)
	}
	return m
}

func TestLinkSignsOnBeforeTrafficAndEchoesWhenIdle(t *testing.T) {
	is := startIssuer(t, "127.0.0.1:0")
	l := newLink(t, is.Addr(), 100*time.Millisecond)
	waitUp(t, l)
	if got := is.Stats().SignOns; got != 2 {
		t.Errorf("issuer saw %d sign-ons, want one per connection (2)", got)
	}
	time.Sleep(450 * time.Millisecond) // idle: echoes every 100 ms on each connection
	if got := is.Stats().Echoes; got < 4 {
		t.Errorf("issuer saw %d echoes in 450 ms of idle time with a 100 ms echo interval", got)
	}
	resp, stan, err := l.Send(context.Background(), purchase(cards.Load()[0]))
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := resp.GetString(39); rc != "00" {
		t.Fatalf("answered %s", rc)
	}
	if got, _ := resp.GetString(11); got != stan || len(stan) != 6 {
		t.Fatalf("answer STAN %q, sent %q", got, stan)
	}
}

func TestLinkSTANsAreUniqueAmongRequestsInFlight(t *testing.T) {
	is := startIssuer(t, "127.0.0.1:0")
	l := newLink(t, is.Addr(), time.Second)
	waitUp(t, l)
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, stan, err := l.Send(context.Background(), purchase(cards.Load()[i%len(cards.Load())]))
			if err != nil {
				t.Error(err)
				return
			}
			if got, _ := resp.GetString(11); got != stan {
				t.Errorf("request with STAN %s got the answer of %s", stan, got)
			}
			mu.Lock()
			if seen[stan] {
				t.Errorf("STAN %s used twice", stan)
			}
			seen[stan] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
}

func TestLinkWithNoIssuerAnswersUnavailableAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens here
	l := newLink(t, addr, time.Second)
	start := time.Now()
	_, _, err = l.Send(context.Background(), purchase(cards.Load()[0]))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("unavailable answer took %v; it must not wait for the link", took)
	}
	// The issuer arrives later: the link finds it by itself.
	startIssuer(t, addr)
	waitUp(t, l)
}
