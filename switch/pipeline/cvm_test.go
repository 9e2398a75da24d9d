package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/switch/txn"
)

func TestCVMAppliesContactlessLimitsAndServiceCodes(t *testing.T) {
	step := CVM{NoCVMLimits: map[string]int64{"156": 100000}}
	pinBlock := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	track := func(sc string) string { return "6226090000000014=3112" + sc + "0000" }
	cases := []struct {
		name     string
		typ      txn.Type
		entry    string
		currency string
		amount   int64
		pin      []byte
		track2   string
		want     string // "" goes on
	}{
		// Contactless: the no-CVM limit of the currency, inclusive.
		{name: "tap at the no-CVM limit goes on without PIN", entry: "071", currency: "156", amount: 100000},
		{name: "tap below the limit goes on without PIN", entry: "071", currency: "156", amount: 1},
		{name: "tap above the limit without PIN is 1A", entry: "071", currency: "156", amount: 100001, want: txn.RCInsertCard},
		{name: "tap above the limit with PIN goes on", entry: "071", currency: "156", amount: 100001, pin: pinBlock},
		{name: "tap in a currency without a limit needs a PIN for any amount", entry: "071", currency: "840", amount: 1, want: txn.RCInsertCard},
		{name: "tap in a currency without a limit with PIN goes on", entry: "071", currency: "840", amount: 1, pin: pinBlock},
		{name: "contactless magstripe above the limit is 1A", entry: "911", currency: "156", amount: 200000, want: txn.RCInsertCard},
		{name: "pre-authorisation tap above the limit is 1A", typ: txn.TypePreAuth, entry: "071", currency: "156", amount: 200000, want: txn.RCInsertCard},
		// Contact chip: the card's CVM list decided.
		{name: "chip without PIN goes on", entry: "051", currency: "840", amount: 999999},
		// Magstripe: the service code.
		{name: "chip card swiped is 1A", entry: "901", currency: "156", amount: 100, track2: track("201"), want: txn.RCInsertCard},
		{name: "national chip card swiped is 1A", entry: "901", currency: "156", amount: 100, track2: track("601"), want: txn.RCInsertCard},
		{name: "magstripe-only card swiped goes on", entry: "901", currency: "156", amount: 100, track2: track("101")},
		{name: "magstripe card asking for PIN without PIN is 1A", entry: "901", currency: "156", amount: 100, track2: track("120"), want: txn.RCInsertCard},
		{name: "magstripe card asking for PIN with PIN goes on", entry: "901", currency: "156", amount: 100, track2: track("120"), pin: pinBlock},
		{name: "service code digit 3 without PIN is 1A", entry: "901", currency: "156", amount: 100, track2: track("103"), want: txn.RCInsertCard},
		{name: "service code digit 5 without PIN is 1A", entry: "901", currency: "156", amount: 100, track2: track("105"), want: txn.RCInsertCard},
		{name: "service code digit 6 (prompt if PIN pad) without PIN goes on", entry: "901", currency: "156", amount: 100, track2: track("106")},
		{name: "track 2 with D separator is read", entry: "901", currency: "156", amount: 100, track2: "6226090000000014D3112201", want: txn.RCInsertCard},
		{name: "swipe without track 2 is 30", entry: "901", currency: "156", amount: 100, want: txn.RCFormatError},
		{name: "swipe with a cut track 2 is 30", entry: "901", currency: "156", amount: 100, track2: "6226090000000014=31122", want: txn.RCFormatError},
		// Fallback.
		{name: "fallback of a chip card goes on", entry: "801", currency: "156", amount: 100, track2: track("201")},
		{name: "fallback of a magstripe-only card is 12", entry: "801", currency: "156", amount: 100, track2: track("101"), want: txn.RCInvalidTxn},
		{name: "fallback of a chip card asking for PIN without PIN is 1A", entry: "801", currency: "156", amount: 100, track2: track("220"), want: txn.RCInsertCard},
		// Out of scope.
		{name: "refund tap above the limit goes on", typ: txn.TypeRefund, entry: "071", currency: "156", amount: 200000},
		{name: "reversal of a swipe goes on", typ: txn.TypeReversal, entry: "901", currency: "156", amount: 100},
		{name: "QR payment code goes on", entry: "031", currency: "156", amount: 200000},
		{name: "no entry mode goes on", entry: "", currency: "156", amount: 200000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			typ := c.typ
			if typ == txn.TypeUnknown {
				typ = txn.TypePurchase
			}
			tx := &txn.Transaction{MTI: "0200", Type: typ, EntryMode: c.entry, Currency: c.currency, Amount: c.amount,
				PINBlock: c.pin, Track2: c.track2, PAN: "6226090000000014"}
			step.Run(context.Background(), tx)
			if tx.Response != c.want || tx.Ended() != (c.want != "") {
				t.Fatalf("response %q (ended %v), want %q", tx.Response, tx.Ended(), c.want)
			}
			if tx.Ended() && containsAny(tx.Reason, "201", "101", "120", "=") {
				t.Fatalf("reason %q names card data", tx.Reason)
			}
		})
	}
}

func TestCVMWithoutLimitsNeedsPINForEveryTap(t *testing.T) {
	tx := &txn.Transaction{Type: txn.TypePurchase, EntryMode: "071", Currency: "156", Amount: 1}
	CVM{}.Run(context.Background(), tx)
	if tx.Response != txn.RCInsertCard {
		t.Fatalf("response %q, want 1A", tx.Response)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
