package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/node"
)

// withField is a copy of m with one field changed, as a faulty terminal would keep it.
func withField(t *testing.T, m *iso8583.Message, id int, value string) *iso8583.Message {
	t.Helper()
	out := iso8583.NewMessage(m.GetSpec())
	mti, _ := m.GetMTI()
	out.MTI(mti)
	for f := range m.GetFields() {
		if f == 0 || f == 1 {
			continue
		}
		b, err := m.GetBytes(f)
		if err == nil {
			err = out.BinaryField(f, b)
		}
		if err != nil {
			t.Fatalf("copying field %d: %v", f, err)
		}
	}
	if err := out.Field(id, value); err != nil {
		t.Fatalf("setting field %d: %v", id, err)
	}
	return out
}

// scrapeMetrics reads the node's Prometheus endpoint: series (name with labels, as exposed) → value.
func scrapeMetrics(t *testing.T, s *stack) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.metricsAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// batchTerminal is one terminal sending requests and keeping its batch.
type batchTerminal struct {
	t     *testing.T
	c     *terminalsim.Client
	term  terminalsim.Terminal
	batch *terminalsim.Batch
	stan  int
}

func (b *batchTerminal) next() int { b.stan++; return b.stan }

// send sends req, checks the answer code and keeps it in the batch as the terminal does.
func (b *batchTerminal) send(what string, req *iso8583.Message, wantRC string) *iso8583.Message {
	b.t.Helper()
	resp := mustExchange(b.t, b.c, req)
	if rc := fieldOf(resp, 39); rc != wantRC {
		b.t.Fatalf("%s %s: %s answered %s, want %s", b.term.TID, what, fieldOf(req, 11), rc, wantRC)
	}
	b.batch.Record(req, resp)
	return resp
}

// TestBatchSettlementAcceptsCorrectTotalsAndReconcilesAnUploadAfterWrongOnes settles two terminals'
// batches. The first, with purchases, refunds, voids of each, a reversal, a decline and an inquiry,
// sends the totals it kept and gets 0510 00. The second kept a wrong amount, a decline it took for
// an approval, and lost an answer the ledger booked: its 0500 gets 95, it uploads its batch (0320)
// and closes with a trailer, and the switch reports exactly those three transactions, in its report,
// its metrics and its log.
func TestBatchSettlementAcceptsCorrectTotalsAndReconcilesAnUploadAfterWrongOnes(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 3, metrics: true})
	x := cards.MustLookup("4761730000000011")    // bank-a USD
	b := cards.MustLookup("5413330000000019")    // bank-b USD
	poor := cards.MustLookup("4761730000000037") // bank-a USD, insufficient funds: 51
	t1 := &batchTerminal{t: t, c: s.dial("iso87a", "iso87a", false), term: s.terminals[1], batch: terminalsim.NewBatch(cards.USD), stan: 6000}
	t2 := &batchTerminal{t: t, c: s.dial("iso87a", "iso87a", false), term: s.terminals[2], batch: terminalsim.NewBatch(cards.USD), stan: 7000}

	// Terminal 1: a batch that agrees with the ledger.
	p1 := terminalsim.NewPurchase(t1.term, x, 10000, "", t1.next())
	t1.send("purchase", p1, "00")
	p2 := terminalsim.NewPurchase(t1.term, b, 2500, "", t1.next())
	t1.send("purchase", p2, "00")
	p3 := terminalsim.NewPurchase(t1.term, x, 777, "", t1.next())
	t1.send("purchase", p3, "00")
	t1.send("declined purchase", terminalsim.NewPurchase(t1.term, poor, 1000, "", t1.next()), "51")
	t1.send("refund", terminalsim.NewRefund(t1.term, x, p1, 1500, t1.next()), "00")
	r2 := terminalsim.NewRefund(t1.term, x, p1, 500, t1.next())
	t1.send("refund", r2, "00")
	t1.send("void of a purchase", terminalsim.NewVoid(p2, t1.next()), "00")
	t1.send("void of a refund", terminalsim.NewVoid(r2, t1.next()), "00")
	t1.send("reversal", terminalsim.NewReversal(p3, false), "00")
	t1.send("balance inquiry", terminalsim.NewBalanceInquiry(t1.term, x, "", t1.next()), "00")
	tot := t1.batch.Totals()
	want := terminalsim.Totals{Currency: cards.USD, CreditsCount: 2, CreditsReversalCount: 1, DebitsCount: 2, DebitsReversalCount: 1,
		CreditsAmount: 1500 + 500, CreditsReversalAmount: 500, DebitsAmount: 10000 + 2500, DebitsReversalAmount: 2500, InquiriesCount: 1}
	if tot != want {
		t.Fatalf("terminal 1 kept totals %+v, want %+v", tot, want)
	}
	resp := mustExchange(t, t1.c, terminalsim.NewBatchSettlement(t1.term, tot, t1.next()))
	if mti, _ := resp.GetMTI(); mti != "0510" || fieldOf(resp, 39) != "00" {
		t.Fatalf("settlement with the right totals: %s %s, want 0510 00", mti, fieldOf(resp, 39))
	}
	rep, ok := s.node.BatchReport(t1.term.TID)
	if !ok || !rep.Balanced() || rep.Totals.Ledger.DebitsAmount != want.DebitsAmount || rep.Totals.Ledger.CreditsReversalAmount != want.CreditsReversalAmount {
		t.Errorf("terminal 1 report: %+v, want balanced with the terminal's totals", rep)
	}

	// Terminal 2: a batch that does not agree.
	q1 := terminalsim.NewPurchase(t2.term, x, 3000, "", t2.next())
	t2.send("purchase", q1, "00")
	lost := terminalsim.NewPurchase(t2.term, x, 4500, "", t2.next())
	if rc := fieldOf(mustExchange(t, t2.c, lost), 39); rc != "00" {
		t.Fatalf("purchase whose answer the terminal loses: %s", rc)
	} // not kept: the terminal never saw the answer
	q3 := terminalsim.NewPurchase(t2.term, x, 1200, "", t2.next())
	a3 := mustExchange(t, t2.c, q3)
	t2.batch.Record(withField(t, q3, 4, fmt.Sprintf("%012d", 1250)), a3) // kept with a wrong amount
	q4 := terminalsim.NewPurchase(t2.term, poor, 1000, "", t2.next())
	a4 := mustExchange(t, t2.c, q4)
	if fieldOf(a4, 39) != "51" {
		t.Fatalf("declined purchase answered %s", fieldOf(a4, 39))
	}
	t2.batch.Record(q4, withField(t, a4, 39, "00")) // kept as approved
	t2.send("refund", terminalsim.NewRefund(t2.term, x, q1, 300, t2.next()), "00")
	tot2 := t2.batch.Totals()
	resp = mustExchange(t, t2.c, terminalsim.NewBatchSettlement(t2.term, tot2, t2.next()))
	if mti, _ := resp.GetMTI(); mti != "0510" || fieldOf(resp, 39) != "95" {
		t.Fatalf("settlement with wrong totals: %s %s, want 0510 95", mti, fieldOf(resp, 39))
	}
	rep, _ = s.node.BatchReport(t2.term.TID)
	diffs := map[int][2]int64{}
	for _, d := range rep.Totals.Diffs {
		diffs[d.Field] = [2]int64{d.Terminal, d.Ledger}
	}
	wantDiffs := map[int][2]int64{88: {3000 + 1250 + 1000, 3000 + 4500 + 1200}, 97: {300 - 5250, 300 - 8700}}
	if fmt.Sprint(diffs) != fmt.Sprint(wantDiffs) || rep.Complete {
		t.Errorf("terminal 2 totals differ on %v, want %v (and the report open)", diffs, wantDiffs)
	}

	uploads := t2.batch.Uploads(t2.next())
	t2.stan += len(uploads)
	if len(uploads) != 4 {
		t.Fatalf("terminal 2 uploads %d transactions, want 4", len(uploads))
	}
	for _, u := range uploads {
		resp := mustExchange(t, t2.c, u)
		if mti, _ := resp.GetMTI(); mti != "0330" || fieldOf(resp, 39) != "00" {
			t.Errorf("batch upload %s: %s %s, want 0330 00", fieldOf(u, 11), mti, fieldOf(resp, 39))
		}
	}
	resp = mustExchange(t, t2.c, terminalsim.NewBatchTrailer(t2.term, tot2, t2.next()))
	if mti, _ := resp.GetMTI(); mti != "0510" || fieldOf(resp, 39) != "00" {
		t.Fatalf("batch upload trailer: %s %s, want 0510 00", mti, fieldOf(resp, 39))
	}

	rep, ok = s.node.BatchReport(t2.term.TID)
	if !ok || !rep.Complete || rep.Uploaded != 4 || rep.Balanced() {
		t.Fatalf("terminal 2 report: complete %v, %d uploaded, balanced %v; want complete, 4, false", rep.Complete, rep.Uploaded, rep.Balanced())
	}
	check := func(side string, items []node.BatchItem, req *iso8583.Message, terminalAmount, ledgerAmount int64) {
		t.Helper()
		if len(items) != 1 {
			t.Errorf("%s: %+v, want only %s", side, items, txnIdentity(req))
			return
		}
		it := items[0]
		if it.Key != txnIdentity(req) || it.STAN != fieldOf(req, 11) || it.TerminalAmount != terminalAmount || it.LedgerAmount != ledgerAmount {
			t.Errorf("%s: %+v, want %s stan %s terminal %d ledger %d", side, it, txnIdentity(req), fieldOf(req, 11), terminalAmount, ledgerAmount)
		}
	}
	check("ledger only", rep.LedgerOnly, lost, 0, 4500)
	check("amount differs", rep.AmountDiffers, q3, 1250, 1200)
	check("terminal only", rep.TerminalOnly, q4, 1000, 0)
	if rep.TrailerTotals == nil || rep.TrailerTotals.OK() {
		t.Errorf("trailer totals: %+v, want the same difference", rep.TrailerTotals)
	}

	// The log names each differing transaction.
	logged := map[string]string{}
	for _, e := range s.logs.FilterMessage("batch difference").All() {
		f := e.ContextMap()
		if f["tid"] == t2.term.TID {
			logged[fmt.Sprint(f["key"])] = fmt.Sprint(f["side"])
		}
	}
	wantLogged := map[string]string{txnIdentity(lost): "ledger_only", txnIdentity(q3): "amount", txnIdentity(q4): "terminal_only"}
	if fmt.Sprint(logged) != fmt.Sprint(wantLogged) {
		t.Errorf("logged differences %v, want %v", logged, wantLogged)
	}
	if n := s.logs.FilterMessage("batch totals differ from the ledger; answering 95 for a batch upload").Len(); n != 1 {
		t.Errorf("%d totals mismatches logged, want 1", n)
	}

	// And the metrics count them.
	m := scrapeMetrics(t, s)
	for series, v := range map[string]float64{
		`poswitch_batch_settlements_total{result="balanced"}`:           1,
		`poswitch_batch_settlements_total{result="mismatch"}`:           1,
		`poswitch_batch_settlements_total{result="trailer"}`:            1,
		`poswitch_batch_upload_transactions_total`:                      4,
		`poswitch_batch_upload_differences_total{side="terminal_only"}`: 1,
		`poswitch_batch_upload_differences_total{side="ledger_only"}`:   1,
		`poswitch_batch_upload_differences_total{side="amount"}`:        1,
	} {
		if m[series] != v {
			t.Errorf("metric %s = %v, want %v", series, m[series], v)
		}
	}
	t.Logf("terminal 1 totals %+v balanced; terminal 2 differences: ledger only %v, amount %v, terminal only %v",
		tot, rep.LedgerOnly, rep.AmountDiffers, rep.TerminalOnly)
}
