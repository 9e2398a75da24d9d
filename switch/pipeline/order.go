package pipeline

import (
	"context"
	"errors"

	"github.com/poswitch/poswitch/switch/txn"
)

// Order states (switch/qrorder keeps them in PostgreSQL, table qr_order).
const (
	OrderPending   = "pending"   // shown on the terminal, not paid yet
	OrderPaying    = "paying"    // a wallet's payment claimed it; being booked
	OrderPaid      = "paid"      // booked as a purchase
	OrderCancelled = "cancelled" // the terminal cancelled it while pending
	OrderExpired   = "expired"   // its time to live ran out unpaid
)

// OrderState is what the order desk says of one order.
type OrderState struct {
	ID      string
	Payload string // EMVCo QRCPS merchant-presented payload (create)
	Status  string // OrderPending … OrderExpired
	// Paid orders: the purchase's authorization code and RRN, and for the receipt the wallet and
	// funding source the customer paid from, with instalments.
	AuthCode, RRN   string
	Wallet, Funding string
	Instalments     int
	Fee             int64
	// CancelledNow: CancelOrder moved this order from pending to cancelled (an order already
	// cancelled says no).
	CancelledNow bool
}

// Errors of the order desk the step answers with their own codes.
var (
	// ErrOrderNotFound: no such order at this terminal (25).
	ErrOrderNotFound = errors.New("no such order at this terminal")
	// ErrTooManyOrders: the terminal already has its bound of open orders (65).
	ErrTooManyOrders = errors.New("terminal has too many open orders")
	// ErrOrderInvalid: the order cannot be made as asked (12), e.g. a currency the desk cannot show.
	ErrOrderInvalid = errors.New("order cannot be made")
)

// Orders is the merchant-presented QR order desk (switch/qrorder) as the order step uses it. Every
// method is idempotent for the same request identity.
type Orders interface {
	CreateOrder(ctx context.Context, t *txn.Transaction) (OrderState, error)
	OrderStatus(ctx context.Context, t *txn.Transaction) (OrderState, error)
	CancelOrder(ctx context.Context, t *txn.Transaction) (OrderState, error)
}

// Order answers the terminal's 0600 order messages and ends them; other types pass. It runs after
// identify (the terminal and merchant are known) and before match: an order's own state in the
// database makes a retransmission safe, and a create's answer (order ID, QR payload) is one the
// answer cache does not keep.
//
//	create → 00 with the order ID (field 48) and the QR payload (field 62)
//	status → 00 paid (auth code, RRN, wallet and funding in field 63), 09 pending or being paid,
//	         17 cancelled, 68 expired
//	cancel → 00 cancelled now; otherwise the state's code (09 being paid, 17 already cancelled,
//	         68 expired) and 12 for a paid order (it can only be refunded)
//	unknown order 25; too many open orders 65; orders off (no channels.orders.notify_address) 12;
//	the database down 96.
type Order struct {
	Orders Orders // nil: orders are off
}

func (Order) Name() string { return "order" }

func (s Order) Run(ctx context.Context, t *txn.Transaction) {
	var do func(context.Context, *txn.Transaction) (OrderState, error)
	switch t.Type {
	case txn.TypeOrderCreate, txn.TypeOrderStatus, txn.TypeOrderCancel:
	default:
		return
	}
	if s.Orders == nil {
		t.End(txn.RCInvalidTxn, "merchant-presented QR orders are off (channels.orders.notify_address)")
		return
	}
	switch t.Type {
	case txn.TypeOrderCreate:
		do = s.Orders.CreateOrder
	case txn.TypeOrderStatus:
		do = s.Orders.OrderStatus
	default:
		do = s.Orders.CancelOrder
	}
	o, err := do(ctx, t)
	switch {
	case errors.Is(err, ErrOrderNotFound):
		t.End(txn.RCNoRecord, err.Error())
		return
	case errors.Is(err, ErrTooManyOrders):
		t.End(txn.RCExceedsCount, err.Error())
		return
	case errors.Is(err, ErrOrderInvalid):
		t.End(txn.RCInvalidTxn, err.Error())
		return
	case err != nil:
		t.End(txn.RCSystemError, "order desk: "+err.Error())
		return
	}
	t.OrderID = o.ID
	switch t.Type {
	case txn.TypeOrderCreate:
		t.QRPayload = o.Payload
		t.End(txn.RCApproved, "order created")
	case txn.TypeOrderStatus:
		answerState(t, o, "order status")
	default:
		switch {
		case o.CancelledNow:
			t.End(txn.RCApproved, "order cancelled")
		case o.Status == OrderPaid:
			t.End(txn.RCInvalidTxn, "order is paid: refund it instead")
		default:
			answerState(t, o, "order not cancelled")
		}
	}
}

// answerState ends t with the code of the order's state; a paid order's answer carries what the
// receipt prints.
func answerState(t *txn.Transaction, o OrderState, why string) {
	switch o.Status {
	case OrderPaid:
		t.AuthCode, t.RRN = o.AuthCode, o.RRN
		t.Wallet, t.FundingSource, t.Instalments = o.Wallet, o.Funding, o.Instalments
		t.End(txn.RCApproved, why+": paid")
	case OrderPending, OrderPaying:
		t.End(txn.RCInProgress, why+": "+o.Status)
	case OrderCancelled:
		t.End(txn.RCCustomerCancelled, why+": cancelled")
	case OrderExpired:
		t.End(txn.RCLateResponse, why+": expired")
	default:
		t.End(txn.RCSystemError, why+": unknown state "+o.Status)
	}
}
