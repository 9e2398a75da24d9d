package integration

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/simulator/walletsim"
)

// walletClock is the wallet-sims' clock, moved forward to expire payment codes.
type walletClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *walletClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *walletClock) add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// walletIssuers are the wallet issuer IDs of the test's configuration and the wallet each plays.
var walletIssuers = map[string]string{"alipay": walletsim.Alipay, "wechat": walletsim.WeChat, "unionpay-qr": walletsim.UnionPay}

const huabeiFeeBP = 15

// startWalletStack starts the stack with three wallet-sims behind issuers marked wallet: true,
// routes for their payment codes, and the HUABEI biller owed to alipay.
func startWalletStack(t *testing.T, clk *walletClock) (*stack, map[string]*walletsim.Server) {
	t.Helper()
	wallets := map[string]*walletsim.Server{}
	s := startStack(t, stackOptions{
		terminals: 4, vault: true, safRetryBase: 50 * time.Millisecond, safRetryMax: 200 * time.Millisecond,
		safPollInterval: 50 * time.Millisecond,
		before: func(s *stack) {
			for id, w := range walletIssuers {
				ws, err := walletsim.New(walletsim.Config{Wallet: w, IssuerID: id, Now: clk.now})
				if err != nil {
					t.Fatal(err)
				}
				if err := ws.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ws.Close() })
				wallets[id] = ws
			}
		},
		yamlEdit: func(s *stack, y string) string {
			var is strings.Builder
			for _, id := range []string{"alipay", "wechat", "unionpay-qr"} {
				fmt.Fprintf(&is, "  - id: %s\n    endpoints: [%s]\n    timeout: 3s\n    echo_interval: 500ms\n    reconnect_wait: 50ms\n    wallet: true\n",
					id, wallets[id].Addr())
			}
			y = strings.Replace(y, "issuers:\n", "issuers:\n"+is.String(), 1)
			y = strings.Replace(y, "routes:\n", `routes:
  - range: "25-30"
    length: 18
    payment_codes: true
    issuer: alipay
  - range: "10-15"
    length: 18
    payment_codes: true
    issuer: wechat
  - prefix: "62"
    length: 19
    payment_codes: true
    issuer: unionpay-qr
`, 1)
			return y + fmt.Sprintf("channels:\n  billers:\n    - id: HUABEI\n      wallet: alipay\n      fee_bp: %d\n", huabeiFeeBP)
		},
	})
	return s, wallets
}

// approvedCard is a catalogue card of issuer whose PAN starts with prefix and that is approved.
func approvedCard(t *testing.T, issuer, prefix string) cards.Card {
	t.Helper()
	for _, c := range cards.ByIssuer(issuer) {
		if strings.HasPrefix(c.PAN, prefix) && c.Outcome == cards.Approved && c.Currency == cards.CNY && c.PIN == "" {
			return c
		}
	}
	for _, c := range cards.ByIssuer(issuer) {
		if strings.HasPrefix(c.PAN, prefix) && c.Outcome == cards.Approved && c.Currency == cards.CNY {
			return c
		}
	}
	t.Fatalf("no approved CNY card of %s starting %s in the catalogue", issuer, prefix)
	return cards.Card{}
}

// bookedEntries are the booked journal entries of a key's transaction (not of those naming it).
func bookedEntries(t *testing.T, s *stack, key string) []entryRow {
	var out []entryRow
	for _, e := range journalOf(t, s, key) {
		if e.key == key && e.status == "booked" {
			out = append(out, e)
		}
	}
	return out
}

func TestWalletPaymentCodesRefundsAndHuabeiRepayment(t *testing.T) {
	clk := &walletClock{}
	s, wallets := startWalletStack(t, clk)
	term := s.terminals[0]
	c := s.dial("iso87a", "iso87a", false)
	alipay := wallets["alipay"]
	stan := 0
	next := func() int { stan++; return stan }
	const payer, huabeiFirst = "2088000000000001", "2088000000000002"
	code := func(w *walletsim.Server, customer string) string {
		t.Helper()
		cd, err := w.NewPaymentCode(customer)
		if err != nil {
			t.Fatal(err)
		}
		return cd
	}
	pay := func(cd string, amount int64, instalments int) (*iso8583.Message, *iso8583.Message) {
		req := terminalsim.NewQRPurchase(term, cd, amount, "156", instalments, next())
		return req, mustExchange(t, c, req)
	}
	fee := func(a int64) int64 { return halfUpFee(a, s.feeBP(term.MID)) }
	startBalance, _ := alipay.Balance(payer)

	// Alipay from the balance: approved, receipt shows the wallet and funding, booked as a purchase.
	balReq, balResp := pay(code(alipay, payer), 10_000, 0)
	r := terminalsim.NewReceipt(term, balReq, balResp)
	if !r.Approved || r.Wallet != "ALIPAY" || r.Funding != "BALANCE" || r.EntryMode != "QR" || !r.NoSignatureRequired {
		t.Errorf("balance payment receipt: %+v", r)
	}
	if e := bookedEntries(t, s, txnIdentity(balReq)); len(e) != 1 || e[0].kind != "purchase" || e[0].amount != 10_000 {
		t.Errorf("balance payment journal: %+v", e)
	}
	if net, _ := netPostings(t, s, txnIdentity(balReq)); net["issuer_receivable:alipay/156"] != 10_000 ||
		net["merchant_payable:"+term.MID+"/156"] != -(10_000-fee(10_000)) {
		t.Errorf("balance payment postings: %v", net)
	}
	if b, _ := alipay.Balance(payer); b != startBalance-10_000 {
		t.Errorf("Alipay balance %d, want %d", b, startBalance-10_000)
	}

	// Alipay Huabei in 3 instalments: the receipt says HUABEI and 3; the credit line carries it.
	hbReq, hbResp := pay(code(alipay, payer), 30_000, 3)
	r = terminalsim.NewReceipt(term, hbReq, hbResp)
	if !r.Approved || r.Wallet != "ALIPAY" || r.Funding != "HUABEI" || r.Instalments != 3 {
		t.Errorf("Huabei receipt: %+v", r)
	}
	if !strings.Contains(r.String(), "HUABEI") {
		t.Errorf("printed receipt does not say HUABEI:\n%s", r)
	}
	if o, _ := alipay.Owed(payer); o != 30_000 {
		t.Errorf("owed %d after the Huabei payment, want 30000", o)
	}

	// WeChat and UnionPay QR codes go to their wallets; a 62 card still goes to its bank.
	for _, w := range []struct{ issuer, customer, f63 string }{
		{"wechat", "1690000000000001", "WECHAT|BALANCE|00"}, {"unionpay-qr", "3100000000000001", "UNIONPAY|BALANCE|00"}} {
		before, _ := wallets[w.issuer].Balance(w.customer)
		req, resp := pay(code(wallets[w.issuer], w.customer), 2_500, 0)
		if fieldOf(resp, 39) != "00" || fieldOf(resp, 63) != w.f63 {
			t.Errorf("%s payment answered 39=%s 63=%q", w.issuer, fieldOf(resp, 39), fieldOf(resp, 63))
		}
		if after, _ := wallets[w.issuer].Balance(w.customer); after != before-2_500 {
			t.Errorf("%s balance %d, want %d", w.issuer, after, before-2_500)
		}
		if net, _ := netPostings(t, s, txnIdentity(req)); net["issuer_receivable:"+w.issuer+"/156"] != 2_500 {
			t.Errorf("%s payment postings %v", w.issuer, net)
		}
	}
	card62 := approvedCard(t, cards.BankA, "62")
	cardReq := terminalsim.NewPurchase(term, card62, 1_234, "156", next())
	if resp := mustExchange(t, c, cardReq); fieldOf(resp, 39) != "00" || fieldOf(resp, 63) != "" {
		t.Errorf("62 card purchase answered 39=%s 63=%q", fieldOf(resp, 39), fieldOf(resp, 63))
	}
	if net, _ := netPostings(t, s, txnIdentity(cardReq)); net["issuer_receivable:"+cards.BankA+"/156"] != 1_234 {
		t.Errorf("62 card not booked to its bank: %v", net)
	}

	// A reused code and an expired code are declined and not booked.
	used := code(alipay, payer)
	if _, resp := pay(used, 100, 0); fieldOf(resp, 39) != "00" {
		t.Fatalf("first use of a code answered %s", fieldOf(resp, 39))
	}
	reuse, resp := pay(used, 100, 0)
	if fieldOf(resp, 39) != "14" || len(bookedEntries(t, s, txnIdentity(reuse))) != 0 {
		t.Errorf("reused code answered %s, booked %v", fieldOf(resp, 39), bookedEntries(t, s, txnIdentity(reuse)))
	}
	stale := code(alipay, payer)
	clk.add(walletsim.DefaultCodeTTL + time.Second)
	expired, resp := pay(stale, 100, 0)
	if fieldOf(resp, 39) != "54" || len(bookedEntries(t, s, txnIdentity(expired))) != 0 {
		t.Errorf("expired code answered %s, booked %v", fieldOf(resp, 39), bookedEntries(t, s, txnIdentity(expired)))
	}

	// Partial QR refunds go back to the funding source each payment came from, with a refund entry.
	balBefore, _ := alipay.Balance(payer)
	refund := terminalsim.NewQRRefund(balReq, 4_000, next())
	if resp := mustExchange(t, c, refund); fieldOf(resp, 39) != "00" || fieldOf(resp, 63) != "ALIPAY|BALANCE|00" {
		t.Errorf("balance refund answered 39=%s 63=%q", fieldOf(resp, 39), fieldOf(resp, 63))
	}
	if b, _ := alipay.Balance(payer); b != balBefore+4_000 {
		t.Errorf("balance %d after the refund, want %d", b, balBefore+4_000)
	}
	if e := bookedEntries(t, s, txnIdentity(refund)); len(e) != 1 || e[0].kind != "refund" || e[0].amount != 4_000 {
		t.Errorf("refund journal: %+v", e)
	}
	if net, _ := netPostings(t, s, txnIdentity(refund)); net["issuer_receivable:alipay/156"] != -4_000 {
		t.Errorf("refund postings: %v", net)
	}
	hbRefund := terminalsim.NewQRRefund(hbReq, 5_000, next())
	if resp := mustExchange(t, c, hbRefund); fieldOf(resp, 39) != "00" || fieldOf(resp, 63) != "ALIPAY|HUABEI|03" {
		t.Errorf("Huabei refund answered 39=%s 63=%q", fieldOf(resp, 39), fieldOf(resp, 63))
	}
	if o, _ := alipay.Owed(payer); o != 25_000 {
		t.Errorf("owed %d after the Huabei refund, want 25000", o)
	}

	// Huabei repayment by card at the POS: booked to the wallet's payable with the biller's fee;
	// the wallet hears of it once, even when the terminal repeats the request.
	card := approvedCard(t, cards.BankA, "")
	owedBefore, _ := alipay.Owed(huabeiFirst)
	rp := terminalsim.NewHuabeiRepayment(term, card, huabeiFirst, 100_001, "156", next())
	rpResp := mustExchange(t, c, rp)
	if fieldOf(rpResp, 39) != "00" {
		t.Fatalf("repayment answered %s", fieldOf(rpResp, 39))
	}
	billerFee := halfUpFee(100_001, huabeiFeeBP)
	net, _ := netPostings(t, s, txnIdentity(rp))
	want := map[string]int64{"issuer_receivable:" + cards.BankA + "/156": 100_001,
		ledger.WalletPayable("alipay") + "/156": -(100_001 - billerFee), ledger.AccountFeeIncome + "/156": -billerFee}
	for k, v := range want {
		if net[k] != v {
			t.Errorf("repayment posting %s = %d, want %d (all: %v)", k, net[k], v, net)
		}
	}
	if len(net) != len(want) {
		t.Errorf("repayment postings %v: want exactly %v", net, want)
	}
	repeat := terminalsim.Repeat(rp)
	if resp := mustExchange(t, c, repeat); fieldOf(resp, 39) != "00" || fieldOf(resp, 38) != fieldOf(rpResp, 38) {
		t.Errorf("0201 answered 39=%s 38=%s, want the first answer's 00 %s", fieldOf(resp, 39), fieldOf(resp, 38), fieldOf(rpResp, 38))
	}
	waitQueueEmpty(t, s)
	if o, _ := alipay.Owed(huabeiFirst); o != owedBefore-100_001 {
		t.Errorf("owed %d after the repayment, want %d (reduced once)", o, owedBefore-100_001)
	}
	if st := alipay.Stats(); st.Repayments != 1 {
		t.Errorf("wallet applied %d repayments, want 1", st.Repayments)
	}
	if e := bookedEntries(t, s, txnIdentity(rp)); len(e) != 1 || e[0].kind != "bill_payment" {
		t.Errorf("repayment journal: %+v", e)
	}

	// An unknown biller is 12 before the card issuer hears of it.
	bad := terminalsim.NewWalletRepayment(term, card, "NOSUCH", huabeiFirst, 77_777, "156", next())
	if resp := mustExchange(t, c, bad); fieldOf(resp, 39) != "12" {
		t.Errorf("unknown biller answered %s, want 12", fieldOf(resp, 39))
	}
	if recs := issuerRecordsOf(s.issuers[cards.BankA].Transactions(), card, 77_777); len(recs) != 0 {
		t.Errorf("the card issuer heard of a bill payment to an unknown biller: %+v", recs)
	}
}
