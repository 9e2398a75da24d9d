package qrorder

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/txn"
)

// Payment is a wallet's notification that its customer paid an order (docs/channels.md, the body of
// POST /orders/{id}/payment).
type Payment struct {
	OrderID     string    `json:"order_id"`
	Wallet      string    `json:"wallet"`        // brand for the receipt: ALIPAY, WECHAT, UNIONPAY
	WalletTxnID string    `json:"wallet_txn_id"` // the wallet's own transaction ID; a repeat carries the same
	Amount      int64     `json:"amount"`        // minor units of Currency
	Currency    string    `json:"currency"`      // ISO 4217 numeric
	Funding     string    `json:"funding"`       // BALANCE, HUABEI, …
	Instalments int       `json:"instalments"`
	PaidAt      time.Time `json:"paid_at"`
}

// Results of a notification, as the answer's "result" says them.
const (
	ResultBooked      = "booked"      // 200: booked now
	ResultDuplicate   = "duplicate"   // 200: this wallet transaction was booked before; nothing new
	ResultExpired     = "expired"     // 409
	ResultCancelled   = "cancelled"   // 409
	ResultPaid        = "paid"        // 409: another wallet transaction paid the order
	ResultNotFound    = "not_found"   // 404
	ResultMismatch    = "mismatch"    // 422: amount or currency differ from the order
	ResultUnavailable = "unavailable" // 503: the ledger did not confirm; the wallet keeps nothing and may retry
	ResultError       = "error"       // 500
)

// Outcome is what a notification got: the HTTP status and the answer's fields.
type Outcome struct {
	Status   int
	Result   string
	AuthCode string
	RRN      string
	// Trace is the payment's issuer trace (set with a 200): how the wallet names it in field 90 when
	// the switch later sends it a refund, void or reversal of it.
	Trace  Trace
	Reason string // for logs and the answer's "error"
}

// Trace is an order payment's issuer trace: the identity an 0200 from this acquirer would have had
// at the wallet had the switch sent one (field 32 AcquirerID, 11 STAN, 7 TransmissionTime, at the
// order's terminal, field 41). The switch books the payment with it (Booking.IssuerSTAN/IssuerTime),
// so a refund's or reversal's field 90 names it as the wallet recorded it.
type Trace struct {
	AcquirerID       string // field 32
	STAN             string // field 11, 6 digits
	TransmissionTime string // field 7, MMDDhhmmss UTC
}

// traceOf is the issuer trace of an order claimed at claimedAt, derived from the stored claim so
// the booking, every repeat notification and a repair all see the same one without another column:
// field 7 is the claim's second in UTC (as a link stamps it when it sends) and the STAN its
// microsecond (1..999999). Two payments share a trace only if they were claimed in the same second
// and microsecond at the same terminal; a released claim (no 200) leaves nothing at the wallet, and
// the next claim gets a new trace.
func traceOf(acquirer string, claimedAt time.Time) Trace {
	at := claimedAt.UTC()
	return Trace{AcquirerID: acquirer, STAN: fmt.Sprintf("%06d", at.Nanosecond()/1000%999_999+1),
		TransmissionTime: at.Format("0102150405")}
}

// maxClaimAttempts bounds the claim loop: a claim misses only when another request moved the
// order in between, and each miss reads the state that request left.
const maxClaimAttempts = 3

// Pay claims the order for the wallet transaction, books it as a purchase through the ledger
// booker and marks it paid; it returns 200 only once the entry is durable. walletIssuer is the
// issuer whose MAC the notification carried.
func (d *Desk) Pay(ctx context.Context, walletIssuer string, p Payment) Outcome {
	for attempt := 0; attempt < maxClaimAttempts; attempt++ {
		o, err := d.Lookup(ctx, p.OrderID)
		if errors.Is(err, pipeline.ErrOrderNotFound) {
			return Outcome{Status: http.StatusNotFound, Result: ResultNotFound, Reason: "no such order"}
		}
		if err != nil {
			return d.unavailable(p, err)
		}
		if p.Amount != o.Amount || p.Currency != o.Currency {
			return Outcome{Status: http.StatusUnprocessableEntity, Result: ResultMismatch,
				Reason: fmt.Sprintf("order is %d of %s, payment says %d of %s", o.Amount, o.Currency, p.Amount, p.Currency)}
		}
		switch o.Status {
		case pipeline.OrderExpired:
			return Outcome{Status: http.StatusConflict, Result: ResultExpired, Reason: "order expired unpaid"}
		case pipeline.OrderCancelled:
			return Outcome{Status: http.StatusConflict, Result: ResultCancelled, Reason: "order cancelled by the terminal"}
		case pipeline.OrderPaying, pipeline.OrderPaid:
			if o.WalletIssuer != walletIssuer || o.WalletTxnID != p.WalletTxnID {
				return Outcome{Status: http.StatusConflict, Result: ResultPaid, Reason: "order paid by another wallet transaction"}
			}
			// A repeat of the notification that claimed it: book again (the ledger books the
			// identity once) so the answer is the ledger's.
			return d.book(ctx, o, true)
		}
		claimed, err := scanOrder(d.pool.QueryRow(ctx, `UPDATE qr_order SET status = 'paying', wallet_issuer = $2,
			wallet_txn_id = $3, wallet = $4, funding = $5, instalments = $6, wallet_paid_at = $7, claimed_at = clock_timestamp()
			WHERE order_id = $1 AND status = 'pending' AND expires_at > clock_timestamp()
			RETURNING `+orderColumns, o.ID, walletIssuer, p.WalletTxnID, p.Wallet, p.Funding, p.Instalments, nullTime(p.PaidAt)))
		switch {
		case err == nil:
			return d.book(ctx, claimed, false)
		case isUniqueViolation(err):
			return Outcome{Status: http.StatusUnprocessableEntity, Result: ResultMismatch,
				Reason: "wallet_txn_id already paid another order"}
		case !errors.Is(err, pgx.ErrNoRows):
			return d.unavailable(p, err)
		}
		// Someone moved the order (a cancel, an expiry, another payment) since it was read: look again.
	}
	return Outcome{Status: http.StatusServiceUnavailable, Result: ResultUnavailable, Reason: "order kept changing"}
}

func (d *Desk) unavailable(p Payment, err error) Outcome {
	d.cfg.Log.Warn("order payment not booked", zap.String("order", p.OrderID), zap.String("wallet_txn_id", p.WalletTxnID), zap.Error(err))
	return Outcome{Status: http.StatusServiceUnavailable, Result: ResultUnavailable, Reason: "the switch could not book the payment; retry"}
}

// Purchase is the purchase transaction an order's payment books: the order's identity (the creating
// 0600's acquirer, terminal, STAN and transmission time, class 60), the wallet as issuer, entry mode
// 032 and the references fixed when the order was made. Built from the stored order only, so a
// repeat books identical content.
func Purchase(o Order) *txn.Transaction {
	at := o.CreatedAt
	if o.ClaimedAt != nil {
		at = *o.ClaimedAt
	}
	trace := traceOf(o.Acquirer, at)
	return &txn.Transaction{
		MTI: orderMTI, Type: txn.TypePurchase, ProcessingCode: "000000", AcquirerID: o.Acquirer,
		TerminalID: o.Terminal, MerchantID: o.Merchant, STAN: o.STAN, TransmissionTime: o.Transmission,
		RRN: o.RRN, AuthCode: o.AuthCode, EntryMode: entryMode, Amount: o.Amount, Currency: o.Currency,
		IssuerID: o.WalletIssuer, Received: at, Response: txn.RCApproved, OrderID: o.ID,
		Wallet: o.Wallet, FundingSource: o.Funding, Instalments: o.Instalments,
		IssuerSTAN: trace.STAN, IssuerTime: trace.TransmissionTime,
	}
}

// book books o's purchase and marks the order paid.
func (d *Desk) book(ctx context.Context, o Order, repeat bool) Outcome {
	t := Purchase(o)
	if t.Key() != o.TxnKey {
		// The stored identity and the one rebuilt from the order's parts must agree, or a repeat
		// would book under another key.
		return Outcome{Status: http.StatusInternalServerError, Result: ResultError,
			Reason: fmt.Sprintf("order %s: identity %q rebuilt as %q", o.ID, o.TxnKey, t.Key())}
	}
	bctx, cancel := context.WithTimeout(ctx, d.cfg.BookTimeout)
	defer cancel()
	res, err := d.booker.Book(bctx, t)
	if err != nil {
		// The claim stays: a retry of this wallet transaction books it, and Lookup settles it by
		// the ledger if none comes.
		return d.unavailable(Payment{OrderID: o.ID, WalletTxnID: o.WalletTxnID}, err)
	}
	if res.Status != pipeline.StatusBooked {
		d.cfg.Log.Error("the ledger refused an order's purchase", zap.String("order", o.ID), zap.String("status", res.Status),
			zap.String("reason", res.Reason))
		return Outcome{Status: http.StatusInternalServerError, Result: ResultError, Reason: "the ledger refused the payment"}
	}
	if _, err := d.pool.Exec(ctx, `UPDATE qr_order SET status = 'paid', fee = $2, ended_at = clock_timestamp()
		WHERE order_id = $1 AND status = 'paying'`, o.ID, res.Fee); err != nil {
		// Booked and durable; the order row catches up on the next Lookup (repair) or repeat.
		d.cfg.Log.Warn("order booked but not marked paid yet", zap.String("order", o.ID), zap.Error(err))
	}
	result := ResultBooked
	if res.Duplicate || (repeat && o.Status == pipeline.OrderPaid) {
		result = ResultDuplicate
	}
	return Outcome{Status: http.StatusOK, Result: result, AuthCode: o.AuthCode, RRN: o.RRN,
		Trace: Trace{AcquirerID: o.Acquirer, STAN: t.IssuerSTAN, TransmissionTime: t.IssuerTime}}
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
