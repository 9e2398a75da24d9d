package ledger

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func sales(n, amount int64) Totals {
	t := Totals{DebitsCount: n, DebitsAmount: amount}
	t.NetAmount = t.Net()
	return t
}

func sameWindow(a, b BatchWindow) bool {
	return a.Terminal == b.Terminal && a.Since.Equal(b.Since) && a.Upto.Equal(b.Upto)
}

func openWindow(t *testing.T, tl *testLedger, terminal string) BatchWindow {
	t.Helper()
	w, err := OpenBatchWindow(context.Background(), tl.app, terminal)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func compareWindow(t *testing.T, tl *testLedger, w BatchWindow, tot Totals) Mismatch {
	t.Helper()
	m, err := CompareBatchWindow(context.Background(), tl.app, w, tot)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func closeWindow(t *testing.T, tl *testLedger, m Mismatch, key string) bool {
	t.Helper()
	ok, err := CloseBatch(context.Background(), tl.app, BatchClose{Window: m.Window, By: BatchBalanced, TxnKey: key,
		Merchant: "M1", Ledger: m.Ledger, TerminalNet: m.Ledger.NetAmount})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A terminal that settles twice in one cycle is compared each time with what it booked since its
// last close, and a batch that spans a cut-over is one batch: terminal batches and settlement
// cycles are independent.
func TestBatchWindowStartsAtTheTerminalsLastCloseWhateverTheCycle(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	p1 := purchase("M1", "ISS1", 1000)
	tl.book(t, p1)
	elsewhere := purchase("M1", "ISS1", 99900) // another terminal's sale counts nowhere here
	elsewhere.Terminal = "T2"
	tl.book(t, elsewhere)

	w1 := openWindow(t, tl, "T1")
	if !w1.Since.IsZero() {
		t.Fatalf("first window of a terminal starts at %s, want the beginning", w1.Since)
	}
	m1 := compareWindow(t, tl, w1, sales(1, 1000))
	if !m1.OK() || !sameWindow(m1.Window, w1) || m1.Cycle != 0 {
		t.Fatalf("first batch: %+v", m1)
	}
	if !closeWindow(t, tl, m1, "acq|T1|000001|0101000000|50") {
		t.Fatal("first close not recorded")
	}
	// The same batch cannot be closed twice: not by a racing settlement, not by the same 0500.
	if closeWindow(t, tl, m1, "acq|T1|000002|0101000000|50") {
		t.Error("a second close of the same batch was recorded")
	}

	// The second batch of the same cycle: the old comparison (the whole cycle) sees both sales
	// and says 76: 1 vs 2; the window sees only the new one.
	p2 := purchase("M1", "ISS1", 2000)
	tl.book(t, p2)
	if m, err := CompareBatchTotals(ctx, tl.app, "T1", 0, sales(1, 2000)); err != nil || m.OK() {
		t.Fatalf("the cycle's view of the second batch: %+v %v, want a mismatch", m, err)
	}
	// A cut-over in the middle of the batch does not split it.
	if _, err := Cutover(ctx, tl.app, "manual", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	p3 := purchase("M1", "ISS1", 500)
	tl.book(t, p3)
	w2 := openWindow(t, tl, "T1")
	if !w2.Since.Equal(w1.Upto) {
		t.Fatalf("second window starts at %s, want the first close's end %s", w2.Since, w1.Upto)
	}
	m2 := compareWindow(t, tl, w2, sales(2, 2500))
	if !m2.OK() {
		t.Fatalf("second batch across a cut-over: %+v", m2.Diffs)
	}
	entries, err := BatchWindowEntries(ctx, tl.app, w2)
	if err != nil || len(entries) != 2 || entries[0].Key == p1.Key || entries[1].Key == p1.Key {
		t.Fatalf("second batch's entries: %+v %v, want p2 and p3", entries, err)
	}
	if !closeWindow(t, tl, m2, "acq|T1|000003|0101000000|50") {
		t.Fatal("second close not recorded")
	}

	// An entry booked after a window was opened belongs to the next batch, never to none.
	w3 := openWindow(t, tl, "T1")
	p4 := purchase("M1", "ISS1", 700)
	tl.book(t, p4)
	m3 := compareWindow(t, tl, w3, sales(0, 0))
	if !m3.OK() {
		t.Fatalf("a sale booked after the window's end is in it: %+v", m3.Diffs)
	}
	closeWindow(t, tl, m3, "acq|T1|000004|0101000000|50")
	if m := compareWindow(t, tl, openWindow(t, tl, "T1"), sales(1, 700)); !m.OK() {
		t.Fatalf("the late sale is not in the next batch: %+v", m.Diffs)
	}

	// The closes are kept, newest first, and found by the closing message.
	closes, err := BatchCloses(ctx, tl.app, "T1", 10)
	if err != nil || len(closes) != 3 {
		t.Fatalf("closes: %+v %v", closes, err)
	}
	if !sameWindow(closes[2].Window, w1) || !sameWindow(closes[1].Window, w2) || closes[1].Ledger.DebitsAmount != 2500 || closes[1].By != BatchBalanced {
		t.Errorf("closes: %+v", closes)
	}
	c, ok, err := BatchCloseByKey(ctx, tl.app, "acq|T1|000001|0101000000|50")
	if err != nil || !ok || !sameWindow(c.Window, w1) || c.Ledger.DebitsCount != 1 || c.TerminalNet != -1000 || c.ClosedAt.IsZero() {
		t.Errorf("close of the first batch: %+v %v %v", c, ok, err)
	}
	if _, ok, err := BatchCloseByKey(ctx, tl.app, "acq|T1|000002|0101000000|50"); ok || err != nil {
		t.Errorf("the refused close was found: %v %v", ok, err)
	}
}

// Closes are records: the application role inserts and reads them and can change nothing; the
// auditor reads them.
func TestBatchClosesAreAppendOnlyAndAuditorsReadThem(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	tl.book(t, purchase("M1", "ISS1", 1000))
	m := compareWindow(t, tl, openWindow(t, tl, "T1"), sales(1, 1000))
	if !closeWindow(t, tl, m, "acq|T1|000001|0101000000|50") {
		t.Fatal("close not recorded")
	}
	for _, sql := range []string{`UPDATE terminal_batch_close SET differences = 1`, `DELETE FROM terminal_batch_close`} {
		if _, err := tl.app.Exec(ctx, sql); err == nil {
			t.Errorf("application role: %s succeeded", sql)
		}
		if _, err := tl.owner.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("owner: %s: %v, want the append-only refusal", sql, err)
		}
	}
	conn, err := pgx.Connect(ctx, tl.db.Auditor)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	var by string
	if err := conn.QueryRow(ctx, `SELECT count(*), min(closed_by) FROM terminal_batch_close WHERE terminal = 'T1'`).Scan(&n, &by); err != nil || n != 1 || by != "balanced" {
		t.Errorf("auditor reading the closes: %d %q %v", n, by, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO terminal_batch_close (terminal, since, upto, closed_by, txn_key, credits_count,
		credits_reversal_count, debits_count, debits_reversal_count, credits_amount, credits_reversal_amount, debits_amount,
		debits_reversal_amount, net_amount, terminal_net_amount) VALUES ('T9', '-infinity', now(), 'balanced', 'k', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)`); err == nil {
		t.Error("the auditor closed a batch")
	}
}

func TestBatchWindowNeedsATerminalAndAnEnd(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	if _, err := CompareBatchWindow(ctx, tl.app, BatchWindow{Terminal: "T1"}, Totals{}); err == nil {
		t.Error("a window without an end was compared")
	}
	if _, err := CloseBatch(ctx, tl.app, BatchClose{Window: BatchWindow{Terminal: "T1", Upto: time.Now()}, By: BatchBalanced}); err == nil {
		t.Error("a close without its message was recorded")
	}
}
