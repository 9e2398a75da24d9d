package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The issuer trace travels with the entry, in blind and read-first batches alike, and comes back by
// the transaction's key; it is not sealed, so the ledger still verifies, and a retry under a new
// trace is the same transaction (a duplicate, not a conflict).
func TestIssuerTraceIsStoredWithTheEntryAndReadBack(t *testing.T) {
	reg := prometheus.NewRegistry()
	tl := newTestLedger(t, WriterConfig{Flushers: 1, Registerer: reg})
	ctx := context.Background()
	first := purchase("M1", "ISS1", 1000)
	first.IssuerSTAN, first.IssuerTime = "000417", "0614123045"
	tl.book(t, first) // read-first: caches M1 and the cycle
	blind := purchase("M1", "ISS1", 2000)
	blind.IssuerSTAN, blind.IssuerTime = "000418", "0614123046"
	tl.book(t, blind) // written blind
	if blindRetries(t, reg) != 0 {
		t.Fatal("the blind batch was refused")
	}
	untraced := purchase("M1", "ISS1", 3000)
	tl.book(t, untraced)

	for _, c := range []struct {
		b          Booking
		stan, time string
	}{{first, "000417", "0614123045"}, {blind, "000418", "0614123046"}, {untraced, "", ""}} {
		tr, ok, err := IssuerTraceOf(ctx, tl.app, c.b.Key)
		if err != nil || !ok {
			t.Fatalf("%s: ok %v, %v", c.b.Key, ok, err)
		}
		if tr.STAN != c.stan || tr.Time != c.time || tr.Issuer != "ISS1" || tr.Amount != c.b.Amount ||
			tr.Kind != Purchase || tr.Status != StatusBooked || tr.Cancelled || tr.PANMasked != c.b.PANMasked {
			t.Errorf("%s: trace %+v, want STAN %q time %q", c.b.Key, tr, c.stan, c.time)
		}
	}
	if _, ok, err := IssuerTraceOf(ctx, tl.app, "no|such|key"); ok || err != nil {
		t.Errorf("unknown key: ok %v, %v", ok, err)
	}

	retry := first
	retry.IssuerSTAN, retry.IssuerTime = "000999", "0614130000"
	if r := tl.book(t, retry); !r.Duplicate || r.Status != StatusBooked {
		t.Errorf("retry under a new trace: %+v, want the stored answer", r)
	}
	if tr, _, _ := IssuerTraceOf(ctx, tl.app, first.Key); tr.STAN != "000417" {
		t.Errorf("a retry changed the stored trace to %s", tr.STAN)
	}

	tl.book(t, on(Reversal, first, 0))
	if tr, _, _ := IssuerTraceOf(ctx, tl.app, first.Key); !tr.Cancelled || tr.STAN != "000417" {
		t.Errorf("after a reversal: %+v, want cancelled with the original trace", tr)
	}
	verifyOK(t, tl)
}

// A trace that is not digits never reaches the database: one bad booking must not fail a batch.
func TestMalformedIssuerTraceIsRefusedBeforeTheBatch(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	for _, bad := range []struct{ stan, time string }{{"12a456", ""}, {"", "0614 23045"}, {"1234567890123", ""}} {
		b := purchase("M1", "ISS1", 1000)
		b.IssuerSTAN, b.IssuerTime = bad.stan, bad.time
		if _, err := tl.w.Book(context.Background(), b); !errors.Is(err, ErrInvalid) {
			t.Errorf("trace %q/%q: %v, want ErrInvalid", bad.stan, bad.time, err)
		}
	}
}

// The database refuses a malformed trace too, whoever writes it.
func TestJournalChecksTheIssuerTraceShape(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	b := purchase("M1", "ISS1", 1000)
	tl.book(t, b)
	_, err := tl.owner.Exec(context.Background(), `INSERT INTO journal_entry (id, txn_key, kind, status, currency, amount, cycle_id,
	    content_hash, txn_at, chain, batch_seq, issuer_stan) VALUES (gen_random_uuid(), 'x', 'purchase', 'booked', '156', 1, 1, '\x00', now(), 'c', 1, 'ABC')`)
	if err == nil {
		t.Fatal("the journal took issuer_stan 'ABC'")
	}
}

func TestEntryOfTellsWhatIsLeftToRefund(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	p := purchase("M1", "ISS1", 10000)
	tl.book(t, p)
	r1 := on(Refund, p, 2500)
	tl.book(t, r1)
	e, ok, err := EntryOf(ctx, tl.app, p.Key)
	if err != nil || !ok || e.Refundable() != 7500 || e.Refunded != 2500 || e.RRN != p.RRN {
		t.Fatalf("after one refund: %+v ok %v %v; want 7500 refundable", e, ok, err)
	}
	tl.book(t, on(Reversal, r1, 0)) // a reversed refund gives its amount back
	if e, _, _ = EntryOf(ctx, tl.app, p.Key); e.Refundable() != 10000 {
		t.Errorf("after the refund was reversed: refundable %d, want 10000", e.Refundable())
	}
	v := on(Void, p, 10000)
	tl.book(t, v)
	if e, _, _ = EntryOf(ctx, tl.app, p.Key); e.Refundable() != 0 || e.ConsumedBy != v.Key {
		t.Errorf("after a void: %+v, want nothing refundable", e)
	}
	unknown := on(Reversal, purchase("M1", "ISS1", 1), 0)
	tl.book(t, unknown)
	if e, ok, _ = EntryOf(ctx, tl.app, unknown.Key); !ok || e.Status != StatusNoop || !e.NotFound {
		t.Errorf("reversal of an unknown original: %+v, want noop, not found", e)
	}
}

// Totals count as the terminal does: a sale the terminal reversed is in no field, a voided one is
// a debit and its void a debit reversal; optional fields are compared only when sent, 80 only
// reported.
func TestBatchTotalsLeaveReversedSalesOutAndCompareSentOptionalFields(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	p1, p2, p3 := purchase("M1", "ISS1", 10000), purchase("M1", "ISS1", 2500), purchase("M1", "ISS1", 700)
	for _, b := range []Booking{p1, p2, p3} {
		tl.book(t, b)
	}
	tl.book(t, on(Void, p2, 2500))
	tl.book(t, on(Reversal, p3, 0))
	pa := purchase("M1", "ISS1", 5000)
	pa.Kind = PreAuth
	tl.book(t, pa)
	fees := int64(60 + 15) // 0.6% of 100.00 and of 25.00
	want := Totals{DebitsCount: 2, DebitsAmount: 12500, DebitsReversalCount: 1, DebitsReversalAmount: 2500,
		AuthorizationsCount: 1, DebitsTransactionFee: fees, InquiriesCount: 4,
		Optional: map[int]bool{81: true, 85: true, 80: true, 78: true}}
	want.NetAmount = want.Net()
	m, err := CompareBatchTotals(ctx, tl.app, "T1", 0, want)
	if err != nil || !m.OK() {
		t.Fatalf("terminal's view: %+v, %v", m, err)
	}
	if len(m.Reported) != 1 || m.Reported[0].Field != 80 || m.Reported[0].Terminal != 4 {
		t.Errorf("reported %+v, want field 80 with 4", m.Reported)
	}
	off := want
	off.AuthorizationsCount = 2
	if m, _ = CompareBatchTotals(ctx, tl.app, "T1", 0, off); len(m.Diffs) != 1 || m.Diffs[0].Field != 81 {
		t.Errorf("81 off by one: %+v", m.Diffs)
	}
	off.Optional = nil // not sent: not compared
	if m, _ = CompareBatchTotals(ctx, tl.app, "T1", 0, off); !m.OK() {
		t.Errorf("unsent 81 compared: %+v", m.Diffs)
	}

	batch, err := TerminalBatch(ctx, tl.app, "T1", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Kind{}
	for _, e := range batch {
		got[e.Key] = e.Kind
	}
	if len(batch) != 4 || got[p1.Key] != Purchase || got[p2.Key] != Purchase || got[pa.Key] != PreAuth {
		t.Errorf("batch %+v: want p1, p2, its void and the pre-authorisation", batch)
	}
	if _, ok := got[p3.Key]; ok {
		t.Error("the reversed sale is in the batch")
	}
}
