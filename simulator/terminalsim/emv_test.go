package terminalsim

import (
	"testing"

	"github.com/poswitch/poswitch/simulator/cards"
)

func TestPurchasesTapOnlyWithinTheTerminalsNoCVMLimit(t *testing.T) {
	chipCNY := cards.MustLookup("6226090000000014")
	chipUSD := cards.MustLookup("4761730000000011")
	stripe := cards.MustLookup("4761730000000029")
	for _, c := range []struct {
		name     string
		card     cards.Card
		stan     int
		amount   int64
		currency string
		want     string
	}{
		{"every fourth CNY purchase within the limit is a tap", chipCNY, 3, 100000, "156", EntryContactless},
		{"other CNY purchases are inserted", chipCNY, 4, 2500, "156", EntryChip},
		{"a CNY purchase above the limit is inserted", chipCNY, 3, 100001, "156", EntryChip},
		{"a currency without a limit is never tapped", chipUSD, 3, 100, "840", EntryChip},
		{"a magstripe-only card is swiped", stripe, 3, 100, "840", EntrySwipe},
	} {
		if got := purchaseEntryMode(c.card, c.stan, c.amount, c.currency); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestUnkeyedChipDataHasEveryObjectButTheCryptogram(t *testing.T) {
	m := NewPurchase(DefaultTerminals(1)[0], cards.MustLookup("6226090000000014"), 2500, "", 3)
	b, err := m.GetBytes(55)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := cards.DecodeTLV(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cards.FindTLV(objs, cards.TagARQC); ok {
		t.Fatal("unkeyed chip data carries a cryptogram")
	}
	if _, err := cards.CryptogramData(objs); err != nil {
		t.Fatalf("the cryptogram data is incomplete: %v", err)
	}
	if cvm, _ := cards.FindTLV(objs, cards.TagCVMResults); len(cvm) != 3 || cvm[0] != 0x1F {
		t.Fatalf("9F34 = %x, want no CVM for a tap within the limit", cvm)
	}
	if psn, _ := m.GetString(23); psn != "001" {
		t.Fatalf("field 23 = %q", psn)
	}
}
