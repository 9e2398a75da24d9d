package translate

import (
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/txn"
)

// overTheWire re-encodes m in the dialect, packs it and unpacks it as the listener does.
func overTheWire(t *testing.T, dialect string, m *iso8583.Message) *iso8583.Message {
	t.Helper()
	d, err := specs.DialectByName(dialect)
	if err != nil {
		t.Fatal(err)
	}
	out := iso8583.NewMessage(d.Spec)
	mti, _ := m.GetMTI()
	out.MTI(mti)
	for id := range m.GetFields() {
		if id <= 1 {
			continue
		}
		b, err := m.GetBytes(id)
		if err == nil {
			err = out.BinaryField(id, b)
		}
		if err != nil {
			t.Fatalf("field %d: %v", id, err)
		}
	}
	packed, err := out.Pack()
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	back := iso8583.NewMessage(d.Spec)
	if err := back.Unpack(packed); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	return back
}

// Every message of the set, built as terminal-sim builds it, reads into the same transaction in
// every terminal dialect, and its answer has the right MTI and packs.
func TestEveryMessageTranslatesInEveryDialect(t *testing.T) {
	term := terminalsim.Terminal{TID: "TERM0001", MID: "MERCHANT0000001"}
	chip := cards.MustLookup("6226090000000014")
	swipe := cards.Select(func(c cards.Card) bool { return c.ServiceCode != "" && c.ServiceCode[0] == '1' })
	purchase := terminalsim.NewPurchase(term, chip, 10000, "", 41)
	preauth := terminalsim.NewPreAuth(term, chip, 20000, "", 42)
	tot := terminalsim.Totals{Currency: "156", DebitsCount: 3, DebitsAmount: 12500, CreditsCount: 1, CreditsAmount: 1000,
		DebitsReversalCount: 1, DebitsReversalAmount: 2500, SendOptional: true, AuthorizationsCount: 2, InquiriesCount: 5}
	type want struct {
		typ      txn.Type
		respMTI  string
		amount   int64
		original bool // names purchase/preauth in field 90
		auth     string
	}
	cases := []struct {
		name string
		msg  *iso8583.Message
		want want
	}{
		{"purchase", purchase, want{txn.TypePurchase, "0210", 10000, false, ""}},
		{"purchase repeat", terminalsim.Repeat(purchase), want{txn.TypePurchase, "0210", 10000, false, ""}},
		{"pre-authorisation", preauth, want{txn.TypePreAuth, "0110", 20000, false, ""}},
		{"completion", terminalsim.NewCompletion(preauth, "A1B2C3", 15000, 43), want{txn.TypeCompletion, "0230", 15000, true, "A1B2C3"}},
		{"refund", terminalsim.NewRefund(term, chip, purchase, 2500, 44), want{txn.TypeRefund, "0210", 2500, true, ""}},
		{"void", terminalsim.NewVoid(purchase, 45), want{txn.TypeVoid, "0210", 10000, true, ""}},
		{"balance inquiry", terminalsim.NewBalanceInquiry(term, chip, "", 46), want{txn.TypeBalanceInquiry, "0210", 0, false, ""}},
		{"bill payment", terminalsim.NewBillPayment(term, chip, 8800, "", 47), want{txn.TypeBillPayment, "0210", 8800, false, ""}},
		{"reversal", terminalsim.NewReversal(purchase, false), want{txn.TypeReversal, "0410", 10000, true, ""}},
		{"reversal repeat", terminalsim.NewReversal(purchase, true), want{txn.TypeReversal, "0410", 10000, true, ""}},
		{"reversal advice", terminalsim.NewReversalAdvice(preauth, false), want{txn.TypeReversal, "0430", 20000, true, ""}},
		{"reversal advice repeat", terminalsim.NewReversalAdvice(preauth, true), want{txn.TypeReversal, "0430", 20000, true, ""}},
		{"completion repeat", terminalsim.Repeat(terminalsim.NewCompletion(preauth, "A1B2C3", 15000, 48)), want{txn.TypeCompletion, "0230", 15000, true, "A1B2C3"}},
		{"batch upload", terminalsim.NewBatchUpload(purchase, nil, 49), want{txn.TypeBatchUpload, "0330", 10000, false, ""}},
		{"batch settlement", terminalsim.NewBatchSettlement(term, tot, 50), want{txn.TypeBatchSettlement, "0510", 0, false, ""}},
		{"batch trailer", terminalsim.NewBatchTrailer(term, tot, 51), want{txn.TypeBatchSettlement, "0510", 0, false, ""}},
		{"sign-on", terminalsim.NewSignOn(term, 52), want{txn.TypeNetwork, "0810", 0, false, ""}},
		{"key change", terminalsim.NewNetwork(term, terminalsim.NetworkKeyChange, 53), want{txn.TypeNetwork, "0810", 0, false, ""}},
	}
	if len(swipe) > 0 {
		cases = append(cases, struct {
			name string
			msg  *iso8583.Message
			want want
		}{"void of a swiped sale", terminalsim.NewVoid(terminalsim.NewPurchase(term, swipe[0], 300, "", 54), 55),
			want{txn.TypeVoid, "0210", 300, true, ""}})
	}
	for _, dialect := range []string{"iso87a", "iso87a-bb", "iso87b"} {
		for _, c := range cases {
			t.Run(dialect+"/"+c.name, func(t *testing.T) {
				req := overTheWire(t, dialect, c.msg)
				tx, err := Request(req, time.Now())
				if err != nil {
					t.Fatalf("translate: %v", err)
				}
				tx.AcquirerID = "00000000001"
				if tx.Type != c.want.typ || tx.Amount != c.want.amount {
					t.Fatalf("type %s amount %d, want %s %d", tx.Type, tx.Amount, c.want.typ, c.want.amount)
				}
				if tx.AuthCode != c.want.auth {
					t.Errorf("auth code %q, want %q", tx.AuthCode, c.want.auth)
				}
				if c.want.original {
					orig, _ := c.msg.GetString(90)
					mti := orig[:4]
					wantKey := txn.IdentityKey("00000000001", "TERM0001", orig[4:10], orig[10:20], txn.MTIClass(mti))
					if tx.OriginalKey() != wantKey {
						t.Errorf("original key %q, want %q", tx.OriginalKey(), wantKey)
					}
				}
				tx.Response = txn.RCApproved
				resp, err := Response(req, tx)
				if err != nil {
					t.Fatal(err)
				}
				if mti, _ := resp.GetMTI(); mti != c.want.respMTI {
					t.Errorf("answer MTI %s, want %s", mti, c.want.respMTI)
				}
				if _, err := resp.Pack(); err != nil {
					t.Fatalf("answer does not pack: %v", err)
				}
			})
		}
	}
}

func TestBatchSettlementReadsItsTotals(t *testing.T) {
	term := terminalsim.Terminal{TID: "TERM0001", MID: "MERCHANT0000001"}
	tot := terminalsim.Totals{Currency: "156", DebitsCount: 3, DebitsAmount: 12500, CreditsCount: 1, CreditsAmount: 1000,
		CreditsReversalCount: 1, CreditsReversalAmount: 100, DebitsReversalCount: 1, DebitsReversalAmount: 2500,
		SendOptional: true, AuthorizationsCount: 2, InquiriesCount: 5}
	for _, dialect := range []string{"iso87a", "iso87a-bb", "iso87b"} {
		tx, err := Request(overTheWire(t, dialect, terminalsim.NewBatchTrailer(term, tot, 1)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b := tx.Totals
		if b == nil || b.DebitsCount != 3 || b.DebitsAmount != 12500 || b.CreditsCount != 1 || b.CreditsAmount != 1000 ||
			b.CreditsReversalCount != 1 || b.CreditsReversalAmount != 100 || b.DebitsReversalCount != 1 ||
			b.DebitsReversalAmount != 2500 || b.AuthorizationsCount != 2 || b.InquiriesCount != 5 {
			t.Fatalf("%s: totals %+v", dialect, b)
		}
		if b.NetAmount != 1000+100-12500-2500 || !b.Sent[80] || !b.Sent[81] || b.Sent[82] {
			t.Errorf("%s: net %d sent %v", dialect, b.NetAmount, b.Sent)
		}
		if tx.ProcessingCode != txn.ProcSettlementTrailer || tx.Currency != "156" {
			t.Errorf("%s: processing code %s currency %s", dialect, tx.ProcessingCode, tx.Currency)
		}
	}
}

func TestNewMessagesFormatErrorsNameTheField(t *testing.T) {
	term := terminalsim.Terminal{TID: "TERM0001", MID: "MERCHANT0000001"}
	purchase := terminalsim.NewPurchase(term, cards.MustLookup("6226090000000014"), 100, "", 1)
	cases := []struct {
		name  string
		msg   *iso8583.Message
		edit  func(*iso8583.Message)
		field int
	}{
		{"reversal without field 90", terminalsim.NewReversal(purchase, false), func(m *iso8583.Message) { m.UnsetField(90) }, 90},
		{"void without field 90", terminalsim.NewVoid(purchase, 2), func(m *iso8583.Message) { m.UnsetField(90) }, 90},
		{"upload without field 90", terminalsim.NewBatchUpload(purchase, nil, 3), func(m *iso8583.Message) { m.UnsetField(90) }, 90},
		{"field 90 with a 1993 MTI", terminalsim.NewReversal(purchase, false),
			func(m *iso8583.Message) { _ = m.Field(90, "120000004206141230450000000000100000000000") }, 90},
		{"settlement without field 88", terminalsim.NewBatchSettlement(term, terminalsim.Totals{}, 4),
			func(m *iso8583.Message) { m.UnsetField(88) }, 88},
		{"settlement without field 97", terminalsim.NewBatchSettlement(term, terminalsim.Totals{}, 4),
			func(m *iso8583.Message) { m.UnsetField(97) }, 97},
		{"settlement with another processing code", terminalsim.NewBatchSettlement(term, terminalsim.Totals{}, 4),
			func(m *iso8583.Message) { _ = m.Field(3, "000000") }, 3},
		{"settlement with a signless net", terminalsim.NewBatchSettlement(term, terminalsim.Totals{}, 4),
			func(m *iso8583.Message) { _ = m.Field(97, "X0000000000000000") }, 97},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.edit(c.msg)
			_, err := Request(c.msg, time.Now())
			fe, ok := err.(*FormatError)
			if !ok || fe.Field != c.field {
				t.Fatalf("got %v, want a format error on field %d", err, c.field)
			}
		})
	}
}

func TestIssuerRequestCarriesTheLinkSideOriginal(t *testing.T) {
	tx := &txn.Transaction{MTI: "0201", Type: txn.TypeRefund, ProcessingCode: "200000", Amount: 100, Currency: "156",
		TerminalID: "T1", MerchantID: "M1", OriginalData: "020000000106141230450000000000000000000000",
		IssuerOriginalData: "020000077706141230460000000000100000000000"}
	m, err := ToIssuer(specs.IssuerLink, tx, "00000000001")
	if err != nil {
		t.Fatal(err)
	}
	if mti, _ := m.GetMTI(); mti != "0200" {
		t.Errorf("issuer MTI %s: a terminal's repeat is a new request on the link", mti)
	}
	if f90, _ := m.GetString(90); f90 != tx.IssuerOriginalData {
		t.Errorf("issuer field 90 %q, want the link-side original", f90)
	}
	if m.GetField(38) != nil {
		t.Error("a request carries field 38")
	}
	for mti, want := range map[string]string{"0200": "0200", "0201": "0200", "0221": "0220", "0421": "0420", "0120": "0120"} {
		if got := LinkMTI(mti); got != want {
			t.Errorf("LinkMTI(%s) = %s, want %s", mti, got, want)
		}
	}
}
