package qrorder

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
)

// Headers of a notification.
const (
	HeaderMAC    = "X-Poswitch-MAC"    // hex of the MAC over the exact body bytes under the wallet's notify key
	HeaderWallet = "X-Poswitch-Wallet" // the wallet's issuer ID (issuers[].id)
)

// Bounds of the notification server.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 8 << 10
	maxMACHexChars    = 32 // 16 bytes: an AES-CMAC block
	maxTxnIDChars     = 64
	maxLabelChars     = 16
	shutdownTimeout   = 5 * time.Second
)

var orderIDPattern = regexp.MustCompile(`^[0-9A-Z]{1,25}$`)

// PaymentPath is the URL path a wallet posts an order's payment to.
func PaymentPath(orderID string) string { return "/orders/" + orderID + "/payment" }

type notifier struct {
	server   *http.Server
	listener net.Listener
	slots    chan struct{}
	done     chan error
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// Serve opens the notification endpoint on Config.NotifyAddress and starts the periodic expiry
// sweep; Close stops both.
func (d *Desk) Serve() error {
	if d.notify != nil {
		return errors.New("qrorder: already serving")
	}
	ln, err := net.Listen("tcp", d.cfg.NotifyAddress)
	if err != nil {
		return fmt.Errorf("order notifications on %s: %w", d.cfg.NotifyAddress, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders/{id}/payment", d.handlePayment)
	n := &notifier{listener: ln, slots: make(chan struct{}, d.cfg.MaxConcurrentNotices), done: make(chan error, 1)}
	n.server = &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: d.cfg.BookTimeout + readTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: zap.NewStdLog(d.cfg.Log.Named("notify"))}
	d.notify = n
	go func() { n.done <- n.server.Serve(ln) }()
	ctx, stop := context.WithCancel(context.Background())
	n.stop = stop
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		tick := time.NewTicker(sweepEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := d.Sweep(ctx); err != nil && ctx.Err() == nil {
					d.cfg.Log.Warn("order expiry sweep", zap.Error(err))
				}
			}
		}
	}()
	return nil
}

// Addr is the bound address of the notification endpoint ("" before Serve).
func (d *Desk) Addr() string {
	if d.notify == nil {
		return ""
	}
	return d.notify.listener.Addr().String()
}

// Close stops the endpoint (letting notifications being booked finish) and the sweep.
func (d *Desk) Close() {
	if d == nil || d.notify == nil {
		return
	}
	n := d.notify
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout+d.cfg.BookTimeout)
	defer cancel()
	_ = n.server.Shutdown(ctx)
	<-n.done
	n.stop()
	n.wg.Wait()
}

type answer struct {
	Result   string `json:"result"`
	AuthCode string `json:"auth_code,omitempty"`
	RRN      string `json:"rrn,omitempty"`
	// The payment's issuer trace (200 only): the wallet records the payment under it, as if it had
	// received an 0200 with field 32, 11 and 7 so from this acquirer at the order's terminal.
	AcquirerID       string `json:"acquirer_id,omitempty"`
	STAN             string `json:"stan,omitempty"`
	TransmissionTime string `json:"transmission_time,omitempty"`
	Error            string `json:"error,omitempty"`
}

func (d *Desk) handlePayment(w http.ResponseWriter, r *http.Request) {
	select {
	case d.notify.slots <- struct{}{}:
		defer func() { <-d.notify.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		writeAnswer(w, http.StatusServiceUnavailable, answer{Result: ResultUnavailable, Error: "too many notifications at once"})
		return
	}
	out := d.notification(r)
	log := d.cfg.Log.Info
	if out.Status >= 500 || out.Status == http.StatusUnauthorized {
		log = d.cfg.Log.Warn
	}
	log("order payment notification", zap.String("order", r.PathValue("id")), zap.String("wallet", r.Header.Get(HeaderWallet)),
		zap.Int("status", out.Status), zap.String("result", out.Result), zap.String("reason", out.Reason))
	a := answer{Result: out.Result, AuthCode: out.AuthCode, RRN: out.RRN}
	if out.Status == http.StatusOK {
		a.AcquirerID, a.STAN, a.TransmissionTime = out.Trace.AcquirerID, out.Trace.STAN, out.Trace.TransmissionTime
	}
	if out.Status != http.StatusOK && out.Status != http.StatusConflict {
		a.Error = out.Reason
	}
	writeAnswer(w, out.Status, a)
}

// notification checks, in order: the body's size, the wallet and its MAC over the exact bytes, the
// body's fields; then pays the order.
func (d *Desk) notification(r *http.Request) Outcome {
	bad := func(status int, result, reason string) Outcome {
		return Outcome{Status: status, Result: result, Reason: reason}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, d.cfg.MaxNotifyBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return bad(http.StatusRequestEntityTooLarge, "malformed", fmt.Sprintf("body above %d bytes", d.cfg.MaxNotifyBodyBytes))
		}
		return bad(http.StatusBadRequest, "malformed", "reading the body: "+err.Error())
	}
	wallet := r.Header.Get(HeaderWallet)
	key, ok := d.cfg.WalletKeys[wallet]
	if !ok {
		return bad(http.StatusUnauthorized, "unauthorized", "unknown wallet "+fmt.Sprintf("%q", wallet))
	}
	macHex := r.Header.Get(HeaderMAC)
	mac, err := hex.DecodeString(macHex)
	if err != nil || len(macHex) > maxMACHexChars || len(mac) < hsm.MinMACLength {
		return bad(http.StatusUnauthorized, "unauthorized", "MAC header is not 8 to 32 hex digits")
	}
	if err := d.mac.VerifyMAC(r.Context(), hsm.VerifyMAC{Key: key, Data: body, MAC: mac}); err != nil {
		return bad(http.StatusUnauthorized, "unauthorized", "MAC does not verify: "+err.Error())
	}
	var p Payment
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return bad(http.StatusBadRequest, "malformed", "body is not the payment JSON: "+err.Error())
	}
	if dec.More() {
		return bad(http.StatusBadRequest, "malformed", "body holds more than one JSON value")
	}
	switch id := r.PathValue("id"); {
	case !orderIDPattern.MatchString(id) || p.OrderID != id:
		return bad(http.StatusBadRequest, "malformed", "order_id must be the order of the URL")
	case p.WalletTxnID == "" || len(p.WalletTxnID) > maxTxnIDChars:
		return bad(http.StatusBadRequest, "malformed", fmt.Sprintf("wallet_txn_id must be 1..%d characters", maxTxnIDChars))
	case len(p.Wallet) > maxLabelChars || len(p.Funding) > maxLabelChars:
		return bad(http.StatusBadRequest, "malformed", fmt.Sprintf("wallet and funding are at most %d characters", maxLabelChars))
	case p.Amount <= 0 || p.Amount > 999_999_999_999:
		return bad(http.StatusBadRequest, "malformed", "amount must be 1..999999999999 minor units")
	case len(p.Currency) != 3:
		return bad(http.StatusBadRequest, "malformed", "currency must be ISO 4217 numeric")
	case p.Instalments < 0 || p.Instalments > 99:
		return bad(http.StatusBadRequest, "malformed", "instalments must be 0..99")
	}
	// A wallet that hangs up mid-booking must not cut the booking short: the claim is settled
	// either way, and its retry gets the ledger's answer.
	return d.Pay(context.WithoutCancel(r.Context()), wallet, p)
}

func writeAnswer(w http.ResponseWriter, status int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}
