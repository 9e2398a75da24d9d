package ledger

import "testing"

func TestPurchaseBooksIssuerMerchantAndFee(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	cases := []struct {
		amount, fee int64
	}{
		{10000, 60},                      // 100.00 CNY → 0.60
		{83, 0},                          // 0.498 rounds down
		{84, 1},                          // 0.504 rounds up
		{250, 2},                         // 1.5 → 2 (half-up, not half-even)
		{1, 0},                           // 0.006
		{999_999_999_999, 6_000_000_000}, // 5 999 999 999.994 rounds up
	}
	var wantFees, wantGross int64
	for _, c := range cases {
		want := c.fee
		res := tl.book(t, purchase("M1", "ISS1", c.amount))
		if res.Status != StatusBooked || res.Fee != want {
			t.Errorf("purchase of %d: status %s fee %d, want booked fee %d", c.amount, res.Status, res.Fee, want)
		}
		wantFees += want
		wantGross += c.amount
	}
	if got := tl.balance(t, AccountFeeIncome, "156"); got != -wantFees {
		t.Errorf("fee_income balance %d, want %d", got, -wantFees)
	}
	if got := tl.balance(t, IssuerReceivable("ISS1"), "156"); got != wantGross {
		t.Errorf("issuer receivable %d, want %d", got, wantGross)
	}
	if got := tl.balance(t, MerchantPayable("M1"), "156"); got != -(wantGross - wantFees) {
		t.Errorf("merchant payable %d, want %d", got, -(wantGross - wantFees))
	}
}
