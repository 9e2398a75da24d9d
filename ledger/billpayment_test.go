package ledger

import (
	"context"
	"testing"
	"time"
)

// A Huabei repayment at a POS: the card issuer owes us A, we owe the wallet A less the biller's fee.
func TestWalletRepaymentIsOwedToTheWalletWithTheBillersFee(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	rp := purchase("", "ISS1", 100_001)
	rp.Kind, rp.Payee, rp.PayeeFeeBP = BillPayment, "alipay", 15
	res := tl.book(t, rp)
	// 100,001 × 15 / 10,000 = 150.0015 → 150 (half-up).
	if res.Status != StatusBooked || res.Fee != 150 {
		t.Fatalf("repayment: %+v, want booked with fee 150", res)
	}
	if dup := tl.book(t, rp); !dup.Duplicate {
		t.Errorf("repeat of the repayment: %+v, want a duplicate", dup)
	}
	for account, want := range map[string]int64{IssuerReceivable("ISS1"): 100_001, WalletPayable("alipay"): -(100_001 - 150),
		AccountFeeIncome: -150} {
		if got := tl.balance(t, account, "156"); got != want {
			t.Errorf("%s = %d, want %d", account, got, want)
		}
	}
	// The same identity to another wallet is a different transaction: a conflict, never booked.
	other := rp
	other.Payee = "wechat"
	if _, err := tl.w.Book(context.Background(), other); err == nil {
		t.Error("same identity with another payee was accepted")
	}
	// A reversal mirrors it exactly: the wallet is owed nothing any more.
	if res := tl.book(t, on(Reversal, rp, 0)); res.Status != StatusBooked {
		t.Fatalf("reversal: %+v", res)
	}
	if got := tl.balance(t, WalletPayable("alipay"), "156"); got != 0 {
		t.Errorf("wallet payable after the reversal %d, want 0", got)
	}
	// Cut-over closes a cycle holding a wallet repayment: the acceptor is paid nothing for it.
	rp2 := purchase("", "ISS1", 5_000)
	rp2.Kind, rp2.Payee = BillPayment, "alipay"
	tl.book(t, rp2)
	rep, err := Cutover(context.Background(), tl.app, "manual", time.Now(), nil)
	if err != nil {
		t.Fatalf("cut-over with a wallet repayment in the cycle: %v", err)
	}
	for _, p := range rep.Payouts {
		if p.Merchant == "" {
			t.Errorf("payout to no merchant: %+v", p)
		}
	}
}

func TestPayeeIsForBillPaymentsOnly(t *testing.T) {
	b := purchase("M1", "ISS1", 100)
	b.Payee = "alipay"
	if err := b.validate(); err == nil {
		t.Error("a purchase with a payee was accepted")
	}
	b.Kind, b.PayeeFeeBP = BillPayment, 10001
	if err := b.validate(); err == nil {
		t.Error("a payee fee above 10000 bp was accepted")
	}
}
