package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/switch/limits"
	"github.com/poswitch/poswitch/switch/txn"
)

func limitPolicy() *limits.Policy {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return &limits.Policy{
		Location: loc, MaxCardsPerDay: 1000,
		Merchants: map[string]limits.Subject{
			"M1": {Rules: map[string]limits.Rule{"156": {MaxAmount: 50000, DailyAmount: 60000}},
				BlockedMCCs: map[string]bool{"7995": true}},
		},
		Terminals: map[string]limits.Subject{
			"T1": {Rules: map[string]limits.Rule{"156": {DailyCount: 2}}, BlockedMCCs: map[string]bool{"6051": true}},
		},
		Cards: map[string]limits.Rule{"156": {DailyCount: 3}},
	}
}

func newLimitStep(t *testing.T) (*Limits, *hsm.HSM) {
	t.Helper()
	l, err := limits.New(limits.Config{Policy: limitPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	h := hsm.NewDevelopment()
	return NewLimits(l, h.PANDigest), h
}

func limitedPurchase(amount int64) *txn.Transaction {
	return &txn.Transaction{MTI: "0200", Type: txn.TypePurchase, PAN: "6221260000000003", Amount: amount,
		Currency: "156", TerminalID: "T1", MerchantID: "M1", MCC: "5411", STAN: "000001", Received: time.Now()}
}

// approve runs the step and, if it passed, finishes the transaction as the issuer and the ledger
// would have: approved and booked.
func approve(s *Limits, t *txn.Transaction) {
	s.Run(context.Background(), t)
	if !t.Ended() {
		t.Response = txn.RCApproved
	}
	s.Done(t)
}

func TestLimitStepAnswersEachLimitWithItsCode(t *testing.T) {
	cases := []struct {
		name  string
		prior []int64 // approved purchases first
		edit  func(*txn.Transaction)
		want  string
	}{
		{"within limits passes", nil, func(*txn.Transaction) {}, ""},
		{"category the merchant may not take is 57", nil, func(t *txn.Transaction) { t.MCC = "7995" }, txn.RCNotPermittedCard},
		{"category the terminal may not take is 58", nil, func(t *txn.Transaction) { t.MCC = "6051" }, txn.RCNotPermittedTerm},
		{"above the single maximum is 61", nil, func(t *txn.Transaction) { t.Amount = 50001 }, txn.RCExceedsAmount},
		{"past the daily amount is 61", []int64{40000}, func(t *txn.Transaction) { t.Amount = 20001 }, txn.RCExceedsAmount},
		{"past the daily count is 65", []int64{1, 1}, func(*txn.Transaction) {}, txn.RCExceedsCount},
		{"pre-authorization counts", []int64{1, 1}, func(t *txn.Transaction) { t.Type = txn.TypePreAuth }, txn.RCExceedsCount},
		{"bill payment counts", []int64{1, 1}, func(t *txn.Transaction) { t.Type = txn.TypeBillPayment }, txn.RCExceedsCount},
		{"refund is not limited", []int64{1, 1}, func(t *txn.Transaction) { t.Type, t.Amount = txn.TypeRefund, 90000 }, ""},
		{"reversal is not limited", []int64{1, 1}, func(t *txn.Transaction) { t.Type, t.Amount = txn.TypeReversal, 90000 }, ""},
		{"balance inquiry is not limited", []int64{1, 1}, func(t *txn.Transaction) { t.Type, t.MCC = txn.TypeBalanceInquiry, "7995" }, ""},
		{"other currency has no limits here", []int64{1, 1}, func(t *txn.Transaction) { t.Currency, t.Amount = "840", 90000 }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newLimitStep(t)
			for _, a := range c.prior {
				p := limitedPurchase(a)
				approve(s, p)
				if p.Response != txn.RCApproved {
					t.Fatalf("prior purchase of %d answered %s (%s)", a, p.Response, p.Reason)
				}
			}
			tx := limitedPurchase(1000)
			c.edit(tx)
			s.Run(context.Background(), tx)
			if tx.Response != c.want || tx.Ended() != (c.want != "") {
				t.Fatalf("response %q (%s) ended %v, want %q", tx.Response, tx.Reason, tx.Ended(), c.want)
			}
			s.Done(tx)
			if s.Held() != 0 {
				t.Errorf("%d reservations held after Done", s.Held())
			}
		})
	}
}

func TestLimitStepKeepsApprovalsAndReleasesEveryOtherOutcome(t *testing.T) {
	cases := []struct {
		name      string
		finish    func(*txn.Transaction)
		wantCount int64
	}{
		{"issuer approval is kept", func(t *txn.Transaction) { t.Response = txn.RCApproved }, 1},
		{"issuer decline is released", func(t *txn.Transaction) { t.Response = txn.RCInsufficientFunds }, 0},
		{"issuer unavailable is released", func(t *txn.Transaction) { t.End(txn.RCIssuerUnavailable, "issuer link down") }, 0},
		{"approval that failed to book is released", func(t *txn.Transaction) { t.End(txn.RCSystemError, "booking failed") }, 0},
		{"duplicate of an approval already counted is released", func(t *txn.Transaction) {
			t.Response, t.Duplicate = txn.RCApproved, true
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newLimitStep(t)
			tx := limitedPurchase(1000)
			s.Run(context.Background(), tx)
			if tx.Ended() {
				t.Fatalf("declined: %s", tx.Reason)
			}
			if got := s.Limiter.TerminalUsage("T1", "156").Count; got != 1 {
				t.Fatalf("reserved count %d, want 1 while in flight", got)
			}
			c.finish(tx)
			s.Done(tx)
			if got := s.Limiter.TerminalUsage("T1", "156"); got.Count != c.wantCount || got.Amount != 1000*c.wantCount {
				t.Fatalf("usage after Done %+v, want %d transaction(s)", got, c.wantCount)
			}
			if s.Held() != 0 {
				t.Errorf("%d reservations held after Done", s.Held())
			}
		})
	}
}

func TestLimitStepKnowsCardsOnlyByTheHSMDigest(t *testing.T) {
	s, h := newLimitStep(t)
	const pan = "6221260000000003"
	// The same card at three terminals of no limits of their own: the card's daily count of 3 holds.
	for i, term := range []string{"T2", "T3", "T4", "T5"} {
		tx := limitedPurchase(100)
		tx.TerminalID = term
		approve(s, tx)
		want := txn.RCApproved
		if i == 3 {
			want = txn.RCExceedsCount
		}
		if tx.Response != want {
			t.Fatalf("purchase %d at %s answered %s (%s), want %s", i, term, tx.Response, tx.Reason, want)
		}
	}
	if got := s.Limiter.CardUsage(h.PANDigest(pan), "156").Count; got != 3 {
		t.Errorf("usage under the HSM's digest %d, want 3", got)
	}
	if got := s.Limiter.CardUsage([]byte(pan), "156").Count; got != 0 {
		t.Errorf("the limiter knows the card by its clear number")
	}
	other := limitedPurchase(100)
	other.PAN, other.TerminalID = "6221260000000011", "T6"
	approve(s, other)
	if other.Response != txn.RCApproved {
		t.Errorf("another card declined: %s (%s)", other.Response, other.Reason)
	}
}
