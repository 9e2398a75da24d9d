package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/txn"
)

// One merchant takes CNY, JPY and KWD: each purchase is booked in its own currency with the fee
// rounded half-up at that currency's minor unit (CNY 0.01, JPY 1, KWD 0.001); a currency the merchant
// does not take is 12 and books nothing; cut-over pays the merchant per currency.
func TestPurchasesInCNYJPYAndKWDChargeFeesAndSettlePerCurrency(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 4, yamlEdit: func(_ *stack, y string) string {
		return strings.ReplaceAll(y, `currencies: ["156", "840"]`, `currencies: ["156", "392", "414"]`)
	}})
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[0] // its merchant's fee is 45 bp
	bp := s.feeBP(term.MID)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Amounts whose fee falls exactly on half a minor unit: half-up rounds it up.
	cases := []struct {
		card      cards.Card
		amount    int64
		fee       int64 // amount × 45 / 10000, half-up
		printed   string
		alpha     string
		currency  string
		minorUnit string
	}{
		{cards.MustLookup("6226090000000014"), 3000, 14, "30.00", "CNY", cards.CNY, "0.01"},  // 13.5 fen → 14
		{cards.MustLookup("6226093000000018"), 1000, 5, "1000", "JPY", cards.JPY, "1"},       // 4.5 yen → 5
		{cards.MustLookup("6250013000000015"), 5000, 23, "5.000", "KWD", cards.KWD, "0.001"}, // 22.5 fils → 23
	}
	for i, tc := range cases {
		if got := halfUpFee(tc.amount, bp); got != tc.fee {
			t.Fatalf("%s: the test's own fee %d, table says %d", tc.alpha, got, tc.fee)
		}
		req := terminalsim.NewPurchase(term, tc.card, tc.amount, tc.card.Currency, 1+4*i) // chip entry
		resp := mustExchange(t, c, req)
		r := terminalsim.NewReceipt(term, req, resp)
		if !r.Approved || r.Currency != tc.alpha || r.FormattedAmount() != tc.printed {
			t.Fatalf("%s purchase: %s, receipt %s %s", tc.alpha, fieldOf(resp, 39), r.Currency, r.FormattedAmount())
		}
		e := entryOf(t, s, txnIdentity(req))
		if e.Currency != tc.currency || e.Amount != tc.amount || e.Fee != tc.fee {
			t.Errorf("%s entry: currency %s amount %d fee %d, want %s %d %d", tc.alpha, e.Currency, e.Amount, e.Fee, tc.currency, tc.amount, tc.fee)
		}
		for acct := range netOfEntries(t, s, txnIdentity(req)) {
			if !strings.HasSuffix(acct, " "+tc.currency) {
				t.Errorf("%s purchase posts to %s", tc.alpha, acct)
			}
		}
	}

	// USD is not among the merchant's currencies now.
	usd := cards.MustLookup("4761730000000011")
	req := terminalsim.NewPurchase(term, usd, 1000, usd.Currency, 21)
	if rc := fieldOf(mustExchange(t, c, req), 39); rc != txn.RCInvalidTxn {
		t.Fatalf("USD purchase at a CNY/JPY/KWD merchant: %s, want 12", rc)
	}
	if _, ok, err := ledger.EntryOf(ctx, s.node.Pool, txnIdentity(req)); err != nil || ok {
		t.Fatalf("the refused USD purchase was booked (%v)", err)
	}
	// A refund in another currency than its sale's is refused too.
	jpySale := terminalsim.NewPurchase(term, cases[1].card, 2000, cases[1].card.Currency, 25)
	if rc := fieldOf(mustExchange(t, c, jpySale), 39); rc != txn.RCApproved {
		t.Fatalf("second JPY sale: %s", rc)
	}
	wrong := withField(t, terminalsim.NewRefund(term, cases[1].card, jpySale, 100, 26), 49, cards.KWD)
	if rc := fieldOf(mustExchange(t, c, wrong), 39); rc != txn.RCInvalidTxn {
		t.Fatalf("KWD refund of a JPY sale: %s, want 12", rc)
	}

	rep, err := ledger.Cutover(ctx, s.node.Pool, "manual", time.Now(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int64{ // currency → gross, fee
		cards.CNY: {3000, 14},
		cards.JPY: {1000 + 2000, 5 + halfUpFee(2000, bp)},
		cards.KWD: {5000, 23},
	}
	got := map[string]bool{}
	for _, p := range rep.Payouts {
		if p.Merchant != term.MID {
			continue
		}
		w, ok := want[p.Currency]
		if !ok {
			t.Errorf("payout in unexpected currency %s: %+v", p.Currency, p)
			continue
		}
		got[p.Currency] = true
		if p.Gross != w[0] || p.Fee != w[1] || p.Net != w[0]-w[1] {
			t.Errorf("%s payout: gross %d fee %d net %d, want %d %d %d", p.Currency, p.Gross, p.Fee, p.Net, w[0], w[1], w[0]-w[1])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("payouts in %v, want one per currency of %v: %+v", got, want, rep.Payouts)
	}
}
