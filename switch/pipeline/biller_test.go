package pipeline

import (
	"context"
	"testing"

	"github.com/poswitch/poswitch/switch/routing"
	"github.com/poswitch/poswitch/switch/txn"
)

func TestCheckBillerRefusesUnknownBillersBeforeTheIssuer(t *testing.T) {
	step := CheckBiller{Billers: Billers{"HUABEI": "alipay"}}
	cases := []struct{ name, biller, account, want string }{
		{"known biller", "HUABEI", "2088000000000002", ""},
		{"unknown biller", "NOSUCH", "2088000000000002", txn.RCInvalidTxn},
		{"account not digits", "HUABEI", "user@example", txn.RCInvalidCard},
		{"account of 20 digits", "HUABEI", "20880000000000000002", txn.RCInvalidCard},
		{"no biller: an ordinary bill payment", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx := &txn.Transaction{Type: txn.TypeBillPayment, BillerID: c.biller, BillerAccount: c.account}
			step.Run(context.Background(), tx)
			if tx.Response != c.want {
				t.Errorf("response %q, want %q", tx.Response, c.want)
			}
		})
	}
}

func TestRoutePaymentCodeSendsCodesToTheirWalletOnly(t *testing.T) {
	table, err := routing.NewTable([]routing.Entry{{Prefix: "62", Issuer: "cup"},
		{Prefix: "62", Length: 19, PaymentCodes: true, Issuer: "unionpay-qr"}})
	if err != nil {
		t.Fatal(err)
	}
	step := RoutePaymentCode{Router: table, Links: map[string]bool{"cup": true, "unionpay-qr": true}}
	code := &txn.Transaction{PAN: "6212345678901234567", EntryMode: "031"}
	step.Run(context.Background(), code)
	card := &txn.Transaction{PAN: "6212345678901234567", EntryMode: "051"}
	step.Run(context.Background(), card)
	if code.IssuerID != "unionpay-qr" || card.IssuerID != "" || card.Ended() {
		t.Errorf("code to %q, card to %q (ended %v)", code.IssuerID, card.IssuerID, card.Ended())
	}
	unlinked := RoutePaymentCode{Router: table, Links: map[string]bool{"cup": true}}
	tx := &txn.Transaction{PAN: "6212345678901234567", EntryMode: "032"}
	unlinked.Run(context.Background(), tx)
	if tx.Response != txn.RCUnableToRoute {
		t.Errorf("code to a wallet without a link answered %q, want 92", tx.Response)
	}
}

type queued struct{ items []Forward }

func (q *queued) Enqueue(_ context.Context, f Forward) error {
	q.items = append(q.items, f)
	return nil
}

func TestRepaymentAdviceQueuesTheWalletsAdviceOnlyWhenBooked(t *testing.T) {
	q := &queued{}
	step := RepaymentAdvice{Billers: Billers{"HUABEI": "alipay"}, SAF: q, AcquirerID: "10000000001"}
	base := txn.Transaction{MTI: "0200", Type: txn.TypeBillPayment, ProcessingCode: "500000", PAN: "6226090000000048",
		BillerID: "HUABEI", BillerAccount: "2088000000000002", Amount: 100, Currency: "156", TerminalID: "T1",
		IssuerID: "bank-a", IssuerSTAN: "000123", IssuerTime: "1124101010", Response: txn.RCApproved}
	notBooked := base
	step.Run(context.Background(), &notBooked)
	booked := base
	booked.Booked = true
	step.Run(context.Background(), &booked)
	if len(q.items) != 1 {
		t.Fatalf("%d advices queued, want 1 (only the booked one)", len(q.items))
	}
	f := q.items[0]
	if f.Issuer != "alipay" || f.MTI != "0220" || f.PAN != "2088000000000002" || f.OriginalSTAN != "000123" ||
		f.Reason != ReasonBillerAdvice || f.PANMasked != txn.Mask("2088000000000002") {
		t.Errorf("advice %+v", f)
	}
}
