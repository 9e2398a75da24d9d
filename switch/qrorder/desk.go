// Package qrorder is the switch's desk for merchant-presented dynamic QR orders: a terminal asks for
// an order of an amount (0600, processing code 71), gets an EMVCo QRCPS payload to show, and polls
// its status (72) or cancels it (73); the customer's wallet pays it and tells the switch over HTTP
// (notify.go), and the desk books the payment as a purchase through the node's ledger booker. Orders
// live in PostgreSQL (table qr_order, migration 00007); their status moves
//
//	pending → paying → paid
//	pending → cancelled | expired
//
// and every move is one conditional UPDATE, so a cancel racing a payment cannot both win, and a
// repeated notification finds the order already claimed by the same wallet transaction and books
// nothing new (the booking's identity is the order's).
package qrorder

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/currency"
	"github.com/poswitch/poswitch/specs/emvqr"
	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/txn"
)

// Defaults and bounds.
const (
	DefaultTTL                  = 5 * time.Minute
	DefaultMaxOpenPerTerminal   = 8
	DefaultCountry              = "CN"
	DefaultCity                 = "BEIJING"
	DefaultMaxNotifyBodyBytes   = 4 << 10
	DefaultBookTimeout          = 10 * time.Second
	DefaultMaxConcurrentNotices = 64
	// repairAfter is how long an order may stay "paying" (claimed, booking not confirmed) before a
	// status query asks the ledger what became of it: longer than any booking may take.
	repairAfter  = time.Minute
	sweepEvery   = 10 * time.Second
	maxSweepRows = 1000
	orderIDChars = 20
	// entryMode is field 22 of the booked purchase: 03 bar code / QR, 2 no PIN entry possible (the
	// customer authenticated in their wallet).
	entryMode = "032"
	// orderMTI makes the payment's identity the creating 0600's (class "60"), which nothing else
	// books: acquirer | terminal | STAN | transmission time | 60.
	orderMTI = "0600"
)

// Merchant is what the QR shows of a merchant.
type Merchant struct {
	ID      string
	Name    string // ID 59; a non-ASCII name is replaced by the merchant ID (ID 59 is the common character set)
	MCC     string // ID 52; default 5999
	City    string // ID 60; default Config.City
	Country string // ID 58, ISO 3166-1 alpha-2; default Config.Country
}

// MACVerifier is the HSM's MAC check (the in-process *hsm.HSM has it).
type MACVerifier interface {
	VerifyMAC(ctx context.Context, req hsm.VerifyMAC) error
}

// Config sets up a desk.
type Config struct {
	AcquirerID   string // this switch's institution ID (the identity's first part)
	AcquirerGUID string // EMV QRCPS ID 26 sub 00 (channels.orders.acquirer_guid)
	TTL          time.Duration
	Country      string // ID 58 when a merchant has none; default CN
	City         string // ID 60 when a merchant has none; default BEIJING
	// MaxOpenPerTerminal bounds a terminal's pending or paying orders; default 8.
	MaxOpenPerTerminal int
	Merchants          map[string]Merchant
	// NotifyAddress is where the notification endpoint listens (channels.orders.notify_address).
	NotifyAddress string
	// WalletKeys are the wallets allowed to notify, by issuer ID, with the MAC key (a key block
	// under the switch's LMK, issuers[].notify_key) their notifications are MACed with.
	WalletKeys map[string]hsm.KeyBlock
	// MaxNotifyBodyBytes bounds a notification's body (default 4 KiB); BookTimeout bounds the
	// booking (default 10 s); MaxConcurrentNotices bounds notifications handled at once (default
	// 64; more are answered 503).
	MaxNotifyBodyBytes   int64
	BookTimeout          time.Duration
	MaxConcurrentNotices int
	Log                  *zap.Logger
}

// Desk keeps the orders and books their payments.
type Desk struct {
	pool   *pgxpool.Pool
	booker pipeline.Booker
	mac    MACVerifier
	cfg    Config
	notify *notifier // nil until Serve
}

// New builds a desk. pool is the application role's pool; booker the node's ledger booker (it
// returns after the commit); mac the switch's HSM.
func New(pool *pgxpool.Pool, booker pipeline.Booker, mac MACVerifier, cfg Config) (*Desk, error) {
	if pool == nil || booker == nil || mac == nil {
		return nil, errors.New("qrorder: a pool, a booker and an HSM are required")
	}
	if cfg.AcquirerGUID == "" {
		return nil, errors.New("qrorder: an acquirer GUID is required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxOpenPerTerminal <= 0 {
		cfg.MaxOpenPerTerminal = DefaultMaxOpenPerTerminal
	}
	if cfg.Country == "" {
		cfg.Country = DefaultCountry
	}
	if cfg.City == "" {
		cfg.City = DefaultCity
	}
	if cfg.MaxNotifyBodyBytes <= 0 {
		cfg.MaxNotifyBodyBytes = DefaultMaxNotifyBodyBytes
	}
	if cfg.BookTimeout <= 0 {
		cfg.BookTimeout = DefaultBookTimeout
	}
	if cfg.MaxConcurrentNotices <= 0 {
		cfg.MaxConcurrentNotices = DefaultMaxConcurrentNotices
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Desk{pool: pool, booker: booker, mac: mac, cfg: cfg}, nil
}

// Orders is the desk as the pipeline's order step takes it: a nil interface for a nil desk, so the
// step answers 12 when orders are off.
func (d *Desk) Orders() pipeline.Orders {
	if d == nil {
		return nil
	}
	return d
}

// Order is one row of qr_order.
type Order struct {
	ID, RequestKey, TxnKey, Acquirer, Terminal, Merchant, Currency string
	Amount                                                         int64
	Payload, Status                                                string
	STAN, Transmission, RRN, AuthCode                              string
	CreatedAt, ExpiresAt                                           time.Time
	WalletIssuer, WalletTxnID, Wallet, Funding                     string
	Instalments                                                    int
	ClaimedAt                                                      *time.Time
	Fee                                                            int64
}

const orderColumns = `order_id, request_key, txn_key, acquirer, terminal, merchant, currency, amount, payload, status,
	stan, transmission, rrn, auth_code, created_at, expires_at, wallet_issuer, wallet_txn_id, wallet, funding,
	instalments, claimed_at, fee`

func scanOrder(row pgx.Row) (Order, error) {
	var o Order
	var inst int16
	err := row.Scan(&o.ID, &o.RequestKey, &o.TxnKey, &o.Acquirer, &o.Terminal, &o.Merchant, &o.Currency, &o.Amount,
		&o.Payload, &o.Status, &o.STAN, &o.Transmission, &o.RRN, &o.AuthCode, &o.CreatedAt, &o.ExpiresAt,
		&o.WalletIssuer, &o.WalletTxnID, &o.Wallet, &o.Funding, &inst, &o.ClaimedAt, &o.Fee)
	o.Instalments = int(inst)
	return o, err
}

func (o Order) state() pipeline.OrderState {
	s := pipeline.OrderState{ID: o.ID, Payload: o.Payload, Status: o.Status}
	if o.Status == pipeline.OrderPaid {
		s.AuthCode, s.RRN, s.Wallet, s.Funding, s.Instalments, s.Fee = o.AuthCode, o.RRN, o.Wallet, o.Funding, o.Instalments, o.Fee
	}
	return s
}

// CreateOrder makes an order for t's amount at t's terminal and returns its ID and QR payload. A
// retransmission of the same 0600 (same identity) returns the order it made.
func (d *Desk) CreateOrder(ctx context.Context, t *txn.Transaction) (pipeline.OrderState, error) {
	cur, ok := currency.ByNumeric(t.Currency)
	if !ok {
		return pipeline.OrderState{}, fmt.Errorf("%w: currency %q unknown", pipeline.ErrOrderInvalid, t.Currency)
	}
	amount, err := emvqr.FormatAmount(t.Amount, cur.Exponent)
	if err != nil || t.Amount <= 0 {
		return pipeline.OrderState{}, fmt.Errorf("%w: amount %d: %v", pipeline.ErrOrderInvalid, t.Amount, err)
	}
	m, ok := d.cfg.Merchants[t.MerchantID]
	if !ok {
		return pipeline.OrderState{}, fmt.Errorf("%w: merchant %s has no QR settings", pipeline.ErrOrderInvalid, t.MerchantID)
	}
	id, err := newOrderID(time.Now())
	if err != nil {
		return pipeline.OrderState{}, err
	}
	payload, err := emvqr.Build(emvqr.Payload{
		AcquirerGUID: d.cfg.AcquirerGUID, MerchantID: t.MerchantID, TerminalID: t.TerminalID, OrderID: id,
		MCC: orDefault(m.MCC, "5999"), Currency: t.Currency, Amount: amount, Country: orDefault(m.Country, d.cfg.Country),
		MerchantName: qrText(m.Name, m.ID, 25), MerchantCity: qrText(m.City, d.cfg.City, 15),
	})
	if err != nil {
		return pipeline.OrderState{}, fmt.Errorf("%w: %v", pipeline.ErrOrderInvalid, err)
	}
	rrn := t.RRN
	if len(rrn) != 12 || strings.Trim(rrn, "0123456789") != "" {
		if rrn, err = randomDigits(12); err != nil {
			return pipeline.OrderState{}, err
		}
	}
	auth, err := randomDigits(6)
	if err != nil {
		return pipeline.OrderState{}, err
	}
	key := t.Key()
	var o Order
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		// One create at a time per terminal, so the open-order bound holds under concurrency.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('qr_order:' || $1, 0))`, t.TerminalID); err != nil {
			return err
		}
		existing, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+` FROM qr_order WHERE request_key = $1`, key))
		if err == nil {
			o = existing
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, expireSQL+` AND terminal = $1`, t.TerminalID); err != nil {
			return err
		}
		var open int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM qr_order WHERE terminal = $1 AND status IN ('pending', 'paying')`,
			t.TerminalID).Scan(&open); err != nil {
			return err
		}
		if open >= d.cfg.MaxOpenPerTerminal {
			return fmt.Errorf("%w (%d, at most %d)", pipeline.ErrTooManyOrders, open, d.cfg.MaxOpenPerTerminal)
		}
		o, err = scanOrder(tx.QueryRow(ctx, `INSERT INTO qr_order (order_id, request_key, txn_key, acquirer, terminal,
			merchant, currency, amount, payload, stan, transmission, rrn, auth_code, expires_at)
			VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, clock_timestamp() + $13 * interval '1 microsecond')
			RETURNING `+orderColumns,
			id, key, t.AcquirerID, t.TerminalID, t.MerchantID, t.Currency, t.Amount, payload, t.STAN, t.TransmissionTime,
			rrn, auth, d.cfg.TTL.Microseconds()))
		return err
	})
	if err != nil {
		if errors.Is(err, pipeline.ErrTooManyOrders) {
			return pipeline.OrderState{}, err
		}
		return pipeline.OrderState{}, fmt.Errorf("creating an order for terminal %s: %w", t.TerminalID, err)
	}
	if o.Terminal != t.TerminalID || o.Amount != t.Amount || o.Currency != t.Currency {
		return pipeline.OrderState{}, fmt.Errorf("%w: identity of an earlier order reused with other content", pipeline.ErrOrderInvalid)
	}
	return o.state(), nil
}

// expireSQL marks pending orders whose time is up as expired (callers add their own filter).
const expireSQL = `UPDATE qr_order SET status = 'expired', ended_at = clock_timestamp()
	WHERE status = 'pending' AND expires_at <= clock_timestamp()`

// OrderStatus tells the state of t's order (field 48) at t's terminal.
func (d *Desk) OrderStatus(ctx context.Context, t *txn.Transaction) (pipeline.OrderState, error) {
	o, err := d.Lookup(ctx, t.OrderID)
	if errors.Is(err, pipeline.ErrOrderNotFound) || (err == nil && o.Terminal != t.TerminalID) {
		return pipeline.OrderState{}, pipeline.ErrOrderNotFound
	}
	if err != nil {
		return pipeline.OrderState{}, err
	}
	return o.state(), nil
}

// CancelOrder cancels t's order if it is still pending; otherwise it says what state it is in.
func (d *Desk) CancelOrder(ctx context.Context, t *txn.Transaction) (pipeline.OrderState, error) {
	o, err := scanOrder(d.pool.QueryRow(ctx, `UPDATE qr_order SET status = 'cancelled', ended_at = clock_timestamp()
		WHERE order_id = $1 AND terminal = $2 AND status = 'pending' AND expires_at > clock_timestamp()
		RETURNING `+orderColumns, t.OrderID, t.TerminalID))
	if err == nil {
		s := o.state()
		s.CancelledNow = true
		return s, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return pipeline.OrderState{}, fmt.Errorf("cancelling order %s: %w", t.OrderID, err)
	}
	return d.OrderStatus(ctx, t)
}

// Lookup reads an order, first settling what time decided: a pending order past its expiry is
// expired, and an order stuck in paying (its booking not confirmed for longer than any booking
// takes) is settled by what the ledger holds.
func (d *Desk) Lookup(ctx context.Context, orderID string) (Order, error) {
	if orderID == "" || len(orderID) > orderIDChars {
		return Order{}, pipeline.ErrOrderNotFound
	}
	if _, err := d.pool.Exec(ctx, expireSQL+` AND order_id = $1`, orderID); err != nil {
		return Order{}, fmt.Errorf("reading order %s: %w", orderID, err)
	}
	o, err := scanOrder(d.pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM qr_order WHERE order_id = $1`, orderID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, pipeline.ErrOrderNotFound
	}
	if err != nil {
		return Order{}, fmt.Errorf("reading order %s: %w", orderID, err)
	}
	if o.Status == pipeline.OrderPaying && o.ClaimedAt != nil && time.Since(*o.ClaimedAt) > repairAfter {
		if err := d.repair(ctx, o); err != nil {
			d.cfg.Log.Warn("settling an order stuck in paying", zap.String("order", o.ID), zap.Error(err))
			return o, nil
		}
		return d.Lookup(ctx, orderID)
	}
	return o, nil
}

// repair settles an order whose claim was never confirmed (the ledger was down, or the node
// stopped mid-booking): if the ledger booked its purchase it is paid; otherwise the claim is
// released (pending again, or expired) and the wallet, which got no 200, has given the money back.
func (d *Desk) repair(ctx context.Context, o Order) error {
	var status string
	var fee int64
	err := d.pool.QueryRow(ctx, `SELECT status, fee FROM journal_entry WHERE txn_key = $1`, o.TxnKey).Scan(&status, &fee)
	switch {
	case err == nil && status == pipeline.StatusBooked:
		_, err = d.pool.Exec(ctx, `UPDATE qr_order SET status = 'paid', fee = $3, ended_at = clock_timestamp()
			WHERE order_id = $1 AND status = 'paying' AND claimed_at = $2`, o.ID, *o.ClaimedAt, fee)
		return err
	case err == nil:
		return fmt.Errorf("the ledger holds the order's purchase as %s", status)
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	}
	_, err = d.pool.Exec(ctx, `UPDATE qr_order SET wallet_issuer = '', wallet_txn_id = '', wallet = '', funding = '',
		instalments = 0, wallet_paid_at = NULL, claimed_at = NULL,
		status = CASE WHEN expires_at > clock_timestamp() THEN 'pending' ELSE 'expired' END,
		ended_at = CASE WHEN expires_at > clock_timestamp() THEN NULL ELSE clock_timestamp() END
		WHERE order_id = $1 AND status = 'paying' AND claimed_at = $2`, o.ID, *o.ClaimedAt)
	return err
}

// Sweep marks expired orders in bounded batches until none is left or ctx ends; Serve runs it
// periodically so auditors see expiries without a terminal asking.
func (d *Desk) Sweep(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := d.pool.Exec(ctx, `UPDATE qr_order SET status = 'expired', ended_at = clock_timestamp()
			WHERE order_id IN (SELECT order_id FROM qr_order WHERE status = 'pending' AND expires_at <= clock_timestamp()
			LIMIT `+fmt.Sprint(maxSweepRows)+` FOR UPDATE SKIP LOCKED)
			AND status = 'pending'`)
		if err != nil {
			return total, fmt.Errorf("sweeping expired orders: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < maxSweepRows {
			return total, nil
		}
	}
}

// newOrderID is 20 upper-case hex digits: 48 bits of milliseconds then 32 random bits, so IDs sort
// by time (UUIDv7's idea) and fit QRCPS's 25-character reference label with room to spare.
func newOrderID(now time.Time) (string, error) {
	var b [10]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		return "", fmt.Errorf("making an order ID: %w", err)
	}
	return strings.ToUpper(hex.EncodeToString(b[:])), nil
}

func randomDigits(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a reference: %w", err)
	}
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b), nil
}

// qrText keeps s if it is printable ASCII (QRCPS's common character set for IDs 59 and 60) of at
// most max characters, truncating a longer one; otherwise the fallback.
func qrText(s, fallback string, max int) string {
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			s = ""
			break
		}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		s = fallback
	}
	if len(s) > max {
		s = strings.TrimSpace(s[:max])
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// isUniqueViolation tells a unique-key refusal (SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
