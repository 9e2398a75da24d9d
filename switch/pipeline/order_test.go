package pipeline

import (
	"context"
	"testing"

	"github.com/poswitch/poswitch/switch/txn"
)

func TestOrderMessagesAreInvalidWhenOrdersAreOff(t *testing.T) {
	for _, typ := range []txn.Type{txn.TypeOrderCreate, txn.TypeOrderStatus, txn.TypeOrderCancel} {
		tr := &txn.Transaction{Type: typ, OrderID: "0190F2A1B2C3D4E5F6A7"}
		Order{}.Run(context.Background(), tr)
		if !tr.Ended() || tr.Response != txn.RCInvalidTxn {
			t.Errorf("%s with orders off: ended %v, response %q; want 12", typ, tr.Ended(), tr.Response)
		}
	}
}

func TestOrderStepLeavesOtherTransactionsAlone(t *testing.T) {
	tr := &txn.Transaction{Type: txn.TypePurchase}
	Order{}.Run(context.Background(), tr)
	if tr.Ended() || tr.Response != "" {
		t.Fatalf("a purchase through the order step: ended %v, response %q", tr.Ended(), tr.Response)
	}
}

func TestOrderStateCodes(t *testing.T) {
	for _, c := range []struct {
		state, code string
	}{{OrderPaid, "00"}, {OrderPending, "09"}, {OrderPaying, "09"}, {OrderCancelled, "17"}, {OrderExpired, "68"}} {
		tr := &txn.Transaction{Type: txn.TypeOrderStatus}
		answerState(tr, OrderState{ID: "X", Status: c.state, AuthCode: "123456", RRN: "000000000001", Wallet: "ALIPAY", Funding: "BALANCE"}, "status")
		if tr.Response != c.code {
			t.Errorf("%s: %s, want %s", c.state, tr.Response, c.code)
		}
		if paid := c.state == OrderPaid; paid != (tr.AuthCode == "123456" && tr.Wallet == "ALIPAY") {
			t.Errorf("%s: auth code %q wallet %q; only a paid order carries them", c.state, tr.AuthCode, tr.Wallet)
		}
	}
}
