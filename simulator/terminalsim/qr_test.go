package terminalsim

import (
	"testing"

	"github.com/poswitch/poswitch/simulator/cards"
)

func TestQRMessagesCarryTheWalletFields(t *testing.T) {
	term := DefaultTerminals(1)[0]
	p := NewQRPurchase(term, "281234567890123456", 8880, "156", 3, 42)
	for id, want := range map[int]string{2: "281234567890123456", 3: "000000", 22: EntryQR, 63: "03", 49: "156"} {
		if got := get(p, id); got != want {
			t.Errorf("QR purchase field %d = %q, want %q", id, got, want)
		}
	}
	if get(NewQRPurchase(term, "281234567890123456", 100, "156", 0, 43), 63) != "" {
		t.Error("a purchase without instalments carries field 63")
	}
	r := NewQRRefund(p, 1000, 44)
	if get(r, 2) != "" || get(r, 3) != ProcRefund || get(r, 90) != OriginalData(p) || get(r, 4) != "000000001000" {
		t.Errorf("QR refund: 2=%q 3=%q 90=%q 4=%q", get(r, 2), get(r, 3), get(r, 90), get(r, 4))
	}
	card := cards.Catalogue()[0]
	h := NewHuabeiRepayment(term, card, "2088000000000002", 50000, "", 45)
	if get(h, 48) != "HUABEI|2088000000000002" || get(h, 3) != ProcBillPayment {
		t.Errorf("repayment 48=%q 3=%q", get(h, 48), get(h, 3))
	}
}
