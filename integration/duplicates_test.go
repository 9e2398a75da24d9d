package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/saf"
	"github.com/poswitch/poswitch/switch/txn"
)

// acquirerID is the acquirer the stack's configuration gives the switch.
const acquirerID = "10000000001"

// mustExchange sends one request and returns its answer; no answer fails the test.
func mustExchange(t *testing.T, c *terminalsim.Client, req *iso8583.Message) *iso8583.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := c.Send(ctx, req)
	if err != nil {
		mti, _ := req.GetMTI()
		t.Fatalf("%s stan %s: no answer: %v", mti, fieldOf(req, 11), err)
	}
	return resp
}

// fieldOf is a field of m as a string, "" when absent.
func fieldOf(m *iso8583.Message, id int) string {
	if m == nil || m.GetField(id) == nil {
		return ""
	}
	v, _ := m.GetString(id)
	return v
}

// txnIdentity is the switch's identity key of a terminal request: acquirer, terminal, STAN, field 7
// and MTI class.
func txnIdentity(req *iso8583.Message) string {
	mti, _ := req.GetMTI()
	return txn.IdentityKey(acquirerID, fieldOf(req, 41), fieldOf(req, 11), fieldOf(req, 7), txn.MTIClass(mti))
}

// entryRow is one journal entry as the test reads it.
type entryRow struct {
	key, kind, status, consumes, authCode, rrn string
	flags                                      int
	amount                                     int64
}

// journalOf reads the entries that are key's transaction or name it as their original.
func journalOf(t *testing.T, s *stack, key string) []entryRow {
	t.Helper()
	rows, err := s.node.Pool.Query(context.Background(), `
		SELECT txn_key, kind, status, COALESCE(consumes, ''), auth_code, rrn, flags, amount
		  FROM journal_entry WHERE txn_key = $1 OR original_key = $1 ORDER BY booked_at, txn_key`, key)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (entryRow, error) {
		var j entryRow
		err := r.Scan(&j.key, &j.kind, &j.status, &j.consumes, &j.authCode, &j.rrn, &j.flags, &j.amount)
		return j, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// netPostings sums, per account and currency, the postings of key's transaction and of every entry
// naming it as its original; only non-zero sums are returned.
func netPostings(t *testing.T, s *stack, key string) (net map[string]int64, postings int) {
	t.Helper()
	rows, err := s.node.Pool.Query(context.Background(), `
		SELECT p.account || '/' || p.currency, sum(p.amount)::bigint, count(*)
		  FROM posting p JOIN journal_entry e ON e.id = p.entry_id
		 WHERE e.txn_key = $1 OR e.original_key = $1 GROUP BY 1`, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	net = map[string]int64{}
	for rows.Next() {
		var acct string
		var sum, n int64
		if err := rows.Scan(&acct, &sum, &n); err != nil {
			t.Fatal(err)
		}
		postings += int(n)
		if sum != 0 {
			net[acct] = sum
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return net, postings
}

// waitQueueEmpty waits until the store-and-forward queue has nothing pending (a healthy queue
// drains in well under a second here; a minute only keeps a broken one from hanging the test).
func waitQueueEmpty(t *testing.T, s *stack) saf.Stats {
	t.Helper()
	return waitForSAFDrained(t, s, time.Minute)
}

// queueItems lists every store-and-forward item.
func queueItems(t *testing.T, s *stack) []saf.Record {
	t.Helper()
	items, err := s.node.SAF.Queue.List(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// issuerRecordsOf are the issuer-sim's records of requests on card for amount.
func issuerRecordsOf(recs []issuersim.Record, card cards.Card, amount int64) []issuersim.Record {
	var out []issuersim.Record
	for _, r := range recs {
		if r.MaskedPAN == card.Masked() && r.Amount == amount {
			out = append(out, r)
		}
	}
	return out
}

// TestSamePurchaseTwiceReversedThreeTimesBooksOnceAndReversesOnce sends one purchase, its
// retransmission and its repeat (0200, 0200, 0201), then reverses it three times (0400, its repeat
// 0401, and a repeated reversal advice 0421): the terminal hears one answer three times, every
// reversal is 00, and the ledger, the issuer and the store-and-forward queue each act exactly once.
func TestSamePurchaseTwiceReversedThreeTimesBooksOnceAndReversesOnce(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 2, safRetryBase: 100 * time.Millisecond, safPollInterval: 50 * time.Millisecond})
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[1]
	card := cards.MustLookup("4761730000000011") // bank-a, USD, approved
	issuer := s.issuers[cards.BankA]
	before, _ := issuer.Balance(card.PAN)
	const amount = 12345

	purchase := terminalsim.NewPurchase(term, card, amount, "", 4101)
	key := txnIdentity(purchase)
	first := mustExchange(t, c, purchase)
	again := mustExchange(t, c, purchase)                      // the terminal did not hear the first: same message
	repeat := mustExchange(t, c, terminalsim.Repeat(purchase)) // 0201
	if rc := fieldOf(first, 39); rc != "00" {
		t.Fatalf("purchase answered %s, want 00", rc)
	}
	if fieldOf(first, 38) == "" || fieldOf(first, 37) == "" {
		t.Fatalf("approval without authorization code or RRN: 38=%q 37=%q", fieldOf(first, 38), fieldOf(first, 37))
	}
	for name, resp := range map[string]*iso8583.Message{"retransmission": again, "repeat 0201": repeat} {
		for _, f := range []int{39, 38, 37} {
			if fieldOf(resp, f) != fieldOf(first, f) {
				t.Errorf("%s: field %d is %q, the first answer had %q", name, f, fieldOf(resp, f), fieldOf(first, f))
			}
		}
	}

	reversals := []*iso8583.Message{
		terminalsim.NewReversal(purchase, false),      // 0400
		terminalsim.NewReversal(purchase, true),       // 0401
		terminalsim.NewReversalAdvice(purchase, true), // 0421
	}
	for _, rv := range reversals {
		mti, _ := rv.GetMTI()
		resp := mustExchange(t, c, rv)
		if rc := fieldOf(resp, 39); rc != "00" {
			t.Errorf("%s answered %s, want 00", mti, rc)
		}
		if rmti, _ := resp.GetMTI(); rmti != mti[:2]+string(mti[2]+1)+"0" {
			t.Errorf("%s answered with MTI %s", mti, rmti)
		}
	}

	// The ledger: one purchase, one reversal that consumed it, nothing else booked; net zero.
	entries := journalOf(t, s, key)
	var purchases, booked []entryRow
	for _, e := range entries {
		switch {
		case e.key == key:
			purchases = append(purchases, e)
		case e.status == "booked":
			booked = append(booked, e)
		case e.kind != "reversal" || e.status != "noop":
			t.Errorf("unexpected entry for the purchase: %+v", e)
		}
	}
	if len(purchases) != 1 || purchases[0].kind != "purchase" || purchases[0].status != "booked" || purchases[0].amount != amount {
		t.Fatalf("purchase entries: %+v, want one booked purchase of %d", purchases, amount)
	}
	if purchases[0].authCode != fieldOf(first, 38) || purchases[0].rrn != fieldOf(first, 37) {
		t.Errorf("ledger has auth code %q RRN %q, the terminal heard %q %q", purchases[0].authCode, purchases[0].rrn,
			fieldOf(first, 38), fieldOf(first, 37))
	}
	if len(booked) != 1 || booked[0].kind != "reversal" || booked[0].consumes != key || booked[0].amount != amount {
		t.Fatalf("booked entries naming the purchase: %+v, want one reversal consuming it", booked)
	}
	net, postings := netPostings(t, s, key)
	if postings == 0 || len(net) != 0 {
		t.Errorf("purchase and reversal postings (%d) do not net to zero: %v", postings, net)
	}

	// The queue: exactly one item for it, a reversal the issuer acknowledged.
	st := waitQueueEmpty(t, s)
	items := queueItems(t, s)
	if len(items) != 1 || items[0].Kind != saf.KindReversal || items[0].OriginalKey != key || items[0].Status != saf.StatusDone {
		t.Fatalf("store-and-forward items: %+v, want one done reversal of %s", items, key)
	}
	if items[0].Amount != amount || items[0].Reason != "4000" {
		t.Errorf("queued reversal: amount %d reason %s, want %d and 4000 (customer cancellation)", items[0].Amount, items[0].Reason, amount)
	}

	// The issuer: the purchase arrived once, was applied once and reversed once.
	recs := issuerRecordsOf(issuer.Transactions(), card, amount)
	if len(recs) != 1 {
		t.Fatalf("issuer records of the purchase: %+v, want 1", recs)
	}
	r := recs[0]
	if r.Copies != 1 || !r.Applied || r.AuthCode != fieldOf(first, 38) {
		t.Errorf("issuer record: copies %d applied %v auth %q; want 1, true, %q", r.Copies, r.Applied, r.AuthCode, fieldOf(first, 38))
	}
	// One reversal message per unanswered attempt of the queue, each naming it; one applied.
	if r.ReversalsApplied != 1 || int64(r.ReversalsNamed) != 1+st.Unanswered {
		t.Errorf("issuer record: %d reversals named, %d applied; want %d and 1", r.ReversalsNamed, r.ReversalsApplied, 1+st.Unanswered)
	}
	if after, _ := issuer.Balance(card.PAN); after != before {
		t.Errorf("card balance at the issuer %d, was %d before the purchase", after, before)
	}
	t.Logf("answers: %s/%s/%s ×3; ledger: %d entries (1 purchase, 1 reversal booked); queue: %+v",
		fieldOf(first, 39), fieldOf(first, 38), fieldOf(first, 37), len(entries), st.Items)
}

// TestDuplicateOfPurchaseInFlightIs94 sends a purchase and, while the issuer still holds its answer,
// the same request on a second connection: the duplicate is 94 and never reaches the issuer; once
// the first is answered, another retransmission gets its stored answer.
func TestDuplicateOfPurchaseInFlightIs94(t *testing.T) {
	// The issuer holds every answer 4s (below the 10s timeout): the first request stays in flight
	// at the switch from the moment the issuer has it until then.
	const hold = 4 * time.Second
	s := startStack(t, stackOptions{terminals: 2, issuerTimeout: 10 * time.Second})
	issuer := s.issuers[cards.BankA]
	if err := issuer.SetFaults(issuersim.Faults{DelayShare: 1, Delay: hold, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	c1 := s.dial("iso87a", "iso87a", false)
	c2 := s.dial("iso87a", "iso87a", false)
	term := s.terminals[1]
	card := cards.MustLookup("4761730000000011")
	const amount = 2222
	purchase := terminalsim.NewPurchase(term, card, amount, "", 4201)

	firstDone := make(chan *iso8583.Message, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := c1.Send(ctx, purchase)
		if err != nil {
			t.Errorf("first purchase: %v", err)
		}
		firstDone <- resp
	}()
	// Wait until the issuer has the first (it then holds the answer for 4s).
	for deadline := time.Now().Add(20 * time.Second); len(issuerRecordsOf(issuer.Transactions(), card, amount)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the issuer never received the purchase")
		}
		time.Sleep(5 * time.Millisecond)
	}
	dup := mustExchange(t, c2, purchase)
	if rc := fieldOf(dup, 39); rc != "94" {
		t.Errorf("duplicate in flight answered %s, want 94", rc)
	}
	select {
	case <-firstDone:
		t.Fatal("the first purchase was answered before its duplicate; the issuer's hold did not hold")
	default:
	}
	first := <-firstDone
	if first == nil {
		t.FailNow()
	}
	if rc := fieldOf(first, 39); rc != "00" {
		t.Fatalf("first purchase answered %s, want 00", rc)
	}
	again := mustExchange(t, c2, purchase)
	for _, f := range []int{39, 38, 37} {
		if fieldOf(again, f) != fieldOf(first, f) {
			t.Errorf("retransmission after the answer: field %d is %q, the first had %q", f, fieldOf(again, f), fieldOf(first, f))
		}
	}
	recs := issuerRecordsOf(issuer.Transactions(), card, amount)
	if len(recs) != 1 || recs[0].Copies != 1 {
		t.Errorf("issuer saw the purchase as %+v, want one record with one copy", recs)
	}
	var kinds []string
	for _, e := range journalOf(t, s, txnIdentity(purchase)) {
		kinds = append(kinds, fmt.Sprintf("%s/%s", e.kind, e.status))
	}
	sort.Strings(kinds)
	if strings.Join(kinds, ",") != "purchase/booked" {
		t.Errorf("ledger entries of the purchase: %v, want one booked purchase", kinds)
	}
}
