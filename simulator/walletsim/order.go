package walletsim

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/currency"
	"github.com/poswitch/poswitch/specs/emvqr"
)

// Payment is the outcome of paying a merchant-presented order (PayOrder).
type Payment struct {
	OrderID     string
	WalletTxnID string // the wallet's own reference, unique per payment; a repeat of it books nothing
	Wallet      string
	Customer    string
	Funding     string // BALANCE or HUABEI
	Instalments int
	Amount      int64 // minor units of Currency
	Currency    string
	Status      int    // HTTP status of the acquirer's last answer; 0 when it never answered
	Result      string // the acquirer's "result": booked, duplicate, expired, cancelled, …
	AuthCode    string
	RRN         string
	Captured    bool // the money was taken: the acquirer answered 200
	// The issuer trace the acquirer gave the payment (with 200): field 32, 11 and 7 of the 0200 a
	// refund, void or reversal names in field 90 at the order's terminal (TerminalID).
	AcquirerID, STAN, TransmissionTime, TerminalID string
}

// notification is the body of an order payment notification (docs/channels.md).
type notification struct {
	OrderID     string `json:"order_id"`
	Wallet      string `json:"wallet"`
	WalletTxnID string `json:"wallet_txn_id"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	Funding     string `json:"funding"`
	Instalments int    `json:"instalments"`
	PaidAt      string `json:"paid_at"`
}

type notifyAnswer struct {
	Result   string `json:"result"`
	AuthCode string `json:"auth_code"`
	RRN      string `json:"rrn"`
	// The payment's issuer trace (fields 32, 11, 7 of the 0200 it stands for).
	AcquirerID       string `json:"acquirer_id"`
	STAN             string `json:"stan"`
	TransmissionTime string `json:"transmission_time"`
}

// maxAnswerBytes bounds what the wallet reads of an acquirer's answer.
const maxAnswerBytes = 64 << 10

var orderSeq atomic.Uint64

// PayOrder plays the customer scanning a merchant-presented dynamic QR and paying it: it parses the
// EMVCo payload (CRC checked), reserves the amount on the customer's funding source ("" is the
// customer's preferred one; instalments 3, 6 or 12 draw on the credit line), POSTs the payment
// notification to the acquirer the payload names (Config.Acquirers), MACed under the notify key in
// the wallet's HSM, and captures the money on 200 or gives it back otherwise. A POST that gets no
// answer is repeated (same wallet_txn_id, at most 3 times) before the money goes back. The error
// says why the payment was not captured; the Payment says what the acquirer answered.
func (s *Server) PayOrder(ctx context.Context, payload, customer, funding string, instalments int) (Payment, error) {
	p, err := emvqr.Parse(payload)
	if err != nil {
		return Payment{}, fmt.Errorf("wallet-sim: reading the order QR: %w", err)
	}
	cur, ok := currency.ByNumeric(p.Currency)
	if !ok {
		return Payment{}, fmt.Errorf("wallet-sim: order currency %q unknown", p.Currency)
	}
	amount, err := emvqr.ParseAmount(p.Amount, cur.Exponent)
	if err != nil || amount <= 0 {
		return Payment{}, fmt.Errorf("wallet-sim: order amount %q: %v", p.Amount, err)
	}
	base, ok := s.cfg.Acquirers[p.AcquirerGUID]
	if !ok {
		return Payment{}, fmt.Errorf("wallet-sim: no notification address for acquirer %q", p.AcquirerGUID)
	}
	if s.cfg.HSM == nil || s.cfg.NotifyKey == "" {
		return Payment{}, fmt.Errorf("wallet-sim: no HSM or notify key to MAC the notification with")
	}
	txnID := fmt.Sprintf("%s%s%06d", s.cfg.Wallet[:2], s.now().UTC().Format("20060102150405"), orderSeq.Add(1)%1_000_000)
	e, err := s.book.reserve(customer, funding, p.Currency, txnID, amount, instalments)
	if err != nil {
		return Payment{}, err
	}
	pay := Payment{OrderID: p.OrderID, WalletTxnID: txnID, Wallet: s.cfg.Wallet, Customer: customer,
		Funding: e.rec.Funding, Instalments: instalments, Amount: amount, Currency: p.Currency, TerminalID: p.TerminalID}
	body, err := json.Marshal(notification{OrderID: p.OrderID, Wallet: s.cfg.Wallet, WalletTxnID: txnID, Amount: amount,
		Currency: p.Currency, Funding: pay.Funding, Instalments: instalments, PaidAt: s.now().UTC().Format(time.RFC3339)})
	if err == nil {
		var mac []byte
		mac, err = s.cfg.HSM.GenerateMAC(ctx, hsm.GenerateMAC{Key: s.cfg.NotifyKey, Data: body})
		if err == nil {
			url := strings.TrimRight(base, "/") + "/orders/" + p.OrderID + "/payment"
			err = s.notify(ctx, url, body, strings.ToUpper(hex.EncodeToString(mac)), &pay)
		}
	}
	pay.Captured = err == nil && pay.Status == http.StatusOK
	var trace txnKey
	if pay.Captured && validTrace(pay) {
		trace = txnKey{stan: pay.STAN, transmission: pay.TransmissionTime, acquirer: strings.TrimLeft(pay.AcquirerID, "0"),
			terminal: strings.TrimSpace(p.TerminalID)}
	} else if pay.Captured {
		s.log.Warn("order payment captured without a usable issuer trace: its refunds will not be matched",
			zap.String("order", p.OrderID), zap.String("stan", pay.STAN), zap.String("transmission_time", pay.TransmissionTime))
	}
	s.book.settle(e, pay.Captured, fmt.Sprint(pay.Status), pay.AuthCode, trace)
	if pay.Captured {
		s.counters.orders.Add(1)
		return pay, nil
	}
	s.counters.ordersFreed.Add(1)
	if err == nil {
		err = fmt.Errorf("wallet-sim: acquirer answered %d %q: payment released", pay.Status, pay.Result)
	}
	s.log.Info("order payment released", zap.String("order", p.OrderID), zap.Error(err))
	return pay, err
}

// notify POSTs the notification, repeating it while no answer comes (a timeout or a dropped
// connection); any HTTP answer ends it.
func (s *Server) notify(ctx context.Context, url string, body []byte, mac string, pay *Payment) error {
	var last error
	for attempt := 1; attempt <= maxNotifyAttempts; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Poswitch-MAC", mac)
		req.Header.Set("X-Poswitch-Wallet", s.cfg.IssuerID)
		resp, err := s.http.Do(req)
		if err != nil {
			last = err
			if ctx.Err() != nil {
				break
			}
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
		_ = resp.Body.Close()
		pay.Status = resp.StatusCode
		var a notifyAnswer
		if err == nil && json.Unmarshal(data, &a) == nil {
			pay.Result, pay.AuthCode, pay.RRN = a.Result, a.AuthCode, a.RRN
			pay.AcquirerID, pay.STAN, pay.TransmissionTime = a.AcquirerID, a.STAN, a.TransmissionTime
		}
		return nil
	}
	return errors.Join(fmt.Errorf("wallet-sim: notifying %s: no answer after %d attempts", url, maxNotifyAttempts), last)
}

// validTrace tells whether the acquirer's answer carries an issuer trace field 90 can name: a
// 6-digit STAN, a 10-digit MMDDhhmmss time and an acquirer ID of 1 to 11 digits.
func validTrace(p Payment) bool {
	return len(p.STAN) == 6 && digits(p.STAN) && len(p.TransmissionTime) == 10 && digits(p.TransmissionTime) &&
		len(p.AcquirerID) >= 1 && len(p.AcquirerID) <= 11 && digits(p.AcquirerID)
}
