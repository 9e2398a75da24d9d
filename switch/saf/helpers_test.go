package saf_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/issuersim/issuersimtest"
	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/issuerlink"
	"github.com/poswitch/poswitch/switch/saf"
	"github.com/poswitch/poswitch/switch/translate"
	"github.com/poswitch/poswitch/switch/txn"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

const (
	acquirer = "00000000001"
	terminal = "TERM0001"
	merchant = "MERCHANT0000001"
	issuer   = cards.BankA
)

// card approves at issuer-sim (bank-a, USD).
var card = cards.MustLookup("4761730000000011")

func startSim(t testing.TB, f issuersim.Faults) *issuersim.Server {
	t.Helper()
	return issuersimtest.Start(t, issuersim.Config{IssuerID: issuer, Faults: f})
}

// startLink connects a real issuer link to addr; up says whether to wait for its sign-on.
func startLink(t testing.TB, addr string, timeout time.Duration, up bool) *issuerlink.Link {
	t.Helper()
	l, err := issuerlink.New(issuerlink.Config{IssuerID: issuer, Endpoints: []string{addr}, Timeout: timeout,
		EchoInterval: 10 * time.Second, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 100 * time.Millisecond,
		Spec: specs.IssuerLink})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if up {
		waitFor(t, "the issuer link to sign on", l.Up)
	}
	return l
}

// waitFor polls cond; the bound is a liveness guard for a broken build, not a performance figure.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// purchaseAtIssuer has issuer-sim approve a purchase sent over the link, and returns the link-side
// STAN and field 7 that name it.
func purchaseAtIssuer(t *testing.T, link *issuerlink.Link, stan string, amount int64) (linkSTAN, linkTime string) {
	t.Helper()
	tx := &txn.Transaction{MTI: "0200", Type: txn.TypePurchase, ProcessingCode: "000000", PAN: card.PAN,
		Expiry: card.Expiry, Amount: amount, Currency: card.Currency, TerminalID: terminal, MerchantID: merchant,
		STAN: stan, TransmissionTime: time.Now().UTC().Format("0102150405"), EntryMode: "051", RRN: "000000" + stan}
	req, err := translate.ToIssuer(specs.IssuerLink, tx, acquirer)
	if err != nil {
		t.Fatal(err)
	}
	resp, linkSTAN, err := link.Send(context.Background(), req)
	if err != nil {
		t.Fatalf("purchase: %v", err)
	}
	if rc, _ := resp.GetString(39); rc != "00" {
		t.Fatalf("purchase answered %s", rc)
	}
	linkTime, _ = req.GetString(7)
	return linkSTAN, linkTime
}

// reversal is the reversal of the request the link sent as stan/time.
func reversal(stan, at string, amount int64) saf.Item {
	return saf.Item{Kind: saf.KindReversal, Issuer: issuer, MTI: "0420", OrigMTI: "0200", OrigSTAN: stan, OrigTime: at,
		AcquirerID: acquirer, TerminalID: terminal, OriginalKey: "1|" + terminal + "|" + stan, ProcessingCode: "000000",
		Amount: amount, Currency: card.Currency, MerchantID: merchant, RRN: "000000" + stan,
		PANMasked: card.Masked(), Reason: saf.ReasonTimeout}
}

// standInAdvice is the advice of a stand-in approval named by the terminal's STAN and time.
func standInAdvice(t *testing.T, v *hsm.HSM, stan, at string, amount int64) saf.Item {
	t.Helper()
	sealed, err := v.SealPAN(card.PAN)
	if err != nil {
		t.Fatal(err)
	}
	return saf.Item{Kind: saf.KindAdvice, Issuer: issuer, MTI: "0220", OrigMTI: "0200", OrigSTAN: stan, OrigTime: at,
		AcquirerID: acquirer, TerminalID: terminal, ProcessingCode: "000000", Amount: amount, Currency: card.Currency,
		MerchantID: merchant, RRN: "000000" + stan, AuthCode: "S12345", PANMasked: card.Masked(), PANSealed: sealed,
		Reason: saf.ReasonStandIn}
}

// running runs a queue until the returned stop is called; stop waits for Run to return, so every
// claimed item is settled when it does.
func running(q *saf.Queue, senders map[string]saf.Sender) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = q.Run(ctx, senders)
	}()
	return func() { cancel(); wg.Wait() }
}

func stats(t *testing.T, q *saf.Queue) saf.Stats {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func list(t *testing.T, q *saf.Queue) []saf.Record {
	t.Helper()
	recs, err := q.List(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// simRecord is issuer-sim's record of the request it received as stan/time.
func simRecord(t *testing.T, srv *issuersim.Server, stan, at string) issuersim.Record {
	t.Helper()
	for _, r := range srv.Transactions() {
		if r.STAN == stan && r.TransmissionTime == at {
			return r
		}
	}
	t.Fatalf("issuer-sim has no record of %s/%s", stan, at)
	return issuersim.Record{}
}
