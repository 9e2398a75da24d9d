package integration

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/simulator/keyceremony"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/simulator/walletsim"
	"github.com/poswitch/poswitch/specs/emvqr"
)

// orderWallet is the wallet-sim of the order tests and the keys it notifies with.
type orderWallet struct {
	sim        *walletsim.Server
	hsm        *hsm.HSM
	key        hsm.KeyBlock // the wallet's copy of the notify key
	switchKey  hsm.KeyBlock // issuers[].notify_key
	notifyAddr string
}

const (
	orderWalletIssuer = "alipay"
	orderTTL          = 10 * time.Second
)

// startOrderStack runs the estate with merchant-presented orders on: the switch's in-process HSM
// (a TPK terminal gives it one), a wallet-sim whose notify key the key ceremony shared with the
// switch, and channels.orders pointing at a free port. edits change the configuration further.
func startOrderStack(t *testing.T, edits ...func(y string) string) (*stack, *orderWallet) {
	w := &orderWallet{}
	s := startStack(t, stackOptions{
		pinPads: map[int]string{1: keyceremony.TPK},
		before: func(s *stack) {
			ctx := context.Background()
			w.hsm = hsm.NewDevelopment()
			var err error
			if w.switchKey, w.key, err = keyceremony.WalletNotifyKey(ctx, s.hsm, w.hsm, hsm.TDES); err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the notification endpoint
			if err != nil {
				t.Fatal(err)
			}
			w.notifyAddr = ln.Addr().String()
			ln.Close()
			w.sim, err = walletsim.New(walletsim.Config{Wallet: walletsim.Alipay, IssuerID: orderWalletIssuer,
				HSM: w.hsm, NotifyKey: w.key, Acquirers: map[string]string{"cn.poswitch.qr": "http://" + w.notifyAddr}})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.sim.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.sim.Close() })
		},
		yamlEdit: func(s *stack, y string) string {
			wallet := fmt.Sprintf("  - id: %s\n    endpoints: [%s]\n    wallet: true\n    notify_key: %q\n",
				orderWalletIssuer, w.sim.Addr(), string(w.switchKey))
			y = strings.Replace(y, "issuers:\n", "issuers:\n"+wallet, 1)
			for _, edit := range edits {
				y = edit(y)
			}
			return y + fmt.Sprintf("channels:\n  orders:\n    notify_address: %s\n    ttl: %s\n", w.notifyAddr, orderTTL)
		},
	})
	return s, w
}

// zbarDecode reads the QR code in a PNG with Debian's zbarimg, a reader independent of the encoder.
// The test fails without it: `make test` installs zbar-tools.
func zbarDecode(t *testing.T, path string) string {
	t.Helper()
	bin, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Fatalf("zbarimg is required to check the QR code (apt-get install zbar-tools): %v", err)
	}
	out, err := exec.Command(bin, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
	if err != nil {
		t.Fatalf("zbarimg %s: %v", path, err)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// orderRow is what the ledger and the orders table hold for one order.
type orderRow struct {
	status, txnKey, rrn, authCode string
	entries                       int
	kind, entryStatus, issuer     string
	entryMode                     string
	amount, fee                   int64
}

func (s *stack) order(t *testing.T, id string) orderRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var r orderRow
	if err := conn.QueryRow(ctx, `SELECT status, txn_key, rrn, auth_code FROM v_qr_orders WHERE order_id = $1`, id).
		Scan(&r.status, &r.txnKey, &r.rrn, &r.authCode); err != nil {
		t.Fatalf("order %s: %v", id, err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM journal_entry WHERE txn_key = $1 OR rrn = $2`, r.txnKey, r.rrn).
		Scan(&r.entries); err != nil {
		t.Fatal(err)
	}
	if r.entries == 1 {
		if err := conn.QueryRow(ctx, `SELECT kind, status, issuer, entry_mode, amount, fee FROM journal_entry WHERE txn_key = $1`,
			r.txnKey).Scan(&r.kind, &r.entryStatus, &r.issuer, &r.entryMode, &r.amount, &r.fee); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// notify posts a payment notification as a wallet would, MACed with key in the wallet's HSM
// (or with mac when it is not empty), and returns the HTTP status and the answer's result.
func (w *orderWallet) notify(t *testing.T, orderID string, body map[string]any, wallet, mac string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if mac == "" {
		m, err := w.hsm.GenerateMAC(ctx, hsm.GenerateMAC{Key: w.key, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		mac = hex.EncodeToString(m)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.notifyAddr+"/orders/"+orderID+"/payment", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Poswitch-MAC", mac)
	req.Header.Set("X-Poswitch-Wallet", wallet)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var a struct {
		Result string `json:"result"`
	}
	_ = json.Unmarshal(raw, &a)
	return resp.StatusCode, a.Result
}

func notification(orderID, walletTxnID string, amount int64) map[string]any {
	return map[string]any{"order_id": orderID, "wallet": walletsim.Alipay, "wallet_txn_id": walletTxnID, "amount": amount,
		"currency": "156", "funding": walletsim.FundingBalance, "instalments": 0, "paid_at": time.Now().UTC().Format(time.RFC3339)}
}

func TestQROrderShownScannedPaidAndBookedOnce(t *testing.T) {
	s, w := startOrderStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[0] // its merchant has the 45 bp fee override
	customer := walletsim.DefaultCustomers(walletsim.Alipay)[0].ID
	stan := 100
	next := func() int { stan++; return stan }

	// An order that nobody pays: created first, checked last, after its TTL.
	lapsing, _, err := terminalsim.CreateOrder(ctx, c, term, 500, "156", next())
	if err != nil {
		t.Fatal(err)
	}

	// The order: shown as a QR, read back by an independent reader, paid by the wallet's customer.
	const amount = 12345
	o, created, err := terminalsim.CreateOrder(ctx, c, term, amount, "156", next())
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(t.TempDir(), "order.png")
	if err := terminalsim.WriteQRPNG(png, o.Payload, 0); err != nil {
		t.Fatal(err)
	}
	scanned := zbarDecode(t, png)
	if scanned != o.Payload {
		t.Fatalf("zbarimg read %q, terminal-sim showed %q", scanned, o.Payload)
	}
	if crc := emvqr.CRC(scanned[:len(scanned)-4]); crc != scanned[len(scanned)-4:] {
		t.Fatalf("payload CRC %s, content gives %s", scanned[len(scanned)-4:], crc)
	}
	p, err := emvqr.Parse(scanned)
	if err != nil {
		t.Fatal(err)
	}
	f48, _ := created.GetString(48)
	if p.OrderID != o.ID || p.OrderID != f48 || p.Amount != "123.45" ||
		p.Currency != "156" || p.MerchantID != term.MID || p.TerminalID != term.TID || p.AcquirerGUID != "cn.poswitch.qr" {
		t.Fatalf("payload says %+v; order %s of 123.45 CNY at %s/%s", p, o.ID, term.MID, term.TID)
	}
	if text, err := terminalsim.QRText(o.Payload); err != nil || !strings.ContainsAny(text, "▀▄█") {
		t.Fatalf("terminal drawing: %v\n%s", err, text)
	}
	unpaid, err := c.Send(ctx, terminalsim.NewOrderStatus(o, next()))
	if err != nil {
		t.Fatalf("status before payment: %v", err)
	}
	if code, _ := unpaid.GetString(39); code != "09" {
		t.Fatalf("status before payment: %s, want 09 (in progress)", code)
	}

	pay, err := w.sim.PayOrder(ctx, scanned, customer, "", 0)
	if err != nil || !pay.Captured || pay.Status != http.StatusOK || pay.Result != "booked" {
		t.Fatalf("wallet payment: %+v, %v; want 200 booked and captured", pay, err)
	}
	res, err := terminalsim.PollOrder(ctx, c, o, terminalsim.PollConfig{Interval: 100 * time.Millisecond, Deadline: 30 * time.Second, NextSTAN: next})
	if err != nil || res.Status != terminalsim.OrderPaid {
		t.Fatalf("terminal poll: %+v, %v; want paid", res, err)
	}
	auth, _ := res.Response.GetString(38)
	rrn, _ := res.Response.GetString(37)
	if auth != pay.AuthCode || rrn != pay.RRN {
		t.Fatalf("terminal sees auth %s rrn %s, the wallet was told %s %s", auth, rrn, pay.AuthCode, pay.RRN)
	}
	rc := terminalsim.NewReceipt(term, res.Request, res.Response)
	if !rc.Approved || rc.Wallet != walletsim.Alipay || rc.Funding != walletsim.FundingBalance || rc.Amount != amount ||
		rc.Currency != "CNY" || !rc.NoSignatureRequired || rc.SignatureRequired || rc.AuthCode != pay.AuthCode {
		t.Fatalf("receipt:\n%s", rc)
	}

	r := s.order(t, o.ID)
	fee := halfUpFee(amount, s.feeBP(term.MID))
	if r.status != "paid" || r.entries != 1 || r.kind != "purchase" || r.entryStatus != "booked" || r.issuer != orderWalletIssuer ||
		r.entryMode != "032" || r.amount != amount || r.fee != fee || r.rrn != pay.RRN || r.authCode != pay.AuthCode {
		t.Fatalf("order row and ledger: %+v; want paid, one booked purchase of %d for %s with fee %d", r, amount, orderWalletIssuer, fee)
	}

	// The wallet repeats its notification (same wallet_txn_id): 200 duplicate, nothing new booked.
	if code, result := w.notify(t, o.ID, notification(o.ID, pay.WalletTxnID, amount), orderWalletIssuer, ""); code != http.StatusOK || result != "duplicate" {
		t.Fatalf("repeated notification: %d %q, want 200 duplicate", code, result)
	}
	// Another wallet transaction for the paid order is refused and the customer keeps the money.
	again, err := w.sim.PayOrder(ctx, scanned, customer, "", 0)
	if err == nil || again.Captured || again.Status != http.StatusConflict {
		t.Fatalf("second payment of a paid order: %+v, %v; want 409 and released", again, err)
	}
	if r := s.order(t, o.ID); r.entries != 1 || r.fee != fee {
		t.Fatalf("after the repeats the ledger holds %d entries (fee %d) for the order, want 1 (%d)", r.entries, r.fee, fee)
	}

	// A cancelled order: cancel wins, the payment gets 409 cancelled, nothing is booked.
	cancelled, _, err := terminalsim.CreateOrder(ctx, c, term, 2000, "156", next())
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := terminalsim.CancelOrder(ctx, c, cancelled, next()); err != nil {
		t.Fatal(err)
	} else if code, _ := resp.GetString(39); code != "00" {
		t.Fatalf("cancel: %s, want 00", code)
	}
	late, err := w.sim.PayOrder(ctx, cancelled.Payload, customer, "", 0)
	if err == nil || late.Captured || late.Status != http.StatusConflict || late.Result != "cancelled" {
		t.Fatalf("payment of a cancelled order: %+v, %v; want 409 cancelled, released", late, err)
	}
	if res, err := terminalsim.PollOrder(ctx, c, cancelled, terminalsim.PollConfig{NextSTAN: next}); err != nil || res.Status != terminalsim.OrderCancelled {
		t.Fatalf("poll of a cancelled order: %+v, %v", res, err)
	}
	if resp, err := terminalsim.CancelOrder(ctx, c, cancelled, next()); err != nil {
		t.Fatal(err)
	} else if code, _ := resp.GetString(39); code != "17" {
		t.Fatalf("second cancel: %s, want 17 (already cancelled)", code)
	}
	if r := s.order(t, cancelled.ID); r.status != "cancelled" || r.entries != 0 {
		t.Fatalf("cancelled order: %+v; want cancelled with nothing booked", r)
	}

	// A pending order refuses what is not its wallet's, well-formed, matching payment.
	open, _, err := terminalsim.CreateOrder(ctx, c, term, 3000, "156", next())
	if err != nil {
		t.Fatal(err)
	}
	good := notification(open.ID, "TXN-BAD-1", 3000)
	for _, tc := range []struct {
		name, wallet, mac, order string
		body                     map[string]any
		status                   int
	}{
		{"bad MAC", orderWalletIssuer, strings.Repeat("0", 16), open.ID, good, http.StatusUnauthorized},
		{"unknown wallet", "bank-a", "", open.ID, good, http.StatusUnauthorized},
		{"unknown order", orderWalletIssuer, "", "0000000000000000DEAD", notification("0000000000000000DEAD", "TXN-BAD-2", 3000), http.StatusNotFound},
		{"amount differs", orderWalletIssuer, "", open.ID, notification(open.ID, "TXN-BAD-3", 2999), http.StatusUnprocessableEntity},
		{"order of another URL", orderWalletIssuer, "", cancelled.ID, good, http.StatusBadRequest},
	} {
		if code, result := w.notify(t, tc.order, tc.body, tc.wallet, tc.mac); code != tc.status {
			t.Errorf("%s: %d %q, want %d", tc.name, code, result, tc.status)
		}
	}
	if r := s.order(t, open.ID); r.status != "pending" || r.entries != 0 {
		t.Fatalf("after refused notifications the order is %+v; want pending with nothing booked", r)
	}

	// A cancel racing a payment: exactly one wins, and the ledger agrees with the winner.
	payWins := int64(0)
	for i := 0; i < 4; i++ {
		race, _, err := terminalsim.CreateOrder(ctx, c, term, int64(4000+i), "156", next())
		if err != nil {
			t.Fatal(err)
		}
		paid := make(chan walletsim.Payment, 1)
		go func() {
			p, _ := w.sim.PayOrder(ctx, race.Payload, customer, "", 0)
			paid <- p
		}()
		resp, err := terminalsim.CancelOrder(ctx, c, race, next())
		if err != nil {
			t.Fatal(err)
		}
		p := <-paid
		code, _ := resp.GetString(39)
		r := s.order(t, race.ID)
		cancelWon, payWon := code == "00", p.Captured && p.Status == http.StatusOK
		switch {
		case cancelWon == payWon:
			t.Fatalf("race %d: cancel answered %s and the payment %d %q: exactly one must win", i, code, p.Status, p.Result)
		case payWon && (r.status != "paid" || r.entries != 1 || code != "12" && code != "09"):
			t.Fatalf("race %d: payment won, cancel answered %s, order %+v", i, code, r)
		case cancelWon && (r.status != "cancelled" || r.entries != 0 || p.Status != http.StatusConflict):
			t.Fatalf("race %d: cancel won, payment %d %q, order %+v", i, p.Status, p.Result, r)
		}
		if payWon {
			payWins++
		}
	}

	// The order nobody paid expires; its late payment is refused and nothing is booked.
	res, err = terminalsim.PollOrder(ctx, c, lapsing, terminalsim.PollConfig{Interval: 250 * time.Millisecond,
		Deadline: orderTTL + 20*time.Second, NextSTAN: next})
	if err != nil || res.Status != terminalsim.OrderExpired {
		t.Fatalf("poll of the unpaid order: %+v, %v; want expired", res, err)
	}
	expired, err := w.sim.PayOrder(ctx, lapsing.Payload, customer, "", 0)
	if err == nil || expired.Captured || expired.Status != http.StatusConflict || expired.Result != "expired" {
		t.Fatalf("payment of an expired order: %+v, %v; want 409 expired, released", expired, err)
	}
	if r := s.order(t, lapsing.ID); r.status != "expired" || r.entries != 0 {
		t.Fatalf("expired order: %+v; want expired with nothing booked", r)
	}
	if st := w.sim.Stats(); st.Orders != 1+payWins {
		t.Fatalf("wallet-sim captured %d order payments, want %d: the paid order and the races the payment won (stats %+v)", st.Orders, 1+payWins, st)
	}
}
