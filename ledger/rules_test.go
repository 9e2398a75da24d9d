package ledger

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestReversalBooksExactMirror(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	p := purchase("M1", "ISS1", 12345)
	pr := tl.book(t, p)
	rv := tl.book(t, on(Reversal, p, p.Amount))
	if rv.Status != StatusBooked || rv.Amount != p.Amount || rv.Fee != pr.Fee {
		t.Fatalf("reversal: %+v", rv)
	}
	for _, acct := range []string{IssuerReceivable("ISS1"), MerchantPayable("M1"), AccountFeeIncome} {
		if got := tl.balance(t, acct, "156"); got != 0 {
			t.Errorf("%s after purchase + reversal = %d, want 0", acct, got)
		}
	}
}

func TestSecondReversalBooksNothing(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	p := purchase("M1", "ISS1", 5000)
	tl.book(t, p)
	tl.book(t, on(Reversal, p, p.Amount))
	second := tl.book(t, on(Reversal, p, p.Amount))
	if second.Status != StatusNoop || !second.AlreadyCancelled || second.Duplicate {
		t.Fatalf("second reversal (new identity): %+v", second)
	}
	if got := tl.balance(t, IssuerReceivable("ISS1"), "156"); got != 0 {
		t.Errorf("issuer receivable %d after double reversal, want 0", got)
	}
}

func TestReversalOfUnknownTxnBooksNothingAndSaysSo(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ghost := purchase("M1", "ISS1", 5000) // never booked
	res := tl.book(t, on(Reversal, ghost, ghost.Amount))
	if res.Status != StatusNoop || !res.NotFound {
		t.Fatalf("reversal of unknown: %+v", res)
	}
	var n int
	if err := tl.owner.QueryRow(context.Background(), `SELECT count(*) FROM posting`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d postings after a reversal of an unknown transaction", n)
	}
}

func TestRefundsNeverExceedTheOriginal(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	p := purchase("M1", "ISS1", 10000)
	tl.book(t, p)
	steps := []struct {
		amount int64
		want   Status
	}{
		{4000, StatusBooked},
		{6001, StatusRefused}, // 6000 left
		{6000, StatusBooked},
		{1, StatusRefused},
	}
	for _, s := range steps {
		if res := tl.book(t, on(Refund, p, s.amount)); res.Status != s.want {
			t.Errorf("refund %d: %s (%s), want %s", s.amount, res.Status, res.Reason, s.want)
		}
	}
	// Merchant got 10000 − 60 and gave back 10000: it owes the fee (refunds keep it by default).
	if got := tl.balance(t, MerchantPayable("M1"), "156"); got != 60 {
		t.Errorf("merchant payable %d, want 60 (fee not returned)", got)
	}
}

func TestReversedRefundCanBeRefundedAgain(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	p := purchase("M1", "ISS1", 10000)
	tl.book(t, p)
	r := on(Refund, p, 10000)
	tl.book(t, r)
	tl.book(t, on(Reversal, r, 10000))
	if res := tl.book(t, on(Refund, p, 10000)); res.Status != StatusBooked {
		t.Fatalf("refund after the earlier refund was reversed: %+v", res)
	}
}

func TestRefundReturnsProportionalFeeWhenMerchantSaysSo(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	if err := UpsertMerchant(context.Background(), tl.app, MerchantSettings{ID: "M2", RefundsReturnFee: true}); err != nil {
		t.Fatal(err)
	}
	p := purchase("M2", "ISS1", 10001) // fee 60.006 → 60
	pr := tl.book(t, p)
	r1 := tl.book(t, on(Refund, p, 5000)) // 60 × 5000/10001 = 29.997 → 30
	r2 := tl.book(t, on(Refund, p, 5001)) // last refund returns the rest: 30
	if pr.Fee != 60 || r1.Fee != 30 || r2.Fee != 30 {
		t.Fatalf("fees: purchase %d, refunds %d + %d; want 60, 30 + 30", pr.Fee, r1.Fee, r2.Fee)
	}
	for _, acct := range []string{IssuerReceivable("ISS1"), MerchantPayable("M2"), AccountFeeIncome} {
		if got := tl.balance(t, acct, "156"); got != 0 {
			t.Errorf("%s after full refund with fee return = %d, want 0", acct, got)
		}
	}
}

func TestMerchantFeeOverrideAndCap(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	if err := UpsertMerchant(ctx, tl.app, MerchantSettings{ID: "M38", FeeBP: 38}); err != nil {
		t.Fatal(err)
	}
	if err := UpsertMerchant(ctx, tl.app, MerchantSettings{ID: "MCAP", FeeCap: 500}); err != nil {
		t.Fatal(err)
	}
	if err := UpsertMerchant(ctx, tl.app, MerchantSettings{ID: "MZERO", FeeBP: 0, FeeBPSet: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		merchant string
		amount   int64
		fee      int64
	}{
		{"M38", 100000, 380},
		{"MCAP", 1000000, 500},
		{"MZERO", 100000, 0},
		{"UNKNOWN", 100000, 600},
	} {
		if res := tl.book(t, purchase(c.merchant, "ISS1", c.amount)); res.Fee != c.fee {
			t.Errorf("%s purchase %d: fee %d, want %d", c.merchant, c.amount, res.Fee, c.fee)
		}
	}
}

func TestPreAuthHoldCompletionAndExpiry(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	pa := purchase("M1", "ISS1", 20000)
	pa.Kind = PreAuth
	if res := tl.book(t, pa); res.Status != StatusBooked {
		t.Fatalf("pre-auth: %+v", res)
	}
	if got := tl.balance(t, IssuerReceivable("ISS1"), "156"); got != 0 {
		t.Errorf("a hold moved money: issuer receivable %d", got)
	}
	if res := tl.book(t, on(Completion, pa, 20001)); res.Status != StatusRefused {
		t.Errorf("completion above the hold: %+v", res)
	}
	c := tl.book(t, on(Completion, pa, 15000))
	if c.Status != StatusBooked || c.Fee != 90 {
		t.Fatalf("completion: %+v", c)
	}
	if got := tl.balance(t, IssuerReceivable("ISS1"), "156"); got != 15000 {
		t.Errorf("issuer receivable after completion %d, want 15000", got)
	}
	if res := tl.book(t, on(HoldExpiry, pa, 0)); res.Status != StatusNoop || !res.AlreadyCancelled {
		t.Errorf("expiry of a completed hold: %+v", res)
	}
	var state string
	var released int64
	if err := tl.owner.QueryRow(context.Background(), `SELECT state, released FROM v_holds WHERE txn_key = $1`, pa.Key).Scan(&state, &released); err != nil {
		t.Fatal(err)
	}
	if state != "completion" || released != 5000 {
		t.Errorf("hold state %s released %d, want completion 5000", state, released)
	}

	pa2 := purchase("M1", "ISS1", 7000)
	pa2.Kind = PreAuth
	pa2.HoldExpiresAt = time.Now().Add(-time.Second)
	tl.book(t, pa2)
	if res := tl.book(t, on(Completion, pa2, 7000)); res.Status != StatusRefused {
		t.Errorf("completion of a lapsed hold: %+v", res)
	}
	if res := tl.book(t, on(HoldExpiry, pa2, 0)); res.Status != StatusBooked {
		t.Errorf("hold expiry: %+v", res)
	}
	pa3 := purchase("M1", "ISS1", 7000)
	pa3.Kind = PreAuth
	tl.book(t, pa3)
	if res := tl.book(t, on(Void, pa3, 0)); res.Status != StatusBooked || res.Amount != 7000 {
		t.Errorf("void of a hold: %+v", res)
	}
}

func TestVoidBillPaymentAndChargeback(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	p := purchase("M1", "ISS1", 3000)
	tl.book(t, p)
	if res := tl.book(t, on(Void, p, 3000)); res.Status != StatusBooked {
		t.Fatalf("void: %+v", res)
	}
	bp := purchase("BILLER", "ISS2", 50000)
	bp.Kind = BillPayment
	if res := tl.book(t, bp); res.Status != StatusBooked || res.Fee != 300 {
		t.Fatalf("bill payment: %+v", res)
	}
	cb := on(Chargeback, bp, 50000)
	cb.Merchant = ""
	if res := tl.book(t, cb); res.Status != StatusBooked {
		t.Fatalf("chargeback: %+v", res)
	}
	if res := tl.book(t, on(Refund, bp, 1)); res.Status != StatusRefused {
		t.Errorf("refund after full chargeback: %+v", res)
	}
	if got := tl.balance(t, IssuerReceivable("ISS2"), "156"); got != 0 {
		t.Errorf("issuer receivable after chargeback %d, want 0", got)
	}
	if got := tl.balance(t, MerchantPayable("BILLER"), "156"); got != 300 {
		t.Errorf("biller payable after chargeback %d, want 300 (owes the fee)", got)
	}
}

func TestSameIdentityIsBookedOnce(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	p := purchase("M1", "ISS1", 1000)
	first := tl.book(t, p)
	again := tl.book(t, p)
	if !again.Duplicate || again.EntryID != first.EntryID || again.Fee != first.Fee {
		t.Fatalf("retry: %+v, first %+v", again, first)
	}
	changed := p
	changed.Amount = 1001
	if _, err := tl.w.Book(context.Background(), changed); !errors.Is(err, ErrConflict) {
		t.Fatalf("same identity, different amount: err %v, want ErrConflict", err)
	}
	if got := tl.balance(t, IssuerReceivable("ISS1"), "156"); got != 1000 {
		t.Errorf("issuer receivable %d, want 1000", got)
	}
}

func TestConcurrentCopiesOfOneIdentityBookOnce(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	p := purchase("M1", "ISS1", 1000)
	const copies = 50
	results := make(chan Result, copies)
	for i := 0; i < copies; i++ {
		go func() {
			res, err := tl.w.Book(context.Background(), p)
			if err != nil {
				t.Error(err)
			}
			results <- res
		}()
	}
	dups := 0
	for i := 0; i < copies; i++ {
		if (<-results).Duplicate {
			dups++
		}
	}
	if dups != copies-1 {
		t.Errorf("%d duplicates among %d copies, want %d", dups, copies, copies-1)
	}
	if got := tl.balance(t, IssuerReceivable("ISS1"), "156"); got != 1000 {
		t.Errorf("issuer receivable %d, want 1000", got)
	}
}

func TestBookingsWithBadInputAreRefusedClearly(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	good := purchase("M1", "ISS1", 1000)
	cases := map[string]func(b *Booking){
		"no key":                  func(b *Booking) { b.Key = "" },
		"unknown currency":        func(b *Booking) { b.Currency = "999" },
		"negative amount":         func(b *Booking) { b.Amount = -1 },
		"13-digit amount":         func(b *Booking) { b.Amount = 1_000_000_000_000 },
		"clear PAN":               func(b *Booking) { b.PANMasked = "6228480000001234" },
		"refund without original": func(b *Booking) { b.Kind = Refund },
		"no kind":                 func(b *Booking) { b.Kind = 0 },
	}
	for name, mutate := range cases {
		b := good
		mutate(&b)
		if _, err := tl.w.Book(context.Background(), b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
}
