package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/txn"
)

// netOfEntries sums the postings of the entries with these keys per account and currency.
func netOfEntries(t *testing.T, s *stack, keys ...string) map[string]int64 {
	t.Helper()
	rows, err := s.node.Pool.Query(context.Background(), `SELECT p.account || ' ' || p.currency, sum(p.amount)::bigint
	  FROM posting p JOIN journal_entry e ON e.id = p.entry_id WHERE e.txn_key = ANY($1) GROUP BY 1`, keys)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return out
}

func entryOf(t *testing.T, s *stack, key string) ledger.Entry {
	t.Helper()
	e, ok, err := ledger.EntryOf(context.Background(), s.node.Pool, key)
	if err != nil || !ok {
		t.Fatalf("entry %s: %v %v", key, ok, err)
	}
	return e
}

// A void before cut-over cancels its sale outright (the exact mirror: every account nets to zero);
// after the sale's cycle was cut over a void is 12 and the ledger refuses one too, and the merchant
// refunds instead.
func TestVoidBeforeCutoverCancelsOutrightAndAfterItIsRefundInstead(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 4})
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[1]
	card := cards.MustLookup("6226090000000014")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	sale := terminalsim.NewPurchase(term, card, 5000, card.Currency, 1)
	if rc := fieldOf(mustExchange(t, c, sale), 39); rc != txn.RCApproved {
		t.Fatalf("sale: %s", rc)
	}
	void := terminalsim.NewVoid(sale, 2)
	if rc := fieldOf(mustExchange(t, c, void), 39); rc != txn.RCApproved {
		t.Fatalf("void before cut-over: %s", rc)
	}
	saleKey, voidKey := txnIdentity(sale), txnIdentity(void)
	v := entryOf(t, s, voidKey)
	if v.Kind != ledger.Void || v.Status != ledger.StatusBooked || v.Amount != 5000 || entryOf(t, s, saleKey).ConsumedBy != voidKey {
		t.Fatalf("void entry %+v", v)
	}
	for acct, net := range netOfEntries(t, s, saleKey, voidKey) {
		if net != 0 {
			t.Errorf("sale and void leave %d on %s", net, acct)
		}
	}

	sale2 := terminalsim.NewPurchase(term, card, 7000, card.Currency, 5)
	if rc := fieldOf(mustExchange(t, c, sale2), 39); rc != txn.RCApproved {
		t.Fatalf("second sale: %s", rc)
	}
	if _, err := ledger.Cutover(ctx, s.node.Pool, "manual", time.Now(), zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	late := terminalsim.NewVoid(sale2, 6)
	if rc := fieldOf(mustExchange(t, c, late), 39); rc != txn.RCInvalidTxn {
		t.Fatalf("void after cut-over: %s, want 12", rc)
	}
	sale2Key := txnIdentity(sale2)
	if e := entryOf(t, s, sale2Key); e.ConsumedBy != "" || !e.CycleClosed {
		t.Fatalf("the settled sale: %+v", e)
	}
	// The ledger's own rule refuses it as well (a void that got past the switch's check).
	res, err := s.node.Writer.Book(ctx, ledger.Booking{Key: sale2Key + "|late-void", Kind: ledger.Void, OriginalKey: sale2Key,
		Merchant: term.MID, Terminal: term.TID, Currency: card.Currency, Amount: 7000, At: time.Now()})
	if err != nil || res.Status != ledger.StatusRefused || !strings.Contains(res.Reason, "refund it instead") {
		t.Fatalf("ledger void after cut-over: %+v %v", res, err)
	}
	refund := terminalsim.NewRefund(term, card, sale2, 7000, 7)
	if rc := fieldOf(mustExchange(t, c, refund), 39); rc != txn.RCApproved {
		t.Fatalf("refund after cut-over: %s", rc)
	}
	if r := entryOf(t, s, txnIdentity(refund)); r.Kind != ledger.Refund || r.Status != ledger.StatusBooked || r.Amount != 7000 {
		t.Fatalf("refund entry %+v", r)
	}
}

// Refunds may be partial, several, up to the original in total: one more is 13 and books nothing.
func TestPartialRefundsUpToTheOriginalAndNoMore(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 4})
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[1]
	card := cards.MustLookup("6250010000000011") // bank-b, CNY
	sale := terminalsim.NewPurchase(term, card, 10000, card.Currency, 1)
	if rc := fieldOf(mustExchange(t, c, sale), 39); rc != txn.RCApproved {
		t.Fatalf("sale: %s", rc)
	}
	for i, step := range []struct {
		amount int64
		want   string
	}{{4000, txn.RCApproved}, {5999, txn.RCApproved}, {2, txn.RCInvalidAmount}, {1, txn.RCApproved}, {1, txn.RCInvalidAmount}} {
		refund := terminalsim.NewRefund(term, card, sale, step.amount, 10+i)
		if rc := fieldOf(mustExchange(t, c, refund), 39); rc != step.want {
			t.Fatalf("refund %d of %d: %s, want %s", i+1, step.amount, rc, step.want)
		}
	}
	rows := journalOf(t, s, txnIdentity(sale))
	var refunded int64
	for _, r := range rows {
		if r.kind == "refund" && r.status == "booked" {
			refunded += r.amount
		}
	}
	if refunded != 10000 || countEntries(rows, "refund", "booked") != 3 {
		t.Fatalf("refunds booked %d in %d entries, want 10000 in 3: %+v", refunded, countEntries(rows, "refund", "booked"), rows)
	}
	if e := entryOf(t, s, txnIdentity(sale)); e.Refundable() != 0 || e.Refunded != 10000 {
		t.Fatalf("sale after full refund: refundable %d refunded %d", e.Refundable(), e.Refunded)
	}
}

// A refund of a sale older than channels.refund_window is 12 and books nothing; one within it is
// approved. The old sale is booked through the real ledger writer with its time two hours back.
func TestRefundAfterTheWindowIsRefused(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 4, yamlEdit: func(_ *stack, y string) string {
		return y + "channels:\n  refund_window: 1h\n"
	}})
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[1]
	card := cards.MustLookup("6226090000000014")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	old := terminalsim.NewPurchase(term, card, 3000, card.Currency, 1)
	oldKey := txnIdentity(old)
	res, err := s.node.Writer.Book(ctx, ledger.Booking{Key: oldKey, Kind: ledger.Purchase, Merchant: term.MID, Terminal: term.TID,
		Issuer: cards.BankA, Currency: card.Currency, Amount: 3000, STAN: fieldOf(old, 11), RRN: "600000000001",
		AuthCode: "OLD001", PANMasked: card.Masked(), At: time.Now().Add(-2 * time.Hour)})
	if err != nil || res.Status != ledger.StatusBooked {
		t.Fatalf("booking the old sale: %+v %v", res, err)
	}
	refund := terminalsim.NewRefund(term, card, old, 1000, 2)
	if rc := fieldOf(mustExchange(t, c, refund), 39); rc != txn.RCInvalidTxn {
		t.Fatalf("refund after the window: %s, want 12", rc)
	}
	if _, ok, err := ledger.EntryOf(ctx, s.node.Pool, txnIdentity(refund)); err != nil || ok {
		t.Fatalf("the refused refund was booked (%v)", err)
	}

	fresh := terminalsim.NewPurchase(term, card, 3000, card.Currency, 5)
	if rc := fieldOf(mustExchange(t, c, fresh), 39); rc != txn.RCApproved {
		t.Fatalf("sale: %s", rc)
	}
	inWindow := terminalsim.NewRefund(term, card, fresh, 1000, 6)
	if rc := fieldOf(mustExchange(t, c, inWindow), 39); rc != txn.RCApproved {
		t.Fatalf("refund within the window: %s", rc)
	}
	var status string
	if err := s.node.Pool.QueryRow(ctx, `SELECT status FROM journal_entry WHERE txn_key = $1`, txnIdentity(inWindow)).Scan(&status); err != nil ||
		status != "booked" {
		if err == pgx.ErrNoRows {
			t.Fatal("the refund within the window was not booked")
		}
		t.Fatalf("refund within the window: %q %v", status, err)
	}
}
