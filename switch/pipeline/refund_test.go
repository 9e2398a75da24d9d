package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/poswitch/poswitch/switch/routing"
	"github.com/poswitch/poswitch/switch/txn"
)

// recordsOf is a ledger reader over a fixed set of entries (the integration tests read PostgreSQL).
type recordsOf map[string]Recorded

func (r recordsOf) Record(_ context.Context, key string) (Recorded, bool, error) {
	rec, ok := r[key]
	return rec, ok, nil
}

const origData = "0200000001061412000000000000000000000000000"

func onOriginal(kind txn.Type, mti string) *txn.Transaction {
	t := purchase()
	t.Type, t.MTI, t.ProcessingCode = kind, mti, "200000"
	t.STAN, t.TransmissionTime = "000002", "0614120500"
	t.AcquirerID = "ACQ"
	t.OriginalData = origData[:42]
	return t
}

func TestRefundRules(t *testing.T) {
	now := time.Now()
	sale := Recorded{Kind: txn.TypePurchase, Status: StatusBooked, Issuer: "bank-a", Currency: "156", Amount: 1000,
		Refundable: 1000, At: now.Add(-time.Hour)}
	cases := []struct {
		name   string
		rec    Recorded
		edit   func(*txn.Transaction)
		want   string
		issuer string
	}{
		{"a refund within the window and the amount passes", sale, nil, "", ""},
		{"a refund of the whole amount passes", sale, func(t *txn.Transaction) { t.Amount = 1000 }, "", ""},
		{"a refund above what is left is 13", sale, func(t *txn.Transaction) { t.Amount = 1001 }, txn.RCInvalidAmount, ""},
		{"a refund after the window is 12", func() Recorded { r := sale; r.At = now.Add(-181 * 24 * time.Hour); return r }(), nil, txn.RCInvalidTxn, ""},
		{"a refund just within the window passes", func() Recorded { r := sale; r.At = now.Add(-179 * 24 * time.Hour); return r }(), nil, "", ""},
		{"a refund of a voided sale is 12", func() Recorded { r := sale; r.Cancelled = true; return r }(), nil, txn.RCInvalidTxn, ""},
		{"a refund in another currency is 12", sale, func(t *txn.Transaction) { t.Currency = "392" }, txn.RCInvalidTxn, ""},
		{"a card refund without a card number is 14", sale, func(t *txn.Transaction) { t.PAN = "" }, txn.RCInvalidCard, ""},
		{"a wallet refund without a payment code goes to the wallet", func() Recorded { r := sale; r.Issuer = "alipay"; return r }(),
			func(t *txn.Transaction) { t.PAN = "" }, "", "alipay"},
		{"a refund naming no original is 12", sale, func(t *txn.Transaction) { t.OriginalData = "" }, txn.RCInvalidTxn, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := onOriginal(txn.TypeRefund, "0200")
			tx.Amount, tx.Received = 400, now
			if tc.edit != nil {
				tc.edit(tx)
			}
			s := Refund{Records: recordsOf{onOriginal(txn.TypeRefund, "0200").OriginalKey(): tc.rec}, AcquirerID: "ACQ",
				Window: 180 * 24 * time.Hour, Wallets: map[string]bool{"alipay": true}}
			s.Run(context.Background(), tx)
			if tx.Response != tc.want || tx.IssuerID != tc.issuer {
				t.Fatalf("answer %q issuer %q (%s), want %q %q", tx.Response, tx.IssuerID, tx.Reason, tc.want, tc.issuer)
			}
		})
	}
}

func TestRefundOfAnUnknownOriginalIs25(t *testing.T) {
	tx := onOriginal(txn.TypeRefund, "0200")
	Refund{Records: recordsOf{}, AcquirerID: "ACQ"}.Run(context.Background(), tx)
	if tx.Response != txn.RCNoRecord {
		t.Fatalf("answer %q", tx.Response)
	}
}

func TestVoidAfterCutoverIsRefundInstead(t *testing.T) {
	sale := Recorded{Kind: txn.TypePurchase, Status: StatusBooked, Currency: "156", Amount: 1000}
	cases := []struct {
		name string
		rec  *Recorded
		want string
	}{
		{"a void before cut-over passes to reverse", &sale, ""},
		{"a void after cut-over is 12", func() *Recorded { r := sale; r.CycleClosed = true; return &r }(), txn.RCInvalidTxn},
		{"a void of a hold after cut-over passes (a hold is never settled)",
			func() *Recorded { r := sale; r.CycleClosed, r.Kind = true, txn.TypePreAuth; return &r }(), ""},
		{"a void of an unknown original passes (reverse answers it)", nil, ""},
		{"a void of a cancelled original passes (reverse books nothing)",
			func() *Recorded { r := sale; r.CycleClosed, r.Cancelled = true, true; return &r }(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := onOriginal(txn.TypeVoid, "0200")
			recs := recordsOf{}
			if tc.rec != nil {
				recs[tx.OriginalKey()] = *tc.rec
			}
			VoidWindow{Records: recs}.Run(context.Background(), tx)
			if tx.Response != tc.want {
				t.Fatalf("answer %q (%s), want %q", tx.Response, tx.Reason, tc.want)
			}
		})
	}
}

func TestRouteKeepsAnIssuerChosenBefore(t *testing.T) {
	table, err := routing.NewTable([]routing.Entry{{Prefix: "4761", Issuer: "bank-a"}})
	if err != nil {
		t.Fatal(err)
	}
	s := Route{Router: routing.NewRouter(table), Links: map[string]bool{"bank-a": true, "alipay": true}}
	tx := purchase()
	tx.PAN, tx.IssuerID = "", "alipay"
	s.Run(context.Background(), tx)
	if tx.Response != "" || tx.IssuerID != "alipay" {
		t.Fatalf("answer %q issuer %q", tx.Response, tx.IssuerID)
	}
	tx = purchase()
	tx.PAN, tx.IssuerID = "", "wechat"
	s.Run(context.Background(), tx)
	if tx.Response != txn.RCUnableToRoute {
		t.Fatalf("an issuer without a link: answer %q", tx.Response)
	}
}
