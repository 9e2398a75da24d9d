package node

import (
	"context"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

// A terminal settles its batch, starts a new one and settles again within one settlement cycle:
// each 0500 is compared with what the terminal did since its last close, so both are 00. A batch
// that did not balance is closed by the trailer after its upload, and the next batch starts after
// it. A repeat of a 0500 that closed its batch is 00 and closes nothing.
func TestTerminalSettlingSeveralBatchesInOneCycleBalancesEachTime(t *testing.T) {
	f := startFlowNode(t, "iso87a", false)
	c := f.dial("iso87a", false)
	card := cards.MustLookup("6226090000000014")
	closes := func() int {
		return f.count(`SELECT count(*) FROM terminal_batch_close WHERE terminal = $1`, f.term.TID)
	}
	buy := func(b *terminalsim.Batch, amount int64) *iso8583.Message {
		t.Helper()
		p := terminalsim.NewPurchase(f.term, card, amount, "", f.nextSTAN())
		r := send(t, c, p)
		if rc(r) != "00" {
			t.Fatalf("purchase of %d: %s", amount, rc(r))
		}
		if b != nil {
			b.Record(p, r)
		}
		return p
	}
	settle := func(what string, b *terminalsim.Batch, want string) *iso8583.Message {
		t.Helper()
		m := terminalsim.NewBatchSettlement(f.term, b.Totals(), f.nextSTAN())
		if r := send(t, c, m); rc(r) != want {
			rep, _ := f.node.BatchReport(f.term.TID)
			t.Fatalf("%s: 0500 answered %s, want %s; report %+v", what, rc(r), want, rep)
		}
		return m
	}

	// The reproduction: 10.00, settle, a new batch, 20.00, settle with the new batch's totals.
	first := terminalsim.NewBatch("156")
	buy(first, 1000)
	firstSettlement := settle("first batch", first, "00")
	rep1, _ := f.node.BatchReport(f.term.TID)
	if !rep1.Closed || closes() != 1 {
		t.Fatalf("first batch: report %+v, %d closes; want closed once", rep1, closes())
	}
	second := terminalsim.NewBatch("156")
	buy(second, 2000)
	settle("second batch of the same cycle", second, "00")
	rep2, _ := f.node.BatchReport(f.term.TID)
	if !rep2.Closed || !rep2.Window.Since.Equal(rep1.Window.Upto) || rep2.Totals.Ledger.DebitsAmount != 2000 || closes() != 2 {
		t.Fatalf("second batch: report %+v, %d closes; want closed, starting where the first ended, with 20.00", rep2, closes())
	}
	// The acquirer's cycle still holds both batches: the cycle is not the terminal's batch.
	if n := f.count(`SELECT count(*) FROM journal_entry WHERE terminal = $1 AND cycle_id = 1 AND kind = 'purchase'`, f.term.TID); n != 2 {
		t.Fatalf("%d purchases in cycle 1, want 2", n)
	}

	// A batch that does not balance: the terminal lost the answer of one sale.
	third := terminalsim.NewBatch("156")
	buy(third, 3000)
	lost := buy(nil, 4000)
	settle("third batch, one answer lost", third, "95")
	if closes() != 2 {
		t.Fatal("a mismatched 0500 closed the batch")
	}
	for _, u := range third.Uploads(f.nextSTAN() + 100) {
		if r := send(t, c, u); rc(r) != "00" {
			t.Fatalf("0320: %s", rc(r))
		}
	}
	if r := send(t, c, terminalsim.NewBatchTrailer(f.term, third.Totals(), f.nextSTAN())); rc(r) != "00" {
		t.Fatalf("trailer: %s", rc(r))
	}
	rep3, _ := f.node.BatchReport(f.term.TID)
	if !rep3.Complete || !rep3.Closed || len(rep3.LedgerOnly) != 1 || rep3.LedgerOnly[0].Key != keyOf(f.term.TID, lost) ||
		len(rep3.TerminalOnly) != 0 || rep3.Uploaded != 1 || closes() != 3 {
		t.Fatalf("third batch: report %+v, %d closes; want closed by the trailer with the lost sale ledger-only", rep3, closes())
	}
	var by string
	var ledgerOnly int
	if err := f.pool.QueryRow(context.Background(), `SELECT closed_by, ledger_only FROM terminal_batch_close
	    WHERE terminal = $1 ORDER BY upto DESC LIMIT 1`, f.term.TID).Scan(&by, &ledgerOnly); err != nil || by != "upload" || ledgerOnly != 1 {
		t.Errorf("the trailer's close: %q, %d ledger-only, %v", by, ledgerOnly, err)
	}

	// The next batch starts after the trailer: neither 30.00 nor the lost 40.00 is in it.
	fourth := terminalsim.NewBatch("156")
	buy(fourth, 500)
	settle("the batch after an upload", fourth, "00")

	// The first 0500, sent again (its answer lost): 00, and nothing more is closed.
	if r := send(t, c, terminalsim.Repeat(firstSettlement)); rc(r) != "00" {
		t.Errorf("repeat of the first batch's 0500: %s, want 00", rc(r))
	}
	if closes() != 4 {
		t.Errorf("%d closes after the repeat, want 4", closes())
	}
	got, err := ledger.BatchCloses(context.Background(), f.pool, f.term.TID, 10)
	if err != nil || len(got) != 4 {
		t.Fatalf("closes %+v %v", got, err)
	}
	for i := 0; i+1 < len(got); i++ { // newest first, each starting where the one before ended
		if !got[i].Window.Since.Equal(got[i+1].Window.Upto) {
			t.Errorf("close %d starts at %s, the one before ended at %s", i, got[i].Window.Since, got[i+1].Window.Upto)
		}
	}
	verify(t, f)
}
