package ledger

import (
	"context"
	"testing"
)

// EntryOf tells the wallet a repayment is owed to (what a reversal must tell that wallet), and no
// payee for a purchase or a bill payment to a merchant biller.
func TestEntryOfTellsTheWalletARepaymentIsOwedTo(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	rp := purchase("", "ISS1", 40_000)
	rp.Kind, rp.Payee, rp.PayeeFeeBP = BillPayment, "alipay", 15
	sale := purchase("M1", "ISS1", 1_000)
	bill := purchase("M1", "ISS1", 2_000)
	bill.Kind = BillPayment
	for _, b := range []Booking{rp, sale, bill} {
		if res := tl.book(t, b); res.Status != StatusBooked {
			t.Fatalf("%s: %+v", b.Key, res)
		}
	}
	for _, c := range []struct {
		key, payee string
	}{{rp.Key, "alipay"}, {sale.Key, ""}, {bill.Key, ""}} {
		e, ok, err := EntryOf(context.Background(), tl.app, c.key)
		if err != nil || !ok || e.Payee != c.payee {
			t.Errorf("entry %s: payee %q (%v %v), want %q", c.key, e.Payee, ok, err, c.payee)
		}
	}
}
