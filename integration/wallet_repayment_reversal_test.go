package integration

import (
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/saf"
)

// A Huabei repayment reversed (0400, then repeated 0401) or voided at the terminal: the ledger
// books the exact mirror, the card issuer gets its reversal, and the wallet gets a reversal advice
// (0420) naming the repayment advice it applied, through the store-and-forward queue, and puts back
// what the customer owed, once.
func TestWalletHuabeiRepaymentReversedAndVoidedGivesTheOwedBack(t *testing.T) {
	s, wallets := startWalletStack(t, &walletClock{})
	term := s.terminals[1]
	c := s.dial("iso87a", "iso87a", false)
	alipay := wallets["alipay"]
	stan := 500
	next := func() int { stan++; return stan }
	const customer = "2088000000000002" // owes 300000 on the credit line
	card := approvedCard(t, cards.BankA, "")
	owed := func() int64 { o, _ := alipay.Owed(customer); return o }
	cardRecord := func(req *iso8583.Message) issuersim.Record {
		t.Helper()
		for _, r := range s.issuers[cards.BankA].Transactions() {
			if r.Terminal == term.TID && r.MaskedPAN == card.Masked() && r.Amount == amountOfReq(req) && r.ProcessingCode == "500000" {
				return r
			}
		}
		t.Fatalf("the card issuer has no record of the repayment of %d", amountOfReq(req))
		return issuersim.Record{}
	}
	walletReversals := func(req *iso8583.Message) []saf.Record {
		var out []saf.Record
		for _, it := range queueItems(t, s) {
			if it.Issuer == "alipay" && it.Kind == saf.KindReversal && it.OriginalKey == txnIdentity(req) {
				out = append(out, it)
			}
		}
		return out
	}

	for _, tc := range []struct {
		name   string
		amount int64
		cancel func(rp *iso8583.Message) []*iso8583.Message // the terminal's cancellation and its repeats
	}{
		{"reversal", 40_000, func(rp *iso8583.Message) []*iso8583.Message {
			return []*iso8583.Message{terminalsim.NewReversal(rp, false), terminalsim.NewReversal(rp, true)}
		}},
		{"void", 25_000, func(rp *iso8583.Message) []*iso8583.Message {
			v := terminalsim.NewVoid(rp, next())
			return []*iso8583.Message{v, terminalsim.Repeat(v)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := owed()
			rp := terminalsim.NewHuabeiRepayment(term, card, customer, tc.amount, "156", next())
			if resp := mustExchange(t, c, rp); fieldOf(resp, 39) != "00" {
				t.Fatalf("repayment answered %s", fieldOf(resp, 39))
			}
			waitQueueEmpty(t, s)
			if o := owed(); o != before-tc.amount {
				t.Fatalf("owed %d after the repayment, want %d", o, before-tc.amount)
			}

			msgs := tc.cancel(rp)
			for i, m := range msgs {
				if resp := mustExchange(t, c, m); fieldOf(resp, 39) != "00" {
					t.Fatalf("%s (message %d) answered %s", tc.name, i, fieldOf(resp, 39))
				}
				waitQueueEmpty(t, s)
				if o := owed(); o != before {
					t.Errorf("owed %d after the %s (message %d), want %d: back to where it was, once", o, tc.name, i, before)
				}
			}

			// The ledger: the repayment and its exact mirror net to nothing.
			if net, _ := netPostings(t, s, txnIdentity(rp)); len(net) != 0 {
				t.Errorf("repayment and its %s do not net to zero: %v", tc.name, net)
			}
			if e := bookedEntries(t, s, txnIdentity(msgs[0])); len(e) != 1 {
				t.Errorf("%s journal: %+v, want one booked entry", tc.name, e)
			}
			// The card issuer reversed it once.
			if r := cardRecord(rp); r.ReversalsApplied != 1 {
				t.Errorf("card issuer record %+v: want the repayment reversed once", r)
			}
			// The wallet got one 0420 naming the 0220 it applied, delivered; it undid the repayment once.
			items := walletReversals(rp)
			if len(items) != 1 || items[0].MTI != "0420" || items[0].OrigMTI != "0220" || items[0].Status != saf.StatusDone {
				t.Errorf("store-and-forward items for the wallet: %+v; want one 0420 naming the 0220, done", items)
			}
			var undone int
			for _, r := range alipay.Records() {
				if r.Kind == "repayment" && r.Customer == customer && r.Amount == tc.amount && r.Cancelled {
					undone++
				}
			}
			if undone != 1 {
				t.Errorf("wallet-sim holds %d cancelled repayments of %d, want 1: %+v", undone, tc.amount, alipay.Records())
			}
		})
	}
}

func amountOfReq(m *iso8583.Message) int64 {
	var a int64
	for _, ch := range fieldOf(m, 4) {
		a = a*10 + int64(ch-'0')
	}
	return a
}
