package pipeline

import (
	"context"
	"strings"

	"github.com/poswitch/poswitch/switch/txn"
)

// CVM applies the acquirer's cardholder-verification and card-reading rules before a request goes
// to the issuer (docs/channels.md, CVM table). By field 22's first two digits:
//
//   - 07 contactless chip, 91 contactless magstripe: within the currency's no-CVM limit no PIN is
//     needed; above it (or in a currency without a limit) a request without a PIN block is 1A, a
//     soft decline: the terminal asks for the chip (or the PIN) and tries again.
//   - 90 magstripe: a card whose service code says it has a chip (first digit 2 or 6) is 1A (use
//     the chip); a service code whose third digit asks for a PIN (0, 3, 5) without a PIN block is 1A.
//   - 80 fallback (the chip could not be read, the stripe was): allowed only for a chip service
//     code, else 12; the PIN digit applies as on a swipe. The entry mode goes on to the issuer, who
//     sees the fallback.
//   - 05 contact chip and every other entry mode: the card's own CVM list decided; nothing here.
//
// The service code is read from track 2 and never logged or kept. A swipe or fallback without track
// 2 is 30: the switch cannot tell what the card allows.
type CVM struct {
	// NoCVMLimits: contactless amounts up to and including the limit need no PIN; ISO 4217 numeric
	// currency → minor units (config channels.no_cvm_limits).
	NoCVMLimits map[string]int64
}

func (CVM) Name() string { return "cvm" }

// cvmTypes are the requests a cardholder pays or asks by with the card present.
var cvmTypes = map[txn.Type]bool{txn.TypePurchase: true, txn.TypePreAuth: true, txn.TypeBillPayment: true,
	txn.TypeBalanceInquiry: true}

func (c CVM) Run(_ context.Context, t *txn.Transaction) {
	if !cvmTypes[t.Type] || len(t.EntryMode) < 2 {
		return
	}
	pin := len(t.PINBlock) > 0
	switch t.EntryMode[:2] {
	case "07", "91":
		if pin {
			return
		}
		if limit, ok := c.NoCVMLimits[t.Currency]; ok && t.Amount <= limit {
			return
		}
		t.End(txn.RCInsertCard, "cvm: contactless above the no-CVM limit without a PIN")
	case "90", "80":
		fallback := t.EntryMode[:2] == "80"
		sc, ok := serviceCode(t.Track2)
		if !ok {
			t.End(txn.RCFormatError, "cvm: stripe read without track 2 service code")
			return
		}
		chip := sc[0] == '2' || sc[0] == '6'
		switch {
		case !fallback && chip:
			t.End(txn.RCInsertCard, "cvm: chip card swiped, the chip must be used")
		case fallback && !chip:
			t.End(txn.RCInvalidTxn, "cvm: fallback for a card without a chip")
		case !pin && pinRequired(sc[2]):
			t.End(txn.RCInsertCard, "cvm: service code requires a PIN and none was entered")
		}
	}
}

// pinRequired is the service code's third digit (ISO/IEC 7813) when it asks for a PIN: 0 (no
// restrictions, PIN required), 3 (ATM only, PIN required), 5 (goods and services only, PIN required).
func pinRequired(d byte) bool { return d == '0' || d == '3' || d == '5' }

// serviceCode is the three digits after the expiry in track 2 ("PAN=YYMMSSS…" or with 'D').
func serviceCode(track2 string) (string, bool) {
	i := strings.IndexAny(track2, "=D")
	if i < 0 || len(track2) < i+8 {
		return "", false
	}
	sc := track2[i+5 : i+8]
	for j := range 3 {
		if sc[j] < '0' || sc[j] > '9' {
			return "", false
		}
	}
	return sc, true
}
