package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/issuersim/issuersimtest"
	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/issuerlink"
	"github.com/poswitch/poswitch/switch/node"
	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/saf"
	"github.com/poswitch/poswitch/switch/standin"
	"github.com/poswitch/poswitch/switch/txn"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

const (
	acquirer = "00000000001"
	issuer   = cards.BankA
)

var card = cards.MustLookup("4761730000000011") // bank-a, USD, approves

// rig is one switch's send path on real parts: issuer-sim over TCP, an issuer link, PostgreSQL
// with the store-and-forward queue, and the node's store-and-forward adapter.
type rig struct {
	sim  *issuersim.Server
	link *issuerlink.Link
	pool *pgxpool.Pool
	saf  *node.SAF
	send pipeline.Send
}

func newRig(t *testing.T, faults issuersim.Faults, linkTimeout time.Duration, rules *standin.Rules) *rig {
	t.Helper()
	pool := pgtest.Pool(t, pgtest.NewDatabase(t).App)
	sim := issuersimtest.Start(t, issuersim.Config{IssuerID: issuer, Faults: faults})
	cfg := &config.Config{Node: config.Node{AcquirerID: acquirer}, SAF: config.SAF{
		RetryBase: config.Duration(10 * time.Millisecond), RetryMax: config.Duration(20 * time.Millisecond),
		MaxAttempts: 100, PollInterval: config.Duration(10 * time.Millisecond), Lease: config.Duration(10 * time.Second),
		MaxBatch: 10}}
	r := &rig{sim: sim, pool: pool, saf: node.NewSAF(pool, cfg, hsm.NewDevelopment(), zap.NewNop())}
	var err error
	r.link, err = issuerlink.New(issuerlink.Config{IssuerID: issuer, Endpoints: []string{sim.Addr()}, Timeout: linkTimeout,
		EchoInterval: 10 * time.Second, ReconnectWait: 20 * time.Millisecond, Spec: specs.IssuerLink,
		OnLateAnswer: r.saf.OnLateAnswer})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.link.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.link.Close() })
	if !faults.RefuseSignOn {
		waitFor(t, "the link to sign on", r.link.Up)
	}
	r.send = pipeline.Send{Links: map[string]pipeline.IssuerLink{issuer: r.link}, Spec: specs.IssuerLink,
		AcquirerID: acquirer, Log: zap.NewNop(), SAF: r.saf}
	if rules != nil {
		d, err := standin.New(pool, map[string]standin.Rules{issuer: *rules}, standin.Options{Digest: hsm.NewDevelopment().PANDigest})
		if err != nil {
			t.Fatal(err)
		}
		r.send.StandIn = d
	}
	return r
}

// drain runs the node's store-and-forward until nothing is pending, in the queue or in memory.
func (r *rig) drain(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = r.saf.Run(ctx, map[string]saf.Sender{issuer: r.link})
	}()
	waitFor(t, "store-and-forward to drain", func() bool {
		st := r.stats(t)
		return r.saf.Backlog() == 0 && st.Pending == 0 && st.Done > 0
	})
	cancel()
	wg.Wait()
}

func (r *rig) stats(t *testing.T) saf.Stats {
	t.Helper()
	st, err := r.saf.Queue.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (r *rig) items(t *testing.T) []saf.Record {
	t.Helper()
	recs, err := r.saf.Queue.List(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func purchase(stan string, amount int64) *txn.Transaction {
	return &txn.Transaction{MTI: "0200", Type: txn.TypePurchase, ProcessingCode: "000000", PAN: card.PAN,
		Expiry: card.Expiry, Amount: amount, Currency: card.Currency, TerminalID: "TERM0001",
		MerchantID: "MERCHANT0000001", STAN: stan, TransmissionTime: time.Now().UTC().Format("0102150405"),
		EntryMode: "071", RRN: "000000" + stan, AcquirerID: acquirer, IssuerID: issuer, Received: time.Now()}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIssuerTimeoutAnswers91AndReversesTheLinkRequestOnce(t *testing.T) {
	// issuer-sim approves (and debits) but answers 300ms late, past the link's 100ms timeout.
	r := newRig(t, issuersim.Faults{DelayShare: 1, Delay: 300 * time.Millisecond, Seed: 1}, 100*time.Millisecond, nil)
	before, _ := r.sim.Balance(card.PAN)
	tx := purchase("000101", 1200)
	r.send.Run(context.Background(), tx)
	if tx.Response != txn.RCIssuerUnavailable || !tx.Ended() || tx.StandIn {
		t.Fatalf("answer %q ended %v stand-in %v", tx.Response, tx.Ended(), tx.StandIn)
	}
	if tx.IssuerSTAN == "" || len(tx.IssuerTime) != 10 || tx.IssuerSTAN == tx.STAN && tx.IssuerTime == tx.TransmissionTime {
		t.Fatalf("issuer trace %q/%q", tx.IssuerSTAN, tx.IssuerTime)
	}
	// The reversal was committed before the terminal got its 91.
	items := r.items(t)
	if len(items) != 1 {
		t.Fatalf("%d items queued", len(items))
	}
	it := items[0]
	if it.Kind != saf.KindReversal || it.MTI != "0420" || it.OrigMTI != "0200" || it.OrigSTAN != tx.IssuerSTAN ||
		it.OrigTime != tx.IssuerTime || it.Reason != saf.ReasonTimeout || it.OriginalKey != tx.Key() ||
		it.Amount != 1200 || it.AuthCode != "" {
		t.Fatalf("queued %+v", it)
	}
	// The late approval arrives; its reversal is the same item.
	waitFor(t, "the late answer", func() bool { return r.link.Stats().LateAnswers == 1 })
	if err := r.sim.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	r.drain(t)
	if items := r.items(t); len(items) != 1 || items[0].Status != saf.StatusDone {
		t.Fatalf("items after the late answer %+v", items)
	}
	var rec issuersim.Record
	for _, x := range r.sim.Transactions() {
		if x.STAN == tx.IssuerSTAN && x.TransmissionTime == tx.IssuerTime {
			rec = x
		}
	}
	if !rec.Applied || rec.ReversalsApplied != 1 {
		t.Fatalf("issuer-sim record %+v", rec)
	}
	if b, _ := r.sim.Balance(card.PAN); b != before {
		t.Fatalf("balance %d, want %d", b, before)
	}
}

func TestUnavailableIssuerAnswers91AtOnceAndQueuesNothing(t *testing.T) {
	r := newRig(t, issuersim.Faults{RefuseSignOn: true}, time.Second, nil)
	tx := purchase("000201", 500)
	r.send.Run(context.Background(), tx)
	if tx.Response != txn.RCIssuerUnavailable || tx.IssuerSTAN != "" || tx.IssuerTime != "" {
		t.Fatalf("answer %q trace %q/%q", tx.Response, tx.IssuerSTAN, tx.IssuerTime)
	}
	if n := len(r.items(t)); n != 0 {
		t.Fatalf("%d items queued for a request never sent", n)
	}
}

var stip = standin.Rules{Enabled: true, Currency: card.Currency, MaxAmount: 5000, FloorAmount: 1000,
	DailyAmountPerCard: 3000, DailyCountPerCard: 5}

func TestStandInOnAnUnavailableIssuerWithinAndBeyondLimits(t *testing.T) {
	r := newRig(t, issuersim.Faults{RefuseSignOn: true}, time.Second, &stip)
	cases := []struct {
		name   string
		amount int64
		edit   func(*txn.Transaction)
		want   string
		why    string
	}{
		{"within the floor", 1000, nil, txn.RCApproved, ""},
		{"above the floor without cardholder verification", 1001, nil, txn.RCIssuerUnavailable, standin.AboveFloor},
		{"online PIN", 500, func(t *txn.Transaction) { t.PINBlock = bytes.Repeat([]byte{0x11}, 8) }, txn.RCIssuerUnavailable, standin.PINNotVerifiable},
		{"another currency", 500, func(t *txn.Transaction) { t.Currency = "156" }, txn.RCIssuerUnavailable, standin.OtherCurrency},
		{"within the floor again", 1000, nil, txn.RCApproved, ""},
		{"daily amount reached", 1000, nil, txn.RCApproved, ""},
		{"beyond the daily amount", 1, nil, txn.RCIssuerUnavailable, standin.DailyAmount},
	}
	for i, c := range cases {
		tx := purchase(fmt.Sprintf("%06d", 300+i), c.amount)
		if c.edit != nil {
			c.edit(tx)
		}
		r.send.Run(context.Background(), tx)
		if tx.Response != c.want {
			t.Fatalf("%s: answer %q (%s), want %q", c.name, tx.Response, tx.Reason, c.want)
		}
		if c.want == txn.RCApproved {
			if !tx.StandIn || tx.Ended() || !regexp.MustCompile(`^S[0-9]{5}$`).MatchString(tx.AuthCode) ||
				tx.IssuerSTAN != tx.STAN || tx.IssuerTime != tx.TransmissionTime {
				t.Fatalf("%s: stand-in %v ended %v auth %q trace %q/%q", c.name, tx.StandIn, tx.Ended(), tx.AuthCode,
					tx.IssuerSTAN, tx.IssuerTime)
			}
		} else if !tx.Ended() || tx.StandIn || !strings.Contains(tx.Reason, c.why) {
			t.Fatalf("%s: ended %v stand-in %v reason %q, want %q", c.name, tx.Ended(), tx.StandIn, tx.Reason, c.why)
		}
	}
	if n := len(r.items(t)); n != 0 {
		t.Fatalf("%d items queued: nothing was sent and nothing booked", n)
	}
}

func TestStandInAfterATimeoutReversesTheRequestAndAdvisesTheApproval(t *testing.T) {
	// issuer-sim approves (and debits) every request but its answers are lost.
	r := newRig(t, issuersim.Faults{DropShare: 1, Seed: 7}, 100*time.Millisecond, &stip)
	before, _ := r.sim.Balance(card.PAN)
	tx := purchase("000401", 800)
	r.send.Run(context.Background(), tx)
	if tx.Response != txn.RCApproved || !tx.StandIn || tx.Ended() {
		t.Fatalf("answer %q stand-in %v ended %v (%s)", tx.Response, tx.StandIn, tx.Ended(), tx.Reason)
	}
	// The link request was queued for reversal under the link's STAN before the stand-in decided.
	linkReq := r.sim.Transactions()
	if len(linkReq) != 1 || !linkReq[0].Applied {
		t.Fatalf("issuer-sim records %+v", linkReq)
	}
	items := r.items(t)
	if len(items) != 1 || items[0].Kind != saf.KindReversal || items[0].OrigSTAN != linkReq[0].STAN ||
		items[0].OrigTime != linkReq[0].TransmissionTime {
		t.Fatalf("queued %+v for link request %s/%s", items, linkReq[0].STAN, linkReq[0].TransmissionTime)
	}
	// The book step (another helper's) books it; then the advice is queued.
	tx.Booked = true
	pipeline.StandInAdvice{SAF: r.saf, AcquirerID: acquirer, Log: zap.NewNop()}.Run(context.Background(), tx)
	var advice saf.Record
	for _, it := range r.items(t) {
		if it.Kind == saf.KindAdvice {
			advice = it
		}
	}
	if advice.MTI != "0220" || advice.OrigSTAN != tx.STAN || advice.OrigTime != tx.TransmissionTime ||
		advice.AuthCode != tx.AuthCode || advice.Reason != pipeline.ReasonStandIn || advice.Amount != 800 {
		t.Fatalf("advice %+v", advice)
	}
	var sealed []byte
	if err := r.pool.QueryRow(context.Background(), `SELECT pan_sealed FROM saf_item WHERE kind = 'advice'`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if len(sealed) == 0 || bytes.Contains(sealed, []byte(card.PAN)) {
		t.Fatalf("sealed PAN %x", sealed)
	}

	// The issuer answers again: the request is reversed, the advice posted, once each.
	if err := r.sim.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	r.drain(t)
	if rec := r.sim.Transactions()[0]; rec.ReversalsApplied != 1 {
		t.Fatalf("link request %+v", rec)
	}
	adv := r.sim.Advices()
	if len(adv) != 1 || !adv[0].Applied || adv[0].Amount != 800 || adv[0].MaskedPAN != card.Masked() ||
		adv[0].Original != "0200"+tx.STAN+tx.TransmissionTime+acquirer+"00000000000" {
		t.Fatalf("issuer-sim advices %+v", adv)
	}
	if b, _ := r.sim.Balance(card.PAN); b != before-800 {
		t.Fatalf("balance %d, want %d: the stand-in approval once", b, before-800)
	}
}

func TestPreAuthStandInIsAdvisedAs0120(t *testing.T) {
	r := newRig(t, issuersim.Faults{RefuseSignOn: true}, time.Second, &stip)
	tx := purchase("000501", 300)
	tx.MTI, tx.Type = "0100", txn.TypePreAuth
	r.send.Run(context.Background(), tx)
	if !tx.StandIn || tx.Response != txn.RCApproved {
		t.Fatalf("answer %q (%s)", tx.Response, tx.Reason)
	}
	step := pipeline.StandInAdvice{SAF: r.saf, AcquirerID: acquirer, Log: zap.NewNop()}
	step.Run(context.Background(), tx) // not booked: nothing to advise
	if n := len(r.items(t)); n != 0 {
		t.Fatalf("advised an unbooked approval: %d items", n)
	}
	tx.Booked = true
	step.Run(context.Background(), tx)
	step.Run(context.Background(), tx) // a repeat of the step queues nothing new
	items := r.items(t)
	if len(items) != 1 || items[0].MTI != "0120" || items[0].OrigMTI != "0100" {
		t.Fatalf("items %+v", items)
	}
}
