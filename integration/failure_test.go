package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/issuersim/issuersimtest"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/txn"
)

// purchaseRC sends one purchase and returns field 39 and how long the answer took.
func purchaseRC(t *testing.T, c *terminalsim.Client, term terminalsim.Terminal, card cards.Card, stan int) (string, time.Duration) {
	t.Helper()
	return sendReq(t, c, purchaseReq(term, card, stan))
}

func purchaseReq(term terminalsim.Terminal, card cards.Card, stan int) *iso8583.Message {
	return terminalsim.NewPurchase(term, card, 1234, card.Currency, stan)
}

// sendReq sends a request and returns field 39 of the answer and how long it took.
func sendReq(t *testing.T, c *terminalsim.Client, req *iso8583.Message) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := c.Send(ctx, req)
	if err != nil {
		stan, _ := req.GetString(11)
		t.Fatalf("stan %s: no answer: %v", stan, err)
	}
	rc, _ := resp.GetString(39)
	return rc, time.Since(start)
}

// keyOf is the identity key the switch gives a purchase from terminal tid.
func keyOf(req *iso8583.Message, tid string) string {
	f7, _ := req.GetString(7)
	f11, _ := req.GetString(11)
	return txn.IdentityKey("10000000001", tid, f11, f7, txn.MTIClass("0200"))
}

func TestKilledIssuerGives91AndTheLinkComesBack(t *testing.T) {
	const timeout = 2 * time.Second
	s := startStack(t, stackOptions{terminals: 4, issuerTimeout: timeout, echoInterval: 300 * time.Millisecond,
		issuerLatency: 100 * time.Millisecond})
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[0]
	card := cards.Load()[0] // bank-a
	if card.Issuer != cards.BankA {
		t.Fatalf("first load card belongs to %s", card.Issuer)
	}
	stan := 1
	if rc, _ := purchaseRC(t, c, term, card, stan); rc != "00" {
		t.Fatalf("before the kill: %s", rc)
	}

	// Kill bank-a while purchases are in flight.
	addr := s.issuers[cards.BankA].Addr()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	var slowest time.Duration
	for i := 0; i < 40; i++ {
		stan++
		wg.Add(1)
		go func(stan int) {
			defer wg.Done()
			rc, took := purchaseRC(t, c, term, card, stan)
			mu.Lock()
			codes[rc]++
			slowest = max(slowest, took)
			mu.Unlock()
		}(stan)
		if i == 20 {
			time.Sleep(50 * time.Millisecond) // the first requests are now waiting at the issuer
			s.issuers[cards.BankA].Close()
		}
	}
	wg.Wait()
	for stan++; stan < 60; stan++ {
		rc, took := purchaseRC(t, c, term, card, stan)
		codes[rc]++
		slowest = max(slowest, took)
	}
	t.Logf("answers while bank-a was down: %v, slowest %v", codes, slowest)
	if codes["91"] == 0 {
		t.Fatalf("no 91 while the issuer was down: %v", codes)
	}
	for rc := range codes {
		if rc != "91" && rc != "00" {
			t.Errorf("unexpected answer %s while the issuer was down", rc)
		}
	}
	if slowest > timeout+time.Second {
		t.Errorf("an answer took %v, more than the issuer timeout %v", slowest, timeout)
	}
	// bank-b is unaffected.
	if rc, _ := purchaseRC(t, c, term, cards.ByIssuer(cards.BankB)[0], 900); rc != "00" {
		t.Errorf("bank-b purchase while bank-a is down: %s", rc)
	}

	// Bring bank-a back on the same address: the link signs on again by itself.
	is := issuersimtest.Start(t, issuersim.Config{IssuerID: cards.BankA, Addr: addr})
	deadline := time.Now().Add(10 * time.Second)
	for !s.node.LinkUp(cards.BankA) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !s.node.LinkUp(cards.BankA) {
		t.Fatal("bank-a link did not come back within 10s")
	}
	if rc, _ := purchaseRC(t, c, term, card, 901); rc != "00" {
		t.Fatalf("after bank-a returned: %s", rc)
	}
	if is.Stats().SignOns == 0 {
		t.Error("the restarted issuer saw no sign-on")
	}
}

// malformed builds an iso87a purchase and corrupts it with edit.
func malformed(t *testing.T, term terminalsim.Terminal, edit func([]byte) []byte) []byte {
	t.Helper()
	card := cards.Load()[0]
	m := terminalsim.NewPurchase(term, card, 12345, card.Currency, 777)
	body, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return edit(body)
}

func replace(old, new string) func([]byte) []byte {
	return func(b []byte) []byte {
		if !bytes.Contains(b, []byte(old)) {
			panic("malformed: " + old + " not in message")
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
}

func TestMalformedMessagesAreAnswered30AndTheConnectionKeepsServing(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 2})
	term := s.terminals[0]
	pan := cards.Load()[0].PAN
	cases := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"bad length prefix in field 2", replace("16"+pan, "1X"+pan)},
		{"length prefix longer than the field allows", replace("16"+pan, "99"+pan)},
		{"non-numeric amount", replace("000000012345", "0000000123AB")},
		{"unknown MTI", replace("0200", "0300")},
		{"non-numeric MTI", replace("0200", "02X0")},
		{"truncated in the middle of a field", func(b []byte) []byte { return b[:len(b)-3] }},
	}
	before := runtime.NumGoroutine()
	c := s.dial("iso87a", "iso87a", false)
	for round := 0; round < 20; round++ {
		for _, tc := range cases {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			answer, err := c.SendRaw(ctx, malformed(t, term, tc.edit))
			cancel()
			if err != nil {
				t.Fatalf("%s: no answer: %v", tc.name, err)
			}
			m := iso8583.NewMessage(specs.ISO87A)
			if err := m.Unpack(answer); err != nil {
				t.Fatalf("%s: answer does not unpack: %v", tc.name, err)
			}
			if rc, _ := m.GetString(39); rc != "30" {
				t.Fatalf("%s: answered %q, want 30", tc.name, rc)
			}
		}
	}
	// The same connection still serves good purchases.
	if rc, _ := purchaseRC(t, c, term, cards.Load()[0], 4242); rc != "00" {
		t.Fatalf("good purchase after malformed ones: %s", rc)
	}

	// An unreadable frame closes only its own connection.
	for _, raw := range [][]byte{{0x00, 0x00}, {0xFF, 0xFF, 0x01}} {
		bad, err := net.Dial("tcp", s.node.ListenerAddr("iso87a"))
		if err != nil {
			t.Fatal(err)
		}
		bad.Write(raw)
		bad.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bad.Read(make([]byte, 1)); err == nil {
			t.Errorf("frame %x: connection still open", raw)
		}
		bad.Close()
	}
	if rc, _ := purchaseRC(t, c, term, cards.Load()[0], 4243); rc != "00" {
		t.Fatalf("good connection after another one broke: %s", rc)
	}
	c.Close()
	// Nothing is left running for the malformed requests or the broken connections.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after 120 malformed requests and 2 broken frames\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
	if s.logs.FilterMessage("request handler panicked").Len() > 0 {
		t.Fatal("a malformed request made a handler panic")
	}
}

func TestEveryDialectCarriesPurchases(t *testing.T) {
	for _, tc := range []struct {
		dialect string
		tpdu    bool
	}{{"iso87a", false}, {"iso87a-bb", false}, {"iso87b", true}, {"iso87b", false}} {
		t.Run(tc.dialect, func(t *testing.T) {
			s := startStack(t, stackOptions{terminals: 1, dialects: []string{tc.dialect}, tpdu: tc.tpdu})
			c := s.dial(tc.dialect, tc.dialect, tc.tpdu)
			for i, card := range []cards.Card{cards.Load()[0], cards.ByOutcome("51")[0], cards.ByOutcome("14")[0], cards.ByOutcome("15")[0]} {
				if rc, _ := purchaseRC(t, c, s.terminals[0], card, 10+i); rc != card.Outcome {
					t.Errorf("%s (%s): answered %s, want %s", card.Masked(), card.Note, rc, card.Outcome)
				}
			}
		})
	}
}

func TestLogsNeverHoldAClearPAN(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 4})
	var pick []cards.Card
	for _, c := range cards.Catalogue() {
		pick = append(pick, c)
	}
	sendPurchases(t, s, "iso87a", "iso87a", 10, 4, pick)
	// Malformed requests too: their errors must not carry the PAN either.
	c := s.dial("iso87a", "iso87a", false)
	pan := cards.Load()[0].PAN
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.SendRaw(ctx, malformed(t, s.terminals[0], replace("16"+pan, "1X"+pan)))
	c.SendRaw(ctx, malformed(t, s.terminals[0], replace("000000012345", "0000000123AB")))
	if s.logs.Len() == 0 {
		t.Fatal("nothing was logged; the check below would prove nothing")
	}
	sawMasked := false
	for _, e := range s.logs.All() {
		line, _ := json.Marshal(map[string]any{"msg": e.Message, "fields": e.ContextMap()})
		text := string(line)
		for _, card := range cards.Catalogue() {
			if strings.Contains(text, card.PAN) || strings.Contains(text, card.Track2()) {
				t.Fatalf("log line holds a clear PAN: %s", text)
			}
			if strings.Contains(text, card.Masked()) {
				sawMasked = true
			}
		}
	}
	if !sawMasked {
		t.Error("no masked PAN in any log line: transactions are not being logged")
	}
}
