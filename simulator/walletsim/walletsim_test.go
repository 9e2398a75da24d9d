package walletsim

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/specs/emvqr"
)

const (
	payer    = "2088000000000001" // balance first, credit line 20,000.00
	huabeiFn = "2088000000000002" // Huabei first, owes 3,000.00
	poor     = "2088000000000003" // 50.00, no credit line
)

// clock is a settable time source for code validity.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func start(t *testing.T, cfg Config) (*Server, *linkClient, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2025, 11, 24, 10, 0, 0, 0, time.UTC)}
	if cfg.Wallet == "" {
		cfg.Wallet = Alipay
	}
	cfg.Now = clk.now
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return s, &linkClient{t: t, nc: nc, r: bufio.NewReader(nc)}, clk
}

// linkClient plays the switch's issuer link: framed IssuerLink messages over real TCP.
type linkClient struct {
	t    *testing.T
	nc   net.Conn
	r    *bufio.Reader
	stan int
}

func (c *linkClient) send(mti string, fields map[int]string) map[int]string {
	c.t.Helper()
	m := iso8583.NewMessage(specs.IssuerLink)
	m.MTI(mti)
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			c.t.Fatalf("field %d: %v", id, err)
		}
	}
	body, err := m.Pack()
	if err != nil {
		c.t.Fatal(err)
	}
	framed, _ := specs.AppendFrame(nil, body)
	if _, err := c.nc.Write(framed); err != nil {
		c.t.Fatal(err)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, specs.MaxFrameLength)
	got, err := specs.ReadFrame(c.r, buf)
	if err != nil {
		c.t.Fatal(err)
	}
	resp := iso8583.NewMessage(specs.IssuerLink)
	if err := resp.Unpack(got); err != nil {
		c.t.Fatal(err)
	}
	out := map[int]string{}
	for id := range resp.GetFields() {
		out[id], _ = resp.GetString(id)
	}
	out[0], _ = resp.GetMTI()
	return out
}

// request is a link request with fresh 11 and 7; it returns the fields sent, for field 90 later.
func (c *linkClient) request(proc, code string, amount int64, extra map[int]string) map[int]string {
	c.stan++
	f := map[int]string{3: proc, 4: fmt.Sprintf("%012d", amount), 7: fmt.Sprintf("1124%06d", c.stan),
		11: fmt.Sprintf("%06d", c.stan), 22: "031", 32: "12345678901", 41: "T0000001", 42: "M00000000000001", 49: "156"}
	if code != "" {
		f[2] = code
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func original(f map[int]string) string {
	return "0200" + f[11] + f[7] + f[32] + strings.Repeat("0", 11)
}

func issueCode(t *testing.T, s *Server, customer string) string {
	t.Helper()
	code, err := s.NewPaymentCode(customer)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestPaymentCodesHaveTheWalletsFormat(t *testing.T) {
	for _, c := range []struct {
		wallet, customer string
		length           int
		low, high        string
	}{{Alipay, "2088000000000001", 18, "25", "30"}, {WeChat, "1690000000000001", 18, "10", "15"},
		{UnionPay, "3100000000000001", 19, "62", "62"}} {
		s, err := New(Config{Wallet: c.wallet})
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			code, err := s.NewPaymentCode(c.customer)
			if err != nil {
				t.Fatal(err)
			}
			if len(code) != c.length || code[:2] < c.low || code[:2] > c.high || !digits(code) {
				t.Fatalf("%s code %s: want %d digits starting %s-%s", c.wallet, code, c.length, c.low, c.high)
			}
		}
	}
}

func TestBalancePaymentIsTakenOnceAndNamesTheFunding(t *testing.T) {
	s, link, _ := start(t, Config{})
	code := issueCode(t, s, payer)
	req := link.request("000000", code, 12345, nil)
	a := link.send("0200", req)
	if a[39] != "00" || a[63] != "ALIPAY|BALANCE|00" || a[38] == "" || a[2] != "" {
		t.Fatalf("answer %v: want 00 with 63 ALIPAY|BALANCE|00, an auth code and no field 2", a)
	}
	again := link.send("0200", req) // the link retransmits the same request
	if again[39] != "00" || again[38] != a[38] {
		t.Fatalf("retransmission answered %v, want the stored answer %v", again, a)
	}
	if b, _ := s.Balance(payer); b != 5_000_000-12345 {
		t.Errorf("balance %d, want %d (taken once)", b, 5_000_000-12345)
	}
	if st := s.Stats(); st.Payments != 1 || st.Duplicates != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestReusedUnknownAndExpiredCodesAreDeclined(t *testing.T) {
	s, link, clk := start(t, Config{})
	code := issueCode(t, s, payer)
	if a := link.send("0200", link.request("000000", code, 100, nil)); a[39] != "00" {
		t.Fatalf("first use: %v", a)
	}
	if a := link.send("0200", link.request("000000", code, 100, nil)); a[39] != "14" {
		t.Errorf("reused code answered %s, want 14", a[39])
	}
	if a := link.send("0200", link.request("000000", "281111111111111111", 100, nil)); a[39] != "14" {
		t.Errorf("code never issued answered %s, want 14", a[39])
	}
	late := issueCode(t, s, payer)
	clk.add(DefaultCodeTTL)
	if a := link.send("0200", link.request("000000", late, 100, nil)); a[39] != "54" {
		t.Errorf("expired code answered %s, want 54", a[39])
	}
	if b, _ := s.Balance(payer); b != 5_000_000-100 {
		t.Errorf("balance %d: only the first use may take money", b)
	}
}

func TestHuabeiInstalmentsDrawOnTheCreditLine(t *testing.T) {
	s, link, _ := start(t, Config{})
	cases := []struct {
		name, customer, instalments, want, f63 string
		owed, balance                          int64
	}{
		{"3 instalments", payer, "03", "00", "ALIPAY|HUABEI|03", 50_000, 5_000_000},
		{"12 instalments", payer, "12", "00", "ALIPAY|HUABEI|12", 100_000, 5_000_000},
		{"5 instalments are not offered", payer, "05", "12", "", 100_000, 5_000_000},
		{"no credit line", poor, "06", "57", "", 0, 5_000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := link.send("0200", link.request("000000", issueCode(t, s, c.customer), 50_000, map[int]string{63: c.instalments}))
			if a[39] != c.want || a[63] != c.f63 {
				t.Fatalf("answer 39=%s 63=%q, want %s %q", a[39], a[63], c.want, c.f63)
			}
			owed, _ := s.Owed(c.customer)
			bal, _ := s.Balance(c.customer)
			if owed != c.owed || bal != c.balance {
				t.Errorf("owed %d balance %d, want %d %d", owed, bal, c.owed, c.balance)
			}
		})
	}
	// A Huabei-first customer pays from the credit line without instalments; beyond it, 51.
	a := link.send("0200", link.request("000000", issueCode(t, s, huabeiFn), 1_000_000, nil))
	if a[63] != "ALIPAY|HUABEI|00" {
		t.Errorf("Huabei-first payment 63=%q", a[63])
	}
	if a := link.send("0200", link.request("000000", issueCode(t, s, huabeiFn), 4_000_000, nil)); a[39] != "51" {
		t.Errorf("beyond the credit line answered %s, want 51", a[39])
	}
	if a := link.send("0200", link.request("000000", issueCode(t, s, poor), 6_000, nil)); a[39] != "51" {
		t.Errorf("beyond the balance answered %s, want 51", a[39])
	}
}

func TestRefundsGoBackToTheFundingSourceNeverAboveThePayment(t *testing.T) {
	s, link, _ := start(t, Config{})
	bal := link.request("000000", issueCode(t, s, payer), 10_000, nil)
	hb := link.request("000000", issueCode(t, s, payer), 20_000, map[int]string{63: "06"})
	for _, r := range []map[int]string{bal, hb} {
		if a := link.send("0200", r); a[39] != "00" {
			t.Fatalf("payment %v", a)
		}
	}
	refund := func(orig map[int]string, amount int64) map[int]string {
		return link.send("0200", link.request("200000", "", amount, map[int]string{90: original(orig)}))
	}
	if a := refund(bal, 4_000); a[39] != "00" || a[63] != "ALIPAY|BALANCE|00" {
		t.Fatalf("balance refund %v", a)
	}
	if a := refund(hb, 5_000); a[39] != "00" || a[63] != "ALIPAY|HUABEI|06" {
		t.Fatalf("Huabei refund %v", a)
	}
	if b, _ := s.Balance(payer); b != 5_000_000-10_000+4_000 {
		t.Errorf("balance %d after the balance refund", b)
	}
	if o, _ := s.Owed(payer); o != 20_000-5_000 {
		t.Errorf("owed %d after the Huabei refund, want 15000", o)
	}
	if a := refund(bal, 6_001); a[39] != "13" {
		t.Errorf("refund above what is left answered %s, want 13", a[39])
	}
	if a := refund(map[int]string{11: "999999", 7: "1124999999", 32: "12345678901"}, 1); a[39] != "25" {
		t.Errorf("refund of an unknown payment answered %s, want 25", a[39])
	}
	// A reversal of the refund takes the money back again, once.
	r := link.request("200000", "", 1_000, map[int]string{90: original(bal)})
	if a := link.send("0200", r); a[39] != "00" {
		t.Fatal(a)
	}
	rev := link.request("200000", "", 1_000, map[int]string{90: original(r)})
	for range 2 {
		if a := link.send("0420", rev); a[39] != "00" {
			t.Fatalf("reversal %v", a)
		}
	}
	if b, _ := s.Balance(payer); b != 5_000_000-10_000+4_000 {
		t.Errorf("balance %d after the reversed refund", b)
	}
}

func TestReversalGivesAPaymentBackOnce(t *testing.T) {
	s, link, _ := start(t, Config{})
	p := link.request("000000", issueCode(t, s, payer), 30_000, map[int]string{63: "03"})
	link.send("0200", p)
	rev := link.request("000000", "", 30_000, map[int]string{90: original(p)})
	for _, mti := range []string{"0420", "0421"} {
		if a := link.send(mti, rev); a[39] != "00" || a[0] != "0430" {
			t.Fatalf("%s answered %v", mti, a)
		}
	}
	if o, _ := s.Owed(payer); o != 0 {
		t.Errorf("owed %d after the reversal, want 0", o)
	}
}

func TestRepaymentAdviceReducesWhatIsOwedOnce(t *testing.T) {
	s, link, _ := start(t, Config{})
	orig := link.request("500000", "", 0, nil)
	adv := link.request("500000", huabeiFn, 100_000, map[int]string{90: original(orig)})
	for _, mti := range []string{"0220", "0221", "0221"} {
		adv[11] = fmt.Sprintf("%06d", 500+len(mti)+int(mti[3])) // each repeat under a new link STAN
		if a := link.send(mti, adv); a[39] != "00" || a[0] != "0230" {
			t.Fatalf("%s answered %v", mti, a)
		}
	}
	if o, _ := s.Owed(huabeiFn); o != 300_000-100_000 {
		t.Errorf("owed %d, want 200000 (repaid once)", o)
	}
	// Paying more than is owed: the rest goes to the balance.
	over := link.request("500000", "", 250_000, map[int]string{48: "HUABEI|" + huabeiFn})
	if a := link.send("0200", over); a[39] != "00" {
		t.Fatalf("repayment request %v", a)
	}
	if o, _ := s.Owed(huabeiFn); o != 0 {
		t.Errorf("owed %d after overpaying", o)
	}
	if b, _ := s.Balance(huabeiFn); b != 100_000+50_000 {
		t.Errorf("balance %d, want 150000 (the overpayment)", b)
	}
	if a := link.send("0220", link.request("500000", "2088999999999999", 100, nil)); a[39] != "14" {
		t.Errorf("repayment of an unknown account answered %s, want 14", a[39])
	}
	if st := s.Stats(); st.Repayments != 2 || st.Duplicates != 2 {
		t.Errorf("stats %+v: want 2 repayments applied and 2 repeats from memory", st)
	}
}

// notifyKeys gives a wallet's HSM and an acquirer's, and the MAC key of order notifications in each:
// the acquirer's key exported under a KEK the two share and imported by the wallet.
func notifyKeys(t *testing.T) (walletHSM *hsm.HSM, keyW hsm.KeyBlock, acqHSM *hsm.HSM, keyA hsm.KeyBlock) {
	t.Helper()
	ctx := context.Background()
	walletHSM, acqHSM = hsm.NewDevelopment(), hsm.NewDevelopment()
	kekW, kekA, err := hsm.EstablishSharedKEK(ctx, walletHSM, acqHSM)
	if err != nil {
		t.Fatal(err)
	}
	keyA, _, err = acqHSM.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsageMACAlg3, Algorithm: hsm.TDES})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _, err := acqHSM.ExportKey(ctx, kekA, keyA)
	if err != nil {
		t.Fatal(err)
	}
	keyW, _, err = walletHSM.ImportKey(ctx, kekW, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	return walletHSM, keyW, acqHSM, keyA
}

func TestPayOrderCapturesOn200AndReleasesOtherwise(t *testing.T) {
	ctx := context.Background()
	walletHSM, keyW, acqHSM, keyA := notifyKeys(t)
	var mu sync.Mutex
	answers := map[string]int{"ORDER-OK": 200, "ORDER-LATE": 409}
	var seen []notification
	acq := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac, _ := hex.DecodeString(r.Header.Get("X-Poswitch-MAC"))
		if err := acqHSM.VerifyMAC(r.Context(), hsm.VerifyMAC{Key: keyA, Data: body, MAC: mac}); err != nil || r.Header.Get("X-Poswitch-Wallet") != "alipay" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var n notification
		_ = json.Unmarshal(body, &n)
		mu.Lock()
		seen = append(seen, n)
		mu.Unlock()
		if !strings.HasSuffix(r.URL.Path, "/orders/"+n.OrderID+"/payment") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		code := answers[n.OrderID]
		w.WriteHeader(code)
		if code == 200 {
			_, _ = w.Write([]byte(`{"result":"booked","auth_code":"123456","rrn":"000000000042"}`))
		} else {
			_, _ = w.Write([]byte(`{"result":"expired"}`))
		}
	}))
	defer acq.Close()
	s, _, _ := start(t, Config{HSM: walletHSM, NotifyKey: keyW, Acquirers: map[string]string{"cn.poswitch.qr": acq.URL}})
	payload := func(order string) string {
		p, err := emvqr.Build(emvqr.Payload{AcquirerGUID: "cn.poswitch.qr", MerchantID: "M1", TerminalID: "T1", OrderID: order,
			MCC: "5812", Currency: "156", Amount: "88.80", Country: "CN", MerchantName: "Tea House", MerchantCity: "Hangzhou"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pay, err := s.PayOrder(ctx, payload("ORDER-OK"), payer, "", 3)
	if err != nil || !pay.Captured || pay.AuthCode != "123456" || pay.Funding != FundingHuabei || pay.Amount != 8880 {
		t.Fatalf("paying a live order: %+v, %v", pay, err)
	}
	if o, _ := s.Owed(payer); o != 8880 {
		t.Errorf("owed %d after a captured Huabei order payment, want 8880", o)
	}
	pay, err = s.PayOrder(ctx, payload("ORDER-LATE"), payer, FundingBalance, 0)
	if err == nil || pay.Captured || pay.Status != 409 || pay.Result != "expired" {
		t.Fatalf("paying an expired order: %+v, %v", pay, err)
	}
	if b, _ := s.Balance(payer); b != 5_000_000 {
		t.Errorf("balance %d: the released payment must come back", b)
	}
	if _, err := s.PayOrder(ctx, payload("ORDER-OK")[:20]+"X"+payload("ORDER-OK")[21:], payer, "", 0); err == nil {
		t.Error("a payload with a bad CRC was paid")
	}
	if st := s.Stats(); st.Orders != 1 || st.OrdersFreed != 1 || len(seen) != 2 || seen[0].Instalments != 3 {
		t.Errorf("stats %+v, notifications %+v", st, seen)
	}
}

// A reversal advice (0420) naming a repayment advice (field 90: 0220 and the trace the advice
// named) puts back what the customer owed, once; one that overtakes its advice makes the advice,
// when it comes, move nothing.
func TestRepaymentReversedByItsAdviceTraceOnce(t *testing.T) {
	s, link, _ := start(t, Config{})
	orig := link.request("500000", "", 0, nil)
	adv := link.request("500000", huabeiFn, 100_000, map[int]string{90: original(orig)})
	if a := link.send("0220", adv); a[39] != "00" {
		t.Fatalf("advice answered %v", a)
	}
	rev := link.request("500000", "", 100_000, map[int]string{90: "0220" + original(orig)[4:]})
	for _, mti := range []string{"0420", "0421"} {
		if a := link.send(mti, rev); a[39] != "00" || a[0] != "0430" {
			t.Fatalf("%s answered %v", mti, a)
		}
		if o, _ := s.Owed(huabeiFn); o != 300_000 {
			t.Errorf("owed %d after the %s, want 300000 (the repayment undone once)", o, mti)
		}
	}

	early := link.request("500000", "", 0, nil)
	if a := link.send("0420", link.request("500000", "", 50_000, map[int]string{90: "0220" + original(early)[4:]})); a[39] != "00" {
		t.Fatalf("reversal of an advice not yet received answered %v", a)
	}
	if a := link.send("0221", link.request("500000", huabeiFn, 50_000, map[int]string{90: original(early)})); a[39] != "00" {
		t.Fatalf("late advice answered %v", a)
	}
	if o, _ := s.Owed(huabeiFn); o != 300_000 {
		t.Errorf("owed %d after an advice its reversal overtook, want 300000", o)
	}
}

// A captured order payment is remembered under the issuer trace the acquirer answered, so a refund
// naming it in field 90 (as an 0200 of that acquirer at the order's terminal) gives money back.
func TestOrderPaymentRefundedByItsIssuerTrace(t *testing.T) {
	ctx := context.Background()
	walletHSM, keyW, _, _ := notifyKeys(t)
	acq := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"result":"booked","auth_code":"123456","rrn":"000000000042","acquirer_id":"12345678901",` +
			`"stan":"004711","transmission_time":"1124100000"}`))
	}))
	defer acq.Close()
	s, link, _ := start(t, Config{HSM: walletHSM, NotifyKey: keyW, Acquirers: map[string]string{"cn.poswitch.qr": acq.URL}})
	payload, err := emvqr.Build(emvqr.Payload{AcquirerGUID: "cn.poswitch.qr", MerchantID: "M00000000000001", TerminalID: "T0000001",
		OrderID: "ORDER1", MCC: "5812", Currency: "156", Amount: "100.00", Country: "CN", MerchantName: "Tea House", MerchantCity: "Hangzhou"})
	if err != nil {
		t.Fatal(err)
	}
	pay, err := s.PayOrder(ctx, payload, payer, FundingBalance, 0)
	if err != nil || !pay.Captured || pay.STAN != "004711" || pay.TransmissionTime != "1124100000" {
		t.Fatalf("order payment: %+v, %v", pay, err)
	}
	named := "0200" + "004711" + "1124100000" + "12345678901" + strings.Repeat("0", 11)
	for _, c := range []struct {
		amount int64
		code   string
	}{{4_000, "00"}, {6_001, "13"}, {6_000, "00"}} {
		if a := link.send("0200", link.request("200000", "", c.amount, map[int]string{90: named})); a[39] != c.code {
			t.Errorf("refund of %d answered %s, want %s", c.amount, a[39], c.code)
		}
	}
	if b, _ := s.Balance(payer); b != 5_000_000 {
		t.Errorf("balance %d after refunding the whole order payment, want 5000000", b)
	}
}
