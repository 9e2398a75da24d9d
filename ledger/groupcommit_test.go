package ledger

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// bookAll books bs concurrently and returns each result and error, in order.
func bookAll(tl *testLedger, bs []Booking) ([]Result, []error) {
	res := make([]Result, len(bs))
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res[i], errs[i] = tl.w.Book(ctx, b)
		}()
	}
	wg.Wait()
	return res, errs
}

// blindRetries reads poswitch_ledger_blind_batch_retries_total from reg.
func blindRetries(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "poswitch_ledger_blind_batch_retries_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no poswitch_ledger_blind_batch_retries_total metric")
	return 0
}

func verifyOK(t *testing.T, tl *testLedger) VerifyReport {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, tl.db.Auditor)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rep, err := Verify(ctx, conn)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	return rep
}

// A batch written without reading first (only purchases, merchants cached) that holds a repeat of
// a booked key is refused by the database as a whole and booked again read-first: the new keys
// are booked once, the repeat gets the stored answer, a reuse with other content ErrConflict.
func TestBlindBatchMixingNewKeysAndDuplicatesBooksOnlyTheNew(t *testing.T) {
	reg := prometheus.NewRegistry()
	tl := newTestLedger(t, WriterConfig{Flushers: 1, BatchWindow: 200 * time.Millisecond, Registerer: reg})
	first := purchase("M1", "ISS1", 1000)
	stored := tl.book(t, first) // caches M1 and the open cycle: the next batch of purchases goes blind
	reused := first
	reused.Amount = 2000
	bs := []Booking{purchase("M1", "ISS1", 3000), first, reused, purchase("M1", "ISS1", 4000)}
	res, errs := bookAll(tl, bs)
	for _, i := range []int{0, 3} {
		if errs[i] != nil || res[i].Status != StatusBooked || res[i].Duplicate {
			t.Errorf("new purchase %d: %+v, %v", i, res[i], errs[i])
		}
	}
	if errs[1] != nil || !res[1].Duplicate || res[1].EntryID != stored.EntryID {
		t.Errorf("repeat: %+v, %v; want the stored answer %s", res[1], errs[1], stored.EntryID)
	}
	if !errors.Is(errs[2], ErrConflict) {
		t.Errorf("same key, other amount: %v, want ErrConflict", errs[2])
	}
	if got := blindRetries(t, reg); got < 1 {
		t.Errorf("blind retries = %v: the mixed batch was not written blind first", got)
	}
	if rep := verifyOK(t, tl); rep.Entries != 3 || rep.Postings != 9 {
		t.Errorf("verify: %d entries, %d postings; want 3 and 9", rep.Entries, rep.Postings)
	}
	if got := tl.balance(t, "issuer_receivable:ISS1", "156"); got != 8000 {
		t.Errorf("issuer receivable %d, want 8000", got)
	}
}

// A blind batch asserts that the cycle it remembers is still open: after a cut-over it is refused
// and booked read-first into the new cycle, never into the closed one.
func TestBlindBatchAfterCutoverBooksIntoTheNewCycle(t *testing.T) {
	reg := prometheus.NewRegistry()
	tl := newTestLedger(t, WriterConfig{Flushers: 1, Registerer: reg})
	if r := tl.book(t, purchase("M1", "ISS1", 1000)); r.Cycle != 1 {
		t.Fatalf("first purchase in cycle %d", r.Cycle)
	}
	if _, err := Cutover(context.Background(), tl.app, "manual", time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	r := tl.book(t, purchase("M1", "ISS1", 2000))
	if r.Status != StatusBooked || r.Cycle != 2 {
		t.Fatalf("purchase after cut-over: %+v, want booked in cycle 2", r)
	}
	var n int
	if err := tl.owner.QueryRow(context.Background(), `SELECT count(*) FROM posting WHERE entry_id = $1 AND cycle_id = 2`, [16]byte(r.EntryID)).Scan(&n); err != nil || n != 3 {
		t.Errorf("postings in cycle 2: %d, %v", n, err)
	}
	if blindRetries(t, reg) < 1 {
		t.Errorf("the purchase after cut-over was not tried blind first")
	}
	verifyOK(t, tl)
}

// Group commit without a window: every Book returns only after its entry is committed, so another
// connection sees it the moment Book returns.
func TestBookReturnsOnlyAfterItsBatchCommitted(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	const n = 300
	bs := make([]Booking, n)
	for i := range bs {
		bs[i] = purchase("M1", "ISS1", int64(1000+i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			r, err := tl.w.Book(ctx, b)
			if err != nil {
				errs <- err
				return
			}
			var seen bool
			if err := tl.owner.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM journal_entry WHERE id = $1 AND txn_key = $2)`, [16]byte(r.EntryID), b.Key).Scan(&seen); err != nil {
				errs <- err
			} else if !seen {
				errs <- errors.New(b.Key + " answered before its entry was visible")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	verifyOK(t, tl)
}

// The per-row foreign key from journal_entry.currency became a per-statement check: the database
// still refuses an entry in a currency it does not know, and a currency row cannot be removed.
func TestDatabaseRefusesAnEntryInAnUnknownCurrency(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	_, err := tl.app.Exec(ctx, `INSERT INTO journal_entry (id, txn_key, kind, status, currency, amount, cycle_id, content_hash, txn_at, chain, batch_seq)
	                            VALUES ('018f0000-0000-7000-8000-000000000002', 'k', 'purchase', 'noop', '999', 0, 1, '\x00', now(), 'c', 1)`)
	if err == nil || !strings.Contains(err.Error(), "unknown currency 999") {
		t.Errorf("entry in currency 999: %v, want the unknown-currency refusal", err)
	}
	if _, err := tl.owner.Exec(ctx, `DELETE FROM currency WHERE numeric_code = '156'`); err == nil {
		t.Errorf("the owner deleted a currency")
	}
}
