package terminalsim_test

import (
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

func approved(req *iso8583.Message, rc string) *iso8583.Message {
	m := iso8583.NewMessage(req.GetSpec())
	mti, _ := req.GetMTI()
	m.MTI(mti[:2] + "10")
	_ = m.Field(39, rc)
	_ = m.Field(37, "000000000001")
	_ = m.Field(38, "A1B2C3")
	return m
}

func field(t *testing.T, m *iso8583.Message, id int) string {
	t.Helper()
	s, err := m.GetString(id)
	if err != nil {
		t.Fatalf("field %d: %v", id, err)
	}
	return s
}

// Field 90 names the original by its MTI, STAN and transmission time; a reversal and its repeats
// keep the original's STAN and time so they are one transaction.
func TestBuildersLinkToTheirOriginal(t *testing.T) {
	term := terminalsim.DefaultTerminals(1)[0]
	card := cards.MustLookup("6226090000000014")
	p := terminalsim.NewPurchase(term, card, 1000, "", 7)
	want := "0200" + field(t, p, 11) + field(t, p, 7) + "0000000000000000000000"
	if got := terminalsim.OriginalData(p); got != want || len(got) != 42 {
		t.Fatalf("field 90 %q, want %q", got, want)
	}
	for name, m := range map[string]*iso8583.Message{
		"void": terminalsim.NewVoid(p, 8), "refund": terminalsim.NewRefund(term, card, p, 500, 9),
		"reversal": terminalsim.NewReversal(p, false), "reversal repeat": terminalsim.NewReversal(p, true),
		"reversal advice": terminalsim.NewReversalAdvice(p, false),
	} {
		if field(t, m, 90) != want || field(t, m, 2) != card.PAN || field(t, m, 41) != term.TID {
			t.Errorf("%s: 90 %q 2 %q", name, field(t, m, 90), field(t, m, 2))
		}
	}
	r0, r1 := terminalsim.NewReversal(p, false), terminalsim.NewReversal(p, true)
	if mti, _ := r1.GetMTI(); mti != "0401" || field(t, r0, 11) != field(t, r1, 11) || field(t, r0, 7) != field(t, r1, 7) {
		t.Errorf("repeat %s does not share the reversal's STAN and time", mti)
	}
	if mti, _ := terminalsim.Repeat(p).GetMTI(); mti != "0201" || field(t, terminalsim.Repeat(p), 4) != "000000001000" {
		t.Errorf("Repeat: %s", mti)
	}
}

// The batch counts as terminals do: approved sales and refunds, voids as reversals of their kind,
// reversed transactions nowhere, declines nowhere; the upload carries every transaction left.
func TestBatchTotalsAndUploads(t *testing.T) {
	term := terminalsim.DefaultTerminals(1)[0]
	card := cards.MustLookup("6226090000000014")
	b := terminalsim.NewBatch("156")
	record := func(req *iso8583.Message, rc string) *iso8583.Message {
		b.Record(req, approved(req, rc))
		return req
	}
	p1 := record(terminalsim.NewPurchase(term, card, 10000, "", 1), "00")
	p2 := record(terminalsim.NewPurchase(term, card, 2500, "", 2), "00")
	p3 := record(terminalsim.NewPurchase(term, card, 700, "", 3), "00")
	record(terminalsim.NewPurchase(term, card, 900, "", 4), "51")
	record(terminalsim.NewVoid(p2, 5), "00")
	b.Record(terminalsim.NewReversal(p3, false), nil)
	r := record(terminalsim.NewRefund(term, card, p1, 1000, 6), "00")
	record(terminalsim.NewVoid(r, 7), "00")
	record(terminalsim.NewPreAuth(term, card, 5000, "", 8), "00")
	record(terminalsim.NewBalanceInquiry(term, card, "", 9), "00")
	got := b.Totals()
	want := terminalsim.Totals{Currency: "156", DebitsCount: 2, DebitsAmount: 12500, DebitsReversalCount: 1,
		DebitsReversalAmount: 2500, CreditsCount: 1, CreditsAmount: 1000, CreditsReversalCount: 1, CreditsReversalAmount: 1000,
		AuthorizationsCount: 1, InquiriesCount: 1}
	if got != want {
		t.Fatalf("totals\n got %+v\nwant %+v", got, want)
	}
	if got.Net() != 1000+1000-12500-2500 {
		t.Errorf("net %d", got.Net())
	}
	ups := b.Uploads(100)
	if len(ups) != b.Len() || len(ups) != 6 {
		t.Fatalf("%d uploads for %d transactions, want 6", len(ups), b.Len())
	}
	if field(t, ups[0], 90) != terminalsim.OriginalData(p1) || field(t, ups[0], 11) != "000100" ||
		field(t, ups[0], 38) != "A1B2C3" || ups[0].GetField(2) != nil || ups[0].GetField(35) != nil {
		t.Errorf("first upload: 90 %q 11 %q; it must name p1 and carry no card data", field(t, ups[0], 90), field(t, ups[0], 11))
	}
	s := terminalsim.NewBatchSettlement(term, got, 200)
	if field(t, s, 3) != terminalsim.ProcSettlement || field(t, s, 97) != "D0000000000013000" || field(t, s, 88) != "0000000000012500" {
		t.Errorf("0500: 3 %q 97 %q 88 %q", field(t, s, 3), field(t, s, 97), field(t, s, 88))
	}
}
