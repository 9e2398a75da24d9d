package terminalsim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moov-io/iso8583"
)

// Processing codes of the merchant-presented QR order messages (0600; docs/channels.md).
const (
	ProcOrderCreate = "710000"
	ProcOrderStatus = "720000"
	ProcOrderCancel = "730000"
	// EntryQROrder is field 22 of the order messages: 03 QR, 2 no PIN entry (the customer pays in
	// their wallet).
	EntryQROrder = "032"
)

// Order states a terminal ends on.
const (
	OrderPaid      = "paid"
	OrderCancelled = "cancelled"
	OrderExpired   = "expired"
)

// Bounds of polling an order's status.
const (
	DefaultPollInterval = 500 * time.Millisecond
	MinPollInterval     = 50 * time.Millisecond
	MaxPollInterval     = 10 * time.Second
	DefaultPollDeadline = 6 * time.Minute // the switch's default order TTL (5 min) and a margin
	MaxPollDeadline     = 30 * time.Minute
)

func orderFields(t Terminal, proc string, amount int64, currency string, stan int, now time.Time) map[int]string {
	f := map[int]string{
		3: proc, 7: now.UTC().Format("0102150405"), 11: fmt.Sprintf("%06d", stan%1_000_000), 12: now.Format("150405"),
		13: now.Format("0102"), 22: EntryQROrder, 25: "00", 41: t.TID, 42: t.MID, 49: currency,
	}
	if amount > 0 {
		f[4] = fmt.Sprintf("%012d", amount)
	}
	if t.Name != "" {
		f[43] = fmt.Sprintf("%-40.40s", t.Name)
	}
	return f
}

// NewOrderCreate builds the 0600 asking the switch for an order of amount (minor units of the ISO
// 4217 numeric currency); the 0610 answers the order ID in field 48 and the QR payload in field 62.
func NewOrderCreate(t Terminal, amount int64, currency string, stan int) *iso8583.Message {
	return build("0600", orderFields(t, ProcOrderCreate, amount, currency, stan, time.Now()))
}

// NewOrderStatus builds the 0600 asking for order o's state (field 48 the order ID). It carries the
// order's amount and currency so its answer prints as the order's receipt.
func NewOrderStatus(o Order, stan int) *iso8583.Message {
	f := orderFields(o.Terminal, ProcOrderStatus, o.Amount, o.Currency, stan, time.Now())
	f[48] = o.ID
	return build("0600", f)
}

// NewOrderCancel builds the 0600 cancelling order o.
func NewOrderCancel(o Order, stan int) *iso8583.Message {
	f := orderFields(o.Terminal, ProcOrderCancel, o.Amount, o.Currency, stan, time.Now())
	f[48] = o.ID
	return build("0600", f)
}

// Order is an order the switch made for a terminal: its ID and the EMVCo QR payload to show.
type Order struct {
	ID       string
	Payload  string
	Terminal Terminal
	Amount   int64
	Currency string
}

// ErrOrderRefused is an order request the switch answered with a code other than the ones the flow
// expects; the error names the code.
var ErrOrderRefused = errors.New("order refused")

// CreateOrder asks the switch for an order over c and returns it with the switch's answer.
func CreateOrder(ctx context.Context, c *Client, t Terminal, amount int64, currency string, stan int) (Order, *iso8583.Message, error) {
	resp, err := c.Send(ctx, NewOrderCreate(t, amount, currency, stan))
	if err != nil {
		return Order{}, nil, fmt.Errorf("creating an order: %w", err)
	}
	if rc := get(resp, 39); rc != "00" {
		return Order{}, resp, fmt.Errorf("creating an order: %w: response code %s", ErrOrderRefused, rc)
	}
	o := Order{ID: get(resp, 48), Payload: get(resp, 62), Terminal: t, Amount: amount, Currency: currency}
	if o.ID == "" || o.Payload == "" {
		return Order{}, resp, fmt.Errorf("creating an order: the answer lacks the order ID (48) or the QR payload (62)")
	}
	return o, resp, nil
}

// PollConfig bounds polling. Zero values take the defaults; values out of bounds are clamped.
type PollConfig struct {
	Interval time.Duration // between status requests; default 500 ms, 50 ms..10 s
	Deadline time.Duration // give up after; default 6 min, at most 30 min
	// NextSTAN gives each status request its trace number; nil counts up from the creating one's + 1.
	NextSTAN func() int
}

// OrderResult is how an order ended for the terminal.
type OrderResult struct {
	Status   string           // OrderPaid, OrderCancelled or OrderExpired
	Request  *iso8583.Message // the last status request
	Response *iso8583.Message // its answer: for a paid order, auth code (38), RRN (37), wallet (63)
	Polls    int
}

// PollOrder asks for o's state every Interval until it is paid (00), cancelled (17) or expired (68);
// 09 (not paid yet) and 96 (the switch could not tell) keep it polling. Any other code, ctx ending
// or the deadline passing is an error.
func PollOrder(ctx context.Context, c *Client, o Order, cfg PollConfig) (OrderResult, error) {
	cfg.Interval = clamp(cfg.Interval, DefaultPollInterval, MinPollInterval, MaxPollInterval)
	cfg.Deadline = clamp(cfg.Deadline, DefaultPollDeadline, cfg.Interval, MaxPollDeadline)
	if cfg.NextSTAN == nil {
		stan := int(time.Now().UnixNano()/1000) % 1_000_000
		cfg.NextSTAN = func() int { stan++; return stan }
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	var res OrderResult
	for {
		req := NewOrderStatus(o, cfg.NextSTAN())
		resp, err := c.Send(ctx, req)
		res.Polls++
		if err != nil {
			return res, fmt.Errorf("polling order %s: %w", o.ID, err)
		}
		res.Request, res.Response = req, resp
		switch rc := get(resp, 39); rc {
		case "00":
			res.Status = OrderPaid
			return res, nil
		case "17":
			res.Status = OrderCancelled
			return res, nil
		case "68":
			res.Status = OrderExpired
			return res, nil
		case "09", "96":
		default:
			return res, fmt.Errorf("polling order %s: %w: response code %s", o.ID, ErrOrderRefused, rc)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("polling order %s after %d polls: %w", o.ID, res.Polls, ctx.Err())
		case <-time.After(cfg.Interval):
		}
	}
}

// CancelOrder asks the switch to cancel o. The answer says 00 when it cancelled it now; otherwise the
// state it is in (09 being paid, 17 already cancelled, 68 expired) or 12 when it is paid.
func CancelOrder(ctx context.Context, c *Client, o Order, stan int) (*iso8583.Message, error) {
	resp, err := c.Send(ctx, NewOrderCancel(o, stan))
	if err != nil {
		return nil, fmt.Errorf("cancelling order %s: %w", o.ID, err)
	}
	return resp, nil
}

func clamp(d, def, lo, hi time.Duration) time.Duration {
	if d == 0 {
		d = def
	}
	return min(max(d, lo), hi)
}
