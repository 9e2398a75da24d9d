package integration

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/simulator/walletsim"
	"github.com/poswitch/poswitch/specs/emvqr"
)

// notifyAnswer posts a payment notification MACed in the wallet's HSM and returns the HTTP status
// and the whole JSON answer.
func (w *orderWallet) notifyAnswer(t *testing.T, orderID string, body map[string]any) (int, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := w.hsm.GenerateMAC(ctx, hsm.GenerateMAC{Key: w.key, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.notifyAddr+"/orders/"+orderID+"/payment", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Poswitch-MAC", hex.EncodeToString(mac))
	req.Header.Set("X-Poswitch-Wallet", orderWalletIssuer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	a := map[string]string{}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return resp.StatusCode, a
}

// An order payment gets an issuer trace from the switch (in the 200 answer, the same on a repeat,
// and in the ledger with the booking); the wallet records the payment under it, so a refund from
// the terminal (no card number, field 90 naming the order) reaches the wallet, which finds the
// payment and gives the money back to the balance it came from. The merchant's configured city and
// country are in the QR.
func TestQROrderRefundedToTheWalletByItsIssuerTrace(t *testing.T) {
	const city, country = "HONG KONG", "HK"
	s, w := startOrderStack(t, func(y string) string {
		return strings.Replace(y, "    name: Shop 0\n", "    name: Shop 0\n    city: "+city+"\n    country: "+country+"\n", 1)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[0]
	customer := walletsim.DefaultCustomers(walletsim.Alipay)[0].ID
	stan := 300
	next := func() int { stan++; return stan }

	// The order, created with a request the refund will name; its QR carries the merchant's place.
	const amount = 20_000
	create := terminalsim.NewOrderCreate(term, amount, "156", next())
	created := mustExchange(t, c, create)
	if fieldOf(created, 39) != "00" {
		t.Fatalf("order create answered %s", fieldOf(created, 39))
	}
	o := terminalsim.Order{ID: fieldOf(created, 48), Payload: fieldOf(created, 62), Terminal: term, Amount: amount, Currency: "156"}
	png := filepath.Join(t.TempDir(), "order.png")
	if err := terminalsim.WriteQRPNG(png, o.Payload, 0); err != nil {
		t.Fatal(err)
	}
	p, err := emvqr.Parse(zbarDecode(t, png))
	if err != nil {
		t.Fatal(err)
	}
	if p.MerchantCity != city || p.Country != country {
		t.Fatalf("decoded QR says city %q country %q, configured %q %q", p.MerchantCity, p.Country, city, country)
	}

	before, _ := w.sim.Balance(customer)
	pay, err := w.sim.PayOrder(ctx, o.Payload, customer, walletsim.FundingBalance, 0)
	if err != nil || !pay.Captured {
		t.Fatalf("wallet payment: %+v, %v", pay, err)
	}
	if len(pay.STAN) != 6 || len(pay.TransmissionTime) != 10 || pay.AcquirerID != acquirerID {
		t.Fatalf("the 200 answer gave the trace %q/%q/%q; want a 6-digit STAN, MMDDhhmmss and acquirer %s",
			pay.STAN, pay.TransmissionTime, pay.AcquirerID, acquirerID)
	}
	if res, err := terminalsim.PollOrder(ctx, c, o, terminalsim.PollConfig{Interval: 100 * time.Millisecond, Deadline: 30 * time.Second,
		NextSTAN: next}); err != nil || res.Status != terminalsim.OrderPaid {
		t.Fatalf("terminal poll: %+v, %v", res, err)
	}
	// A repeat notification returns the same trace; the ledger booked the payment with it.
	code, again := w.notifyAnswer(t, o.ID, notification(o.ID, pay.WalletTxnID, amount))
	if code != http.StatusOK || again["result"] != "duplicate" || again["stan"] != pay.STAN ||
		again["transmission_time"] != pay.TransmissionTime || again["acquirer_id"] != pay.AcquirerID {
		t.Fatalf("repeat notification: %d %v; want 200 duplicate with trace %s/%s", code, again, pay.STAN, pay.TransmissionTime)
	}
	orderKey := txnIdentity(create)
	if e := entryOf(t, s, orderKey); e.IssuerSTAN != pay.STAN || e.IssuerTime != pay.TransmissionTime || e.Issuer != orderWalletIssuer {
		t.Fatalf("ledger holds the order payment with issuer %s trace %s/%s; the wallet was told %s/%s",
			e.Issuer, e.IssuerSTAN, e.IssuerTime, pay.STAN, pay.TransmissionTime)
	}

	// A partial refund from the terminal: approved by the wallet, balance back, refund in the ledger.
	refund := terminalsim.NewQRRefund(create, 7_500, next())
	resp := mustExchange(t, c, refund)
	if fieldOf(resp, 39) != "00" || fieldOf(resp, 63) != "ALIPAY|BALANCE|00" {
		t.Fatalf("refund of the order answered 39=%s 63=%q, want 00 ALIPAY|BALANCE|00", fieldOf(resp, 39), fieldOf(resp, 63))
	}
	if b, _ := w.sim.Balance(customer); b != before-amount+7_500 {
		t.Errorf("balance %d after the refund, want %d (paid %d, refunded 7500)", b, before-amount+7_500, amount)
	}
	if e := bookedEntries(t, s, txnIdentity(refund)); len(e) != 1 || e[0].kind != "refund" || e[0].amount != 7_500 {
		t.Errorf("refund journal: %+v", e)
	}
	if net, _ := netPostings(t, s, txnIdentity(refund)); net["issuer_receivable:"+orderWalletIssuer+"/156"] != -7_500 {
		t.Errorf("refund postings: %v", net)
	}
	var walletRefunds int
	for _, r := range w.sim.Records() {
		if r.Kind == "refund" && r.Response == "00" && r.Customer == customer && r.Amount == 7_500 {
			walletRefunds++
		}
	}
	if walletRefunds != 1 {
		t.Errorf("wallet-sim approved %d refunds of 7500 for the customer, want 1: %+v", walletRefunds, w.sim.Records())
	}

	// A refund above what is left (20000 - 7500 = 12500) is refused, and nothing moves.
	over := terminalsim.NewQRRefund(create, 12_501, next())
	if resp := mustExchange(t, c, over); fieldOf(resp, 39) != "13" {
		t.Errorf("refund above what is left answered %s, want 13", fieldOf(resp, 39))
	}
	if e := bookedEntries(t, s, txnIdentity(over)); len(e) != 0 {
		t.Errorf("refused refund booked: %+v", e)
	}
	if b, _ := w.sim.Balance(customer); b != before-amount+7_500 {
		t.Errorf("balance %d after the refused refund, want %d", b, before-amount+7_500)
	}
	// What is left may still be refunded.
	rest := terminalsim.NewQRRefund(create, 12_500, next())
	if resp := mustExchange(t, c, rest); fieldOf(resp, 39) != "00" {
		t.Errorf("refund of the rest answered %s, want 00", fieldOf(resp, 39))
	}
	if b, _ := w.sim.Balance(customer); b != before {
		t.Errorf("balance %d after refunding all, want %d", b, before)
	}
}
