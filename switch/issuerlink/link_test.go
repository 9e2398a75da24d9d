package issuerlink

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/specs"
)

// longEcho is an echo interval no test waits for: failover in these tests must come from the TCP
// connection closing, not from a missed echo.
const longEcho = 10 * time.Minute

func startIssuer(t testing.TB, addr string) *issuersim.Server {
	t.Helper()
	return startIssuerWith(t, issuersim.Config{Addr: addr, IssuerID: cards.BankA})
}

func startIssuerWith(t testing.TB, cfg issuersim.Config) *issuersim.Server {
	t.Helper()
	s, err := issuersim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newLink(t testing.TB, addr string, echo time.Duration) *Link {
	t.Helper()
	return newLinkTo(t, []string{addr}, 2, 2*time.Second, echo)
}

func newLinkTo(t testing.TB, endpoints []string, conns int, timeout, echo time.Duration) *Link {
	t.Helper()
	l, err := New(Config{IssuerID: cards.BankA, Endpoints: endpoints, ConnectionsPerEndpoint: conns,
		Timeout: timeout, EchoInterval: echo, ReconnectWait: 20 * time.Millisecond,
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

// eventually polls cond; the bound only keeps a broken build from hanging, it is not a figure.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitUp(t testing.TB, l *Link) {
	t.Helper()
	eventually(t, "link signed on", l.Up)
}

func endpointUp(l *Link, i, want int) func() bool {
	return func() bool { return l.Stats().Endpoints[i].Up == want }
}

func bankACard() cards.Card {
	for _, c := range cards.Load() {
		if c.Issuer == cards.BankA {
			return c
		}
	}
	panic("no high-balance bank-a card in the catalogue")
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

// sendApproved sends n purchases one after another and fails on any answer but 00.
func sendApproved(t *testing.T, l *Link, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		resp, _, err := l.Send(context.Background(), purchase(bankACard()))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if rc, _ := resp.GetString(39); rc != "00" {
			t.Fatalf("request %d answered %s", i, rc)
		}
	}
}

func TestLinkSignsOnBeforeTrafficAndEchoesWhenIdle(t *testing.T) {
	is := startIssuer(t, "127.0.0.1:0")
	l := newLink(t, is.Addr(), 100*time.Millisecond)
	waitUp(t, l)
	eventually(t, "both connections signed on", endpointUp(l, 0, 2))
	if got := is.Stats().SignOns; got != 2 {
		t.Errorf("issuer saw %d sign-ons, want one per connection (2)", got)
	}
	eventually(t, "idle echoes on both connections", func() bool { return is.Stats().Echoes >= 4 })
	resp, stan, err := l.Send(context.Background(), purchase(bankACard()))
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := resp.GetString(39); rc != "00" {
		t.Fatalf("answered %s", rc)
	}
	if got, _ := resp.GetString(11); got != stan || len(stan) != 6 {
		t.Fatalf("answer STAN %q, sent %q", got, stan)
	}
	l.Close()
	eventually(t, "sign-off of both connections", func() bool { return is.Stats().SignOffs == 2 })
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

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestLinkWithNoIssuerAnswersUnavailableAtOnceAndFindsItLater(t *testing.T) {
	primary, secondary := closedAddr(t), closedAddr(t)
	// A timeout no test waits for: an answer before it proves the link did not wait.
	l := newLinkTo(t, []string{primary, secondary}, 2, time.Hour, longEcho)
	for i := 0; i < 3; i++ {
		if _, _, err := l.Send(context.Background(), purchase(bankACard())); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("got %v, want ErrUnavailable", err)
		}
	}
	if got := l.Stats().Unavailable; got != 3 {
		t.Errorf("Unavailable = %d, want 3", got)
	}
	// The secondary arrives later: the link finds it by itself and carries traffic there.
	startIssuer(t, secondary)
	eventually(t, "secondary signed on", endpointUp(l, 1, 2))
	sendApproved(t, l, 5)
	if st := l.Stats(); st.Endpoints[1].Sent != 5 || st.Endpoints[0].Sent != 0 {
		t.Errorf("sent primary %d, secondary %d; want 0 and 5", st.Endpoints[0].Sent, st.Endpoints[1].Sent)
	}
}

func TestTrafficGoesToThePrimaryWhileItIsUp(t *testing.T) {
	primary := startIssuer(t, "127.0.0.1:0")
	secondary := startIssuer(t, "127.0.0.1:0")
	l := newLinkTo(t, []string{primary.Addr(), secondary.Addr()}, 2, 2*time.Second, longEcho)
	eventually(t, "primary signed on", endpointUp(l, 0, 2))
	eventually(t, "secondary signed on (standing by)", endpointUp(l, 1, 2))
	sendApproved(t, l, 20)
	st := l.Stats()
	if st.Endpoints[0].Role != "primary" || st.Endpoints[0].Sent != 20 || st.Endpoints[1].Sent != 0 {
		t.Errorf("endpoints %+v; want all 20 on the primary", st.Endpoints)
	}
	if got := primary.Stats().Requests["0200"]; got != 20 {
		t.Errorf("primary issuer saw %d purchases, want 20", got)
	}
	if got := secondary.Stats().Requests["0200"]; got != 0 {
		t.Errorf("secondary issuer saw %d purchases, want 0", got)
	}
}

func TestOnlySignedOnConnectionsCarryTraffic(t *testing.T) {
	refusing := startIssuerWith(t, issuersim.Config{IssuerID: cards.BankA, Faults: issuersim.Faults{RefuseSignOn: true}})
	secondary := startIssuer(t, "127.0.0.1:0")
	l := newLinkTo(t, []string{refusing.Addr(), secondary.Addr()}, 2, 2*time.Second, longEcho)
	eventually(t, "secondary signed on", endpointUp(l, 1, 2))
	eventually(t, "the primary refused sign-on on both connections", func() bool { return refusing.Stats().SignOnsRefused >= 2 })
	sendApproved(t, l, 10)
	if got := refusing.Stats().Requests["0200"]; got != 0 {
		t.Errorf("an issuer that refused sign-on got %d purchases", got)
	}
	if st := l.Stats(); st.Endpoints[0].Up != 0 || st.Endpoints[1].Sent != 10 {
		t.Errorf("endpoints %+v; want the primary down and 10 sent on the secondary", st.Endpoints)
	}
}

func TestKilledPrimaryMovesTrafficToSecondaryAndBackWhenItReturns(t *testing.T) {
	primary := startIssuer(t, "127.0.0.1:0")
	primaryAddr := primary.Addr()
	secondary := startIssuer(t, "127.0.0.1:0")
	l := newLinkTo(t, []string{primaryAddr, secondary.Addr()}, 2, 2*time.Second, longEcho)
	eventually(t, "both endpoints signed on", func() bool { return endpointUp(l, 0, 2)() && endpointUp(l, 1, 2)() })
	sendApproved(t, l, 10)

	primary.Close() // the process dies: the kernel closes its connections
	// The echo interval is ten minutes: only the TCP close can take the primary out this soon.
	eventually(t, "primary connections taken out of traffic", endpointUp(l, 0, 0))
	sendApproved(t, l, 10)
	st := l.Stats()
	if st.Endpoints[0].Sent != 10 || st.Endpoints[1].Sent != 10 {
		t.Fatalf("after the kill: endpoints %+v; want 10 on each", st.Endpoints)
	}
	if got := secondary.Stats().Requests["0200"]; got != 10 {
		t.Errorf("secondary issuer saw %d purchases, want 10", got)
	}

	back := startIssuer(t, primaryAddr) // the primary comes back on its address
	eventually(t, "primary signed on again", endpointUp(l, 0, 2))
	sendApproved(t, l, 10)
	st = l.Stats()
	if st.Endpoints[0].Sent != 20 || st.Endpoints[1].Sent != 10 {
		t.Errorf("after the return: endpoints %+v; want 20 on the primary, 10 on the secondary", st.Endpoints)
	}
	if got := back.Stats().Requests["0200"]; got != 10 {
		t.Errorf("returned primary saw %d purchases, want 10", got)
	}
}

// Killing the issuer while requests are in flight must end each of them at once — answered, lost
// with the connection (the issuer may have it: reverse), or never written (unavailable) — and never
// leave one waiting for its timeout. iso8583-connection v0.9.0 hung senders here (see link.go).
func TestKilledPrimaryUnderLoadFailsOverWithoutHangingASender(t *testing.T) {
	for round := 0; round < 5; round++ {
		primary := startIssuerWith(t, issuersim.Config{IssuerID: cards.BankA, Jitter: 2 * time.Millisecond})
		secondary := startIssuer(t, "127.0.0.1:0")
		// The timeout is an hour: a request that waited for it would never let the test end.
		l := newLinkTo(t, []string{primary.Addr(), secondary.Addr()}, 2, time.Hour, longEcho)
		eventually(t, "both endpoints signed on", func() bool { return endpointUp(l, 0, 2)() && endpointUp(l, 1, 2)() })

		var stop atomic.Bool
		var lost, unavailable atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < 64; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					_, _, err := l.Send(context.Background(), purchase(bankACard()))
					switch {
					case err == nil:
					case errors.Is(err, ErrConnectionLost):
						lost.Add(1)
					case errors.Is(err, ErrUnavailable):
						unavailable.Add(1)
					default:
						t.Errorf("unexpected error %v", err)
						return
					}
				}
			}()
		}
		eventually(t, "traffic on the primary", func() bool { return primary.Stats().Requests["0200"] > 100 })
		primary.Close()
		eventually(t, "primary out of traffic", endpointUp(l, 0, 0))
		base := secondary.Stats().Requests["0200"]
		eventually(t, "traffic carried by the secondary", func() bool { return secondary.Stats().Requests["0200"] > base+100 })
		stop.Store(true)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("round %d: senders hung after the primary was killed\n%s", round, buf[:runtime.Stack(buf, true)])
		}
		if st := l.Stats(); st.Timeouts != 0 {
			t.Errorf("round %d: %d requests waited for their timeout", round, st.Timeouts)
		}
		t.Logf("round %d: %d lost with the connection (to reverse), %d never written", round, lost.Load(), unavailable.Load())
		l.Close()
	}
}

func TestSilentIssuerTimesOutAndItsLateAnswerIsReported(t *testing.T) {
	is := startIssuerWith(t, issuersim.Config{IssuerID: cards.BankA,
		Faults: issuersim.Faults{DelayShare: 1, Delay: 300 * time.Millisecond}})
	late := make(chan *iso8583.Message, 1)
	l, err := New(Config{IssuerID: cards.BankA, Endpoints: []string{is.Addr()}, ConnectionsPerEndpoint: 1,
		Timeout: 50 * time.Millisecond, EchoInterval: longEcho, Spec: specs.IssuerLink,
		OnLateAnswer: func(_ string, m *iso8583.Message) { late <- m }})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	waitUp(t, l)
	_, stan, err := l.Send(context.Background(), purchase(bankACard()))
	if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnectionLost) {
		t.Fatalf("got %v, want a plain ErrTimeout", err)
	}
	m := <-late
	if got, _ := m.GetString(11); got != stan {
		t.Errorf("late answer STAN %s, want %s", got, stan)
	}
	if rc, _ := m.GetString(39); rc != "00" {
		t.Errorf("late answer %s, want the approval the switch must now reverse", rc)
	}
	if st := l.Stats(); st.Timeouts != 1 || st.LateAnswers != 1 {
		t.Errorf("stats %+v, want 1 timeout and 1 late answer", st)
	}
}

func TestSendWaitsNoLongerThanTheCallersDeadline(t *testing.T) {
	is := startIssuerWith(t, issuersim.Config{IssuerID: cards.BankA, Faults: issuersim.Faults{DropShare: 1}})
	l := newLinkTo(t, []string{is.Addr()}, 1, time.Hour, longEcho)
	waitUp(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := l.Send(ctx, purchase(bankACard())); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout at the caller's deadline (the link's own is an hour)", err)
	}
}

func TestConfigBounds(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no endpoint", Config{Spec: specs.IssuerLink, Timeout: time.Second, EchoInterval: time.Second}},
		{"five endpoints", Config{Spec: specs.IssuerLink, Timeout: time.Second, EchoInterval: time.Second,
			Endpoints: []string{"a:1", "b:1", "c:1", "d:1", "e:1"}}},
		{"too many connections", Config{Spec: specs.IssuerLink, Timeout: time.Second, EchoInterval: time.Second,
			Endpoints: []string{"a:1"}, ConnectionsPerEndpoint: 65}},
		{"no spec", Config{Timeout: time.Second, EchoInterval: time.Second, Endpoints: []string{"a:1"}}},
		{"no timeout", Config{Spec: specs.IssuerLink, EchoInterval: time.Second, Endpoints: []string{"a:1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// freezer is a TCP proxy in front of a real issuer-sim that can stop passing bytes in both
// directions while keeping the connections open: a hung issuer host, as TCP sees it.
type freezer struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
}

func startFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			t.Cleanup(func() { in.Close(); out.Close() })
			go f.pipe(in, out)
			go f.pipe(out, in)
		}
	}()
	return f
}

func (f *freezer) pipe(from, to net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		for f.frozen.Load() {
			time.Sleep(time.Millisecond) // hold the bytes: the host is hung
		}
		if _, err := to.Write(buf[:n]); err != nil {
			return
		}
	}
}

func TestHungPrimaryIsTakenOutByTheEchoAfterATimeout(t *testing.T) {
	primary := startFreezer(t, startIssuer(t, "127.0.0.1:0").Addr())
	secondary := startIssuer(t, "127.0.0.1:0")
	l := newLinkTo(t, []string{primary.ln.Addr().String(), secondary.Addr()}, 1, 100*time.Millisecond, longEcho)
	eventually(t, "both endpoints signed on", func() bool { return endpointUp(l, 0, 1)() && endpointUp(l, 1, 1)() })
	sendApproved(t, l, 3)

	primary.frozen.Store(true)
	// The connection stays open and the echo interval is ten minutes: the first timeout's echo finds
	// the host hung and takes the connection out.
	if _, _, err := l.Send(context.Background(), purchase(bankACard())); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout from the hung primary", err)
	}
	eventually(t, "hung primary out of traffic", endpointUp(l, 0, 0))
	sendApproved(t, l, 3)
	if st := l.Stats(); st.Endpoints[0].Sent != 4 || st.Endpoints[1].Sent != 3 {
		t.Errorf("endpoints %+v; want 4 sent to the primary (one timed out), 3 to the secondary", st.Endpoints)
	}
}
