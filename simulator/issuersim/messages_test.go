package issuersim_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/specs"
)

// What a switch's issuer link puts in field 32 and field 41 of the messages below.
const (
	linkAcquirer = "12345678"
	linkTerminal = "TERM0042"
)

// linkMessage builds an issuer-link message as the switch's link sends it.
func linkMessage(t *testing.T, mti string, fields map[int]string) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(specs.IssuerLink)
	m.MTI(mti)
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			t.Fatalf("field %d %q: %v", id, v, err)
		}
	}
	return m
}

func purchaseFields(card cards.Card, proc string, amount int64, stan int) map[int]string {
	return map[int]string{
		2: card.PAN, 3: proc, 4: fmt.Sprintf("%012d", amount), 7: time.Now().UTC().Format("0102150405"),
		11: fmt.Sprintf("%06d", stan), 14: card.Expiry, 32: linkAcquirer, 41: linkTerminal, 42: shop.MID,
		49: card.Currency,
	}
}

// originalData is field 90 naming m: MTI, STAN, transmission time, acquirer (right-justified,
// zero-filled to 11) and forwarding institution.
func originalData(m *iso8583.Message) string {
	mti, _ := m.GetMTI()
	acq := field(m, 32)
	return mti + field(m, 11) + field(m, 7) + strings.Repeat("0", 11-len(acq)) + acq + "00000000000"
}

// namingFields are the fields of a message that names orig in field 90 (reversal, void, completion).
func namingFields(orig *iso8583.Message, stan int) map[int]string {
	f := map[int]string{7: time.Now().UTC().Format("0102150405"), 11: fmt.Sprintf("%06d", stan), 90: originalData(orig)}
	for _, id := range []int{2, 3, 4, 32, 41, 42, 49} {
		f[id] = field(orig, id)
	}
	return f
}

func reversalFields(orig *iso8583.Message, stan int) map[int]string { return namingFields(orig, stan) }

func with(f map[int]string, id int, v string) map[int]string { f[id] = v; return f }

// balances returns the ledger and available balance of a card's account.
func balances(t *testing.T, srv *issuersim.Server, pan string) (int64, int64) {
	t.Helper()
	l, ok1 := srv.Balance(pan)
	a, ok2 := srv.Available(pan)
	if !ok1 || !ok2 {
		t.Fatalf("no account for %s", cards.MaskPAN(pan))
	}
	return l, a
}

func TestEachTransactionTypeMovesTheAccountAsItShould(t *testing.T) {
	card := cards.MustLookup("4761730000000011")
	const amount = 2500
	for _, tc := range []struct {
		name, mti, proc, code string
		ledgerMove, availMove int64
	}{
		{"purchase debits", "0200", "000000", "00", -amount, -amount},
		{"cash debits", "0200", "010000", "00", -amount, -amount},
		{"bill payment 50 debits", "0200", "500000", "00", -amount, -amount},
		{"bill payment 40 debits", "0200", "401000", "00", -amount, -amount},
		{"refund credits", "0200", "200000", "00", amount, amount},
		{"pre-authorisation holds without debiting", "0100", "000000", "00", 0, -amount},
		{"balance inquiry moves nothing", "0200", "310000", "00", 0, 0},
		{"refund as an authorisation is invalid", "0100", "200000", "12", 0, 0},
		{"void as an authorisation is invalid", "0100", "020000", "12", 0, 0},
		{"unknown processing code is invalid", "0200", "990000", "12", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, issuersim.Config{})
			resp := send(t, c, linkMessage(t, tc.mti, purchaseFields(card, tc.proc, amount, 1)))
			wantMTI := tc.mti[:2] + "10"
			if mti, _ := resp.GetMTI(); mti != wantMTI || field(resp, 39) != tc.code {
				t.Fatalf("answered %s %s, want %s %s", mti, field(resp, 39), wantMTI, tc.code)
			}
			if (tc.code == "00") != (len(field(resp, 38)) == 6) || field(resp, 37) == "" {
				t.Fatalf("auth code %q RRN %q for %s", field(resp, 38), field(resp, 37), tc.code)
			}
			l, a := balances(t, srv, card.PAN)
			if l-card.Balance != tc.ledgerMove || a-card.Balance != tc.availMove {
				t.Fatalf("ledger moved %d available %d, want %d and %d", l-card.Balance, a-card.Balance, tc.ledgerMove, tc.availMove)
			}
			recs := srv.Transactions()
			if len(recs) != 1 || recs[0].MTI != tc.mti || recs[0].ProcessingCode != tc.proc || recs[0].Response != tc.code ||
				recs[0].Applied != (tc.ledgerMove != 0 || tc.availMove != 0) || recs[0].Acquirer != linkAcquirer ||
				recs[0].Terminal != linkTerminal || recs[0].Amount != amount {
				t.Fatalf("records %+v", recs)
			}
		})
	}
}

func TestPreAuthorisationAboveTheAvailableBalanceIsDeclined(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	card := cards.MustLookup("4761730000000011")
	// Holds of 4,000.00 each (under the 5,000.00 limit) until the 1,000,000.00 balance is held.
	held := int64(0)
	for stan := 1; ; stan++ {
		code := field(send(t, c, linkMessage(t, "0100", purchaseFields(card, "000000", 400_000, stan))), 39)
		if code == "51" {
			break
		}
		if code != "00" || stan > 300 {
			t.Fatalf("hold %d answered %s", stan, code)
		}
		held += 400_000
	}
	l, a := balances(t, srv, card.PAN)
	if l != card.Balance || a != card.Balance-held || a >= 400_000 {
		t.Fatalf("ledger %d available %d after holding %d", l, a, held)
	}
}

func TestCompletionPostsTheCompletedAmountAndReleasesTheHoldOnce(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	card := cards.MustLookup("4761730000000011")
	preauth := linkMessage(t, "0100", purchaseFields(card, "000000", 10_000, 1))
	if code := field(send(t, c, preauth), 39); code != "00" {
		t.Fatalf("pre-authorisation answered %s", code)
	}
	for i, tc := range []struct {
		name, mti string
		amount    int64
	}{
		{"completion for less than the hold", "0220", 8_000},
		{"repeat with a new link STAN", "0221", 8_000},
		{"repeat with a different amount", "0221", 9_000},
	} {
		resp := send(t, c, linkMessage(t, tc.mti, with(namingFields(preauth, 10+i), 4, fmt.Sprintf("%012d", tc.amount))))
		if mti, _ := resp.GetMTI(); mti != "0230" || field(resp, 39) != "00" {
			t.Fatalf("%s answered %s %s", tc.name, mti, field(resp, 39))
		}
		if l, a := balances(t, srv, card.PAN); l != card.Balance-8_000 || a != card.Balance-8_000 {
			t.Fatalf("after %s: ledger %d available %d, want both %d", tc.name, l, a, card.Balance-8_000)
		}
	}
	// A reversal of the completed pre-authorisation finds no hold left to release.
	if code := field(send(t, c, linkMessage(t, "0400", reversalFields(preauth, 20))), 39); code != "00" {
		t.Fatalf("reversal answered %s", code)
	}
	if l, _ := balances(t, srv, card.PAN); l != card.Balance-8_000 {
		t.Fatalf("ledger %d after reversing the completed pre-authorisation", l)
	}
	advices, txns := srv.Advices(), srv.Transactions()
	if len(advices) != 1 || !advices[0].Completes || advices[0].Copies != 3 || advices[0].Amount != 8_000 ||
		advices[0].Original != originalData(preauth) {
		t.Fatalf("advices %+v", advices)
	}
	if len(txns) != 1 || !txns[0].Completed || txns[0].ReversalsNamed != 1 || txns[0].ReversalsApplied != 0 {
		t.Fatalf("transactions %+v", txns)
	}
}

func TestVoidCancelsItsOriginalOnce(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	card := cards.MustLookup("5413330000000019")
	other := cards.MustLookup("4761730000000011")
	purchase := linkMessage(t, "0200", purchaseFields(card, "000000", 1_200, 1))
	void := func(stan int) *iso8583.Message {
		return linkMessage(t, "0200", with(namingFields(purchase, stan), 3, "020000"))
	}
	firstVoid := void(3)
	for _, step := range []struct {
		name string
		msg  *iso8583.Message
		code string
		move int64 // ledger balance move from the start
	}{
		{"purchase", purchase, "00", -1_200},
		{"void of another card's purchase", linkMessage(t, "0200", with(with(namingFields(purchase, 2), 3, "020000"), 2, other.PAN)), "12", -1_200},
		{"void", firstVoid, "00", 0},
		{"void retransmitted", firstVoid, "00", 0},
		{"second void", void(4), "00", 0},
		{"reversal of the voided purchase", linkMessage(t, "0420", reversalFields(purchase, 5)), "00", 0},
		{"reversal of the void puts the purchase back", linkMessage(t, "0400", reversalFields(firstVoid, 6)), "00", -1_200},
		{"void of a purchase never seen", linkMessage(t, "0200", with(with(namingFields(purchase, 7), 3, "020000"), 90,
			"0200999999"+field(purchase, 7)+"000"+linkAcquirer+"00000000000")), "25", -1_200},
		{"void without field 90", linkMessage(t, "0200", purchaseFields(card, "020000", 1_200, 8)), "30", -1_200},
	} {
		if code := field(send(t, c, step.msg), 39); code != step.code {
			t.Fatalf("%s answered %s, want %s", step.name, code, step.code)
		}
		if l, _ := balances(t, srv, card.PAN); l-card.Balance != step.move {
			t.Fatalf("after %s: ledger moved %d, want %d", step.name, l-card.Balance, step.move)
		}
	}
	recs := srv.Transactions()
	if recs[0].Voided || recs[0].ReversalsNamed != 1 || recs[0].ReversalsApplied != 0 {
		t.Fatalf("purchase record %+v", recs[0])
	}
	if v := recs[2]; v.ProcessingCode != "020000" || !v.Applied || v.Copies != 2 || v.ReversalsApplied != 1 {
		t.Fatalf("void record %+v", v)
	}
}

func TestBalanceInquiryAnswersLedgerAndAvailableBalancesInField54(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	card := cards.MustLookup("6226090000000014")
	if code := field(send(t, c, linkMessage(t, "0100", purchaseFields(card, "000000", 5_000, 1))), 39); code != "00" {
		t.Fatalf("pre-authorisation answered %s", code)
	}
	resp := send(t, c, linkMessage(t, "0200", purchaseFields(card, "311000", 0, 2)))
	want := fmt.Sprintf("1001156C%012d1002156C%012d", card.Balance, card.Balance-5_000)
	if field(resp, 39) != "00" || field(resp, 54) != want {
		t.Fatalf("answered %s with 54 %q, want %q", field(resp, 39), field(resp, 54), want)
	}
	if l, _ := srv.Balance(card.PAN); l != card.Balance {
		t.Fatalf("inquiry moved the balance to %d", l)
	}
}

func TestAdviceIsPostedOnceWhateverTheRepeats(t *testing.T) {
	// The small-balance card: an advice is posted even beyond the balance, since the acquirer approved it.
	card := cards.MustLookup("4761730000000037")
	const amount = 5_000
	for _, tc := range []struct {
		name, mti, repeat, answer string
		ledgerMove, availMove     int64
	}{
		{"financial advice debits", "0220", "0221", "0230", -amount, -amount},
		{"authorisation advice holds", "0120", "0121", "0130", 0, -amount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, issuersim.Config{})
			for i, mti := range []string{tc.mti, tc.repeat, tc.repeat} {
				// Each repeat comes with a new link STAN and time, as a store-and-forward queue sends it;
				// the retrieval reference number stays.
				resp := send(t, c, linkMessage(t, mti, with(purchaseFields(card, "000000", amount, 100+i), 37, "000000424242")))
				if got, _ := resp.GetMTI(); got != tc.answer || field(resp, 39) != "00" {
					t.Fatalf("%s answered %s %s", mti, got, field(resp, 39))
				}
			}
			l, a := balances(t, srv, card.PAN)
			if l-card.Balance != tc.ledgerMove || a-card.Balance != tc.availMove {
				t.Fatalf("ledger moved %d available %d, want %d and %d", l-card.Balance, a-card.Balance, tc.ledgerMove, tc.availMove)
			}
			advices := srv.Advices()
			if len(advices) != 1 || advices[0].Copies != 3 || !advices[0].Applied || len(srv.Transactions()) != 0 {
				t.Fatalf("advices %+v", advices)
			}
			if st := srv.Stats(); st.Advices != 3 || st.Duplicates != 2 {
				t.Fatalf("stats %+v", st)
			}
			// The overdrawn ledger balance is answered with the debit sign.
			resp := send(t, c, linkMessage(t, "0200", purchaseFields(card, "310000", 0, 200)))
			if tc.ledgerMove != 0 && !strings.HasPrefix(field(resp, 54), fmt.Sprintf("0001840D%012d", amount-card.Balance)) {
				t.Fatalf("field 54 %q", field(resp, 54))
			}
		})
	}
}

func TestAdviceOfAnUnknownCardIsAnsweredAndBooksNothing(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	resp := send(t, c, linkMessage(t, "0220", purchaseFields(cards.MustLookup("4761730000000086"), "000000", 100, 1)))
	if mti, _ := resp.GetMTI(); mti != "0230" || field(resp, 39) != "14" {
		t.Fatalf("answered %s %s", mti, field(resp, 39))
	}
	if a := srv.Advices(); len(a) != 1 || a[0].Applied {
		t.Fatalf("advices %+v", a)
	}
}

func TestReversalIsAppliedOnceAcrossRepeats(t *testing.T) {
	card := cards.MustLookup("4761730000000011")
	const amount = 9_900
	for _, tc := range []struct{ name, mti, proc string }{
		{"purchase", "0200", "000000"},
		{"refund", "0200", "200000"},
		{"bill payment", "0200", "500000"},
		{"pre-authorisation", "0100", "000000"},
		{"financial advice", "0220", "000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, issuersim.Config{})
			orig := linkMessage(t, tc.mti, purchaseFields(card, tc.proc, amount, 1))
			if code := field(send(t, c, orig), 39); code != "00" {
				t.Fatalf("original answered %s", code)
			}
			for i, mti := range []string{"0400", "0401", "0421"} {
				resp := send(t, c, linkMessage(t, mti, reversalFields(orig, 10+i)))
				want := map[string]string{"0400": "0410", "0401": "0410", "0421": "0430"}[mti]
				if got, _ := resp.GetMTI(); got != want || field(resp, 39) != "00" {
					t.Fatalf("%s answered %s %s", mti, got, field(resp, 39))
				}
			}
			if l, a := balances(t, srv, card.PAN); l != card.Balance || a != card.Balance {
				t.Fatalf("ledger %d available %d after the reversal, want both %d", l, a, card.Balance)
			}
			recs := append(srv.Transactions(), srv.Advices()...)
			if len(recs) != 1 || recs[0].ReversalsNamed != 3 || recs[0].ReversalsApplied != 1 {
				t.Fatalf("records %+v", recs)
			}
			if st := srv.Stats(); st.Reversals != 3 || st.ReversalsApplied != 1 || st.ReversalsUnknown != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestReversalOfWhatTheIssuerNeverApprovedIsAnswered00AndBooksNothing(t *testing.T) {
	card := cards.MustLookup("4761730000000011")
	for _, tc := range []struct {
		name    string
		unknown bool
		reverse func(t *testing.T, purchase, declined *iso8583.Message) *iso8583.Message
	}{
		{"STAN never seen", true, func(t *testing.T, p, _ *iso8583.Message) *iso8583.Message {
			return linkMessage(t, "0420", with(reversalFields(p, 10), 90, "0200999999"+field(p, 7)+"000"+linkAcquirer+"00000000000"))
		}},
		{"another terminal", true, func(t *testing.T, p, _ *iso8583.Message) *iso8583.Message {
			return linkMessage(t, "0420", with(reversalFields(p, 10), 41, "TERM0099"))
		}},
		{"another acquirer", true, func(t *testing.T, p, _ *iso8583.Message) *iso8583.Message {
			f := reversalFields(p, 10)
			f[90] = f[90][:20] + "00099999999" + f[90][31:]
			return linkMessage(t, "0400", f)
		}},
		{"declined original", false, func(t *testing.T, _, d *iso8583.Message) *iso8583.Message {
			return linkMessage(t, "0400", reversalFields(d, 10))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := start(t, issuersim.Config{})
			purchase := linkMessage(t, "0200", purchaseFields(card, "000000", 1_000, 1))
			declined := linkMessage(t, "0200", purchaseFields(card, "000000", cards.MagicAmountBase+5, 2))
			if field(send(t, c, purchase), 39) != "00" || field(send(t, c, declined), 39) != "05" {
				t.Fatal("originals not answered 00 and 05")
			}
			if code := field(send(t, c, tc.reverse(t, purchase, declined)), 39); code != "00" {
				t.Fatalf("reversal answered %s", code)
			}
			if l, _ := srv.Balance(card.PAN); l != card.Balance-1_000 {
				t.Fatalf("ledger moved by %d, want -1000", l-card.Balance)
			}
			st := srv.Stats()
			if st.ReversalsApplied != 0 || (st.ReversalsUnknown == 1) != tc.unknown {
				t.Fatalf("stats %+v", st)
			}
			for _, r := range srv.Transactions() {
				if r.ReversalsApplied != 0 {
					t.Fatalf("record %+v", r)
				}
			}
		})
	}
}

func TestRecordsAreBoundedByMaxRecords(t *testing.T) {
	if _, err := issuersim.New(issuersim.Config{MaxRecords: -1}); err == nil {
		t.Fatal("negative MaxRecords accepted")
	}
	srv, c := start(t, issuersim.Config{MaxRecords: 3})
	card := cards.MustLookup("4761730000000011")
	var first *iso8583.Message
	for stan := 1; stan <= 5; stan++ {
		m := linkMessage(t, "0200", purchaseFields(card, "000000", 100, stan))
		if stan == 1 {
			first = m
		}
		send(t, c, m)
	}
	recs := srv.Transactions()
	if len(recs) != 3 || recs[0].STAN != "000003" || recs[2].STAN != "000005" {
		t.Fatalf("records %+v", recs)
	}
	// The forgotten purchase cannot be reversed any more: the reversal is answered and books nothing.
	send(t, c, linkMessage(t, "0420", reversalFields(first, 10)))
	if l, _ := srv.Balance(card.PAN); l != card.Balance-500 || srv.Stats().ReversalsUnknown != 1 {
		t.Fatalf("ledger moved %d, stats %+v", l-card.Balance, srv.Stats())
	}
}

func TestRetransmissionIsAnsweredFromMemoryWithTheSameReferences(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	req := terminalsim.NewPurchase(shop, cards.MustLookup("4761730000000011"), 100, "", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := c.Send(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Send(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if field(a, 37) != field(b, 37) || field(a, 38) != field(b, 38) || field(a, 39) != field(b, 39) {
		t.Fatalf("first 37/38/39 %s/%s/%s, retransmission %s/%s/%s", field(a, 37), field(a, 38), field(a, 39),
			field(b, 37), field(b, 38), field(b, 39))
	}
	if r := srv.Transactions(); len(r) != 1 || r[0].Copies != 2 {
		t.Fatalf("records %+v", r)
	}
}

func TestReversalOfAStandInAdviceUndoesTheAdviceOnce(t *testing.T) {
	// The switch approved in stand-in and told the issuer by an 0220 whose field 90 names the
	// transaction as the terminal sent it; the issuer never saw that original. A reversal of the
	// stand-in approval names the same field 90.
	card := cards.MustLookup("4761730000000011")
	const amount = 7_700
	srv, c := start(t, issuersim.Config{})
	standIn := linkMessage(t, "0200", purchaseFields(card, "000000", amount, 5)) // never sent
	advice := linkMessage(t, "0220", with(namingFields(standIn, 6), 2, card.PAN))
	if code := field(send(t, c, advice), 39); code != "00" {
		t.Fatalf("advice answered %s", code)
	}
	if l, _ := balances(t, srv, card.PAN); l != card.Balance-amount {
		t.Fatalf("ledger %d after the advice, want %d", l, card.Balance-amount)
	}
	for i, mti := range []string{"0420", "0421"} {
		if code := field(send(t, c, linkMessage(t, mti, reversalFields(standIn, 7+i))), 39); code != "00" {
			t.Fatalf("%s answered %s", mti, code)
		}
	}
	if l, a := balances(t, srv, card.PAN); l != card.Balance || a != card.Balance {
		t.Fatalf("ledger %d available %d after the reversal, want both %d", l, a, card.Balance)
	}
	if a := srv.Advices(); len(a) != 1 || a[0].ReversalsNamed != 2 || a[0].ReversalsApplied != 1 {
		t.Fatalf("advices %+v", a)
	}
	if st := srv.Stats(); st.ReversalsUnknown != 0 || st.ReversalsApplied != 1 {
		t.Fatalf("stats %+v", st)
	}
}
