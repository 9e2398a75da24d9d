package main

// demo_ways.go is the demo's traffic when the estate has its channels on (the default of `make run`):
// the beats rotate through the ways people pay at a POS, each with its receipt, e-signature where
// the receipt asks for one, and its own line in the summary.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/simulator/walletsim"
	"github.com/poswitch/poswitch/switch/txn"
)

// Ways of paying, as the summary names them.
const (
	wayChip      = "chip+PIN"
	wayTap       = "tap"              // contactless within the no-CVM limit: no PIN, no signature
	wayTapOver   = "tap>limit"        // contactless above the limit: 1A, then the chip with the PIN
	waySwipe     = "swipe"            // a magstripe-only card
	wayFallback  = "fallback"         // a chip card read by its stripe: signature
	wayAlipay    = "QR Alipay"        // the terminal scans the customer's payment code
	wayHuabei    = "QR Alipay Huabei" // paid from the credit line, in instalments
	wayWeChat    = "QR WeChat"
	wayUnionPay  = "QR UnionPay"
	wayOrder     = "QR order" // merchant-presented: the customer's wallet pays the terminal's QR
	wayRepayment = "Huabei repayment"
	wayJPY       = "chip+PIN JPY"
	wayKWD       = "chip+PIN KWD"
)

// demoWayOrder is the rotation of the beats (every demoOtherEvery-th beat is another message).
var demoWayOrder = []string{wayChip, wayTap, wayAlipay, wayTapOver, wayOrder, waySwipe, wayWeChat, wayFallback,
	wayHuabei, wayJPY, wayUnionPay, wayRepayment, wayKWD}

// Bounds of the order flow.
const (
	demoOrderPollInterval = 200 * time.Millisecond
	demoOrderPollDeadline = 20 * time.Second
	demoOrderCancelEvery  = 6 // every sixth order is cancelled by the cashier instead of paid
	demoOrderRefundEvery  = 4 // every fourth order paid is then partly refunded to the wallet
)

// Shares of approved QR payments the demo follows up (a QR payment is never voided here: its refund
// goes back to the wallet instead).
const (
	demoQRResendShare   = 0.04
	demoQRReversalShare = 0.04
	demoQRRefundShare   = 0.08
)

// demoWays is what the rotation needs from the estate.
type demoWays struct {
	order     []string                     // the ways this card selection can show, in rotation order
	pools     map[string][]cards.Card      // cards each card way draws from
	approving map[string][]cards.Card      // the pool's cards the catalogue approves
	chips     *terminalsim.Chips           // the cards' ICCs (ARQC, ARPC check)
	wallets   map[string]*walletsim.Server // by issuer ID
	limits    map[string]int64             // the switch's contactless no-CVM limits
}

// wayStat counts one way's answers.
type wayStat struct {
	flows      int64            // times the way was paid
	codes      map[string]int64 // answers by response code ("timeout", "error")
	mismatches int64            // answers other than the expected one
}

// channelStats are the summary's counts beyond response codes.
type channelStats struct {
	receipts, noSig, sigRequired int64
	sigUploads                   map[string]int64 // answer to the last chunk of each upload by code
	arpcs, arpcsValid            int64            // chip answers with an ARPC; those the card accepted
	maced, macErrors             int64            // requests sent with a MAC; answers whose MAC failed
	ordersPaid, ordersReleased   int64            // order payments the wallets captured; released
}

// newDemoWays builds the rotation from the card selection: a way whose cards are not selected is
// left out.
func newDemoWays(selection []cards.Card, est *estate) *demoWays {
	w := &demoWays{pools: map[string][]cards.Card{}, approving: map[string][]cards.Card{}, chips: est.keys.Chips,
		wallets: est.wallets, limits: est.cfg.Channels.NoCVMLimits}
	home := func(c cards.Card) bool { return c.Currency == cards.CNY || c.Currency == cards.USD }
	keyed := func(c cards.Card) bool { return c.HasChip() && c.Issuer != "" } // the ICC has keys
	filters := map[string]func(cards.Card) bool{
		wayChip: func(c cards.Card) bool { return keyed(c) && home(c) },
		wayTap:  func(c cards.Card) bool { return keyed(c) && c.Contactless && c.Currency == cards.CNY },
		wayTapOver: func(c cards.Card) bool {
			_, ok := w.limits[c.Currency]
			return keyed(c) && c.Contactless && home(c) && ok
		},
		waySwipe:    func(c cards.Card) bool { return !c.HasChip() && home(c) },
		wayFallback: func(c cards.Card) bool { return c.HasChip() && home(c) },
		// A repayment is paid in CNY by a card of a CNY account (another currency would be 57).
		wayRepayment: func(c cards.Card) bool { return c.Currency == cards.CNY },
		wayJPY:       func(c cards.Card) bool { return keyed(c) && c.Currency == cards.JPY },
		wayKWD:       func(c cards.Card) bool { return keyed(c) && c.Currency == cards.KWD },
	}
	for way, keep := range filters {
		for _, c := range selection {
			if keep(c) {
				w.pools[way] = append(w.pools[way], c)
				if c.Outcome == cards.Approved {
					w.approving[way] = append(w.approving[way], c)
				}
			}
		}
	}
	for _, way := range demoWayOrder {
		if _, card := filters[way]; card && len(w.pools[way]) == 0 {
			continue
		}
		w.order = append(w.order, way)
	}
	return w
}

// pick draws the way's card: every other time one the catalogue approves, so that each way shows
// approvals as well as the catalogue's declines.
func (w *demoWays) pick(way string, n int, rng *rand.Rand) cards.Card {
	pool := w.pools[way]
	if n%2 == 0 && len(w.approving[way]) > 0 {
		pool = w.approving[way]
	}
	return pool[rng.IntN(len(pool))]
}

// pay runs the n-th payment of a way on terminal t.
func (tr *demoTraffic) pay(ctx context.Context, lane *demoLane, t terminalsim.Terminal, way string, n int, rng *rand.Rand) {
	tr.mu.Lock()
	tr.way(way).flows++
	tr.mu.Unlock()
	switch way {
	case wayAlipay, wayHuabei, wayWeChat, wayUnionPay:
		tr.qrPayment(ctx, lane, t, way, n, rng)
	case wayOrder:
		tr.qrOrder(ctx, lane, t, n, rng)
	case wayRepayment:
		tr.repayment(ctx, lane, t, n, rng)
	default:
		tr.cardPayment(ctx, lane, t, way, n, rng)
	}
}

// way returns a way's counters; the caller holds tr.mu.
func (tr *demoTraffic) way(name string) *wayStat {
	if tr.wayStats == nil {
		tr.wayStats = map[string]*wayStat{}
	}
	w := tr.wayStats[name]
	if w == nil {
		w = &wayStat{codes: map[string]int64{}}
		tr.wayStats[name] = w
	}
	return w
}

// amountIn draws an amount of minor units in [lo, hi].
func amountIn(rng *rand.Rand, lo, hi int64) int64 { return lo + rng.Int64N(hi-lo+1) }

// cardPayment presents a card as the way says: inserted with the PIN, tapped, swiped or read by
// its stripe after the chip failed.
func (tr *demoTraffic) cardPayment(ctx context.Context, lane *demoLane, t terminalsim.Terminal, way string, n int, rng *rand.Rand) {
	card := tr.kit.pick(way, n, rng)
	currency := card.Currency
	lo, hi := cards.StandardAmountRange[0], cards.StandardAmountRange[1]
	pres := terminalsim.Presentation{Entry: terminalsim.EntryChip, PIN: tr.pads[t.TID]}
	switch way {
	case wayTap:
		pres = terminalsim.Presentation{Entry: terminalsim.EntryContactless}
		hi = min(hi, tr.kit.limits[currency])
	case wayTapOver:
		pres = terminalsim.Presentation{Entry: terminalsim.EntryContactless}
		limit := tr.kit.limits[currency]
		lo, hi = limit+1, max(limit+1, hi)
		if limit >= cards.StandardAmountRange[1] {
			hi = 3 * limit // within every approving card's per-transaction limit (5,000.00)
		}
	case waySwipe:
		pres = terminalsim.Presentation{Entry: terminalsim.EntrySwipe}
	case wayFallback:
		pres = terminalsim.Presentation{Entry: terminalsim.EntryFallback}
	}
	amount := amountIn(rng, lo, hi)
	expected := card.Outcome
	if way == wayTapOver && cards.LuhnValid(card.PAN) {
		// The switch's CVM rule answers before the issuer is asked: insert the card (a soft decline).
		expected = txn.RCInsertCard
	}
	req, resp, code := tr.cardRequest(ctx, lane, t, way, card, pres, amount, currency, expected)
	if way == wayTapOver && code == txn.RCInsertCard {
		// The terminal asks for the chip; the cardholder inserts it and enters the PIN: one flow.
		pres = terminalsim.Presentation{Entry: terminalsim.EntryChip, PIN: tr.pads[t.TID]}
		req, resp, code = tr.cardRequest(ctx, lane, t, way, card, pres, amount, currency, card.Outcome)
	}
	if tr.mix && code == cards.Approved {
		tr.followUp(ctx, lane, t, card, req, resp)
	}
}

// cardRequest builds, sends and counts one card purchase, checks the issuer's ARPC as the card does,
// and prints the receipt (uploading the signature when it asks for one).
func (tr *demoTraffic) cardRequest(ctx context.Context, lane *demoLane, t terminalsim.Terminal, way string, card cards.Card,
	pres terminalsim.Presentation, amount int64, currency, expected string) (*iso8583.Message, *iso8583.Message, string) {
	ctx, cancel := context.WithTimeout(ctx, demoPurchaseTimeout)
	defer cancel()
	req, err := terminalsim.NewCardPurchase(ctx, t, tr.kit.chips, card, pres, amount, currency, tr.nextSTAN(t.TID))
	if err != nil {
		tr.countAnswer(lane, way, expected, nil, err, 0, false)
		tr.log.Warn("demo card", zap.String("way", way), zap.String("card", card.Masked()), zap.Error(err))
		return nil, nil, ""
	}
	c, resp, took, err := tr.sendOn(ctx, lane, t, req)
	code := tr.countAnswer(lane, way, expected, resp, err, took, true)
	if err != nil {
		return req, nil, ""
	}
	if req.GetField(55) != nil {
		if ia, err := tr.kit.chips.AuthenticateIssuer(ctx, card, req, resp); err == nil && ia.Performed {
			tr.mu.Lock()
			tr.ch.arpcs++
			if ia.Valid {
				tr.ch.arpcsValid++
			}
			tr.mu.Unlock()
		}
	}
	tr.slip(ctx, c, lane, t, "", req, resp, took, true)
	return req, resp, code
}

// qrPayment scans a payment code of the way's wallet. Every eighth payment is a customer whose
// balance is too small (51), and every eighth a customer who shows the same code again (14).
func (tr *demoTraffic) qrPayment(ctx context.Context, lane *demoLane, t terminalsim.Terminal, way string, n int, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(ctx, demoPurchaseTimeout)
	defer cancel()
	id := map[string]string{wayAlipay: "alipay", wayHuabei: "alipay", wayWeChat: "wechat", wayUnionPay: "unionpay-qr"}[way]
	ws := tr.kit.wallets[id]
	customers := estateCustomers(ws.Wallet())
	customer, instalments, expected := customers[0].ID, 0, cards.Approved
	amount := amountIn(rng, cards.StandardAmountRange[0], cards.StandardAmountRange[1])
	if way == wayHuabei {
		customer, instalments = customers[1].ID, []int{3, 6, 12, 0}[n%4] // 0: Huabei is the customer's own choice
	}
	if n%8 == 7 {
		customer, instalments, expected = customers[2].ID, 0, cards.InsufficientFunds
		amount = max(amount, customers[2].Balance+100)
	}
	code, err := ws.NewPaymentCode(customer)
	if err != nil {
		tr.countAnswer(lane, way, expected, nil, err, 0, false)
		return
	}
	req := terminalsim.NewQRPurchase(t, code, amount, cards.CNY, instalments, tr.nextSTAN(t.TID))
	c, resp, took, err := tr.sendOn(ctx, lane, t, req)
	rc := tr.countAnswer(lane, way, expected, resp, err, took, true)
	if err != nil {
		return
	}
	tr.slip(ctx, c, lane, t, ws.Wallet(), req, resp, took, true)
	if rc != cards.Approved {
		return
	}
	if n%8 == 3 {
		// The customer shows the same code again: a payment code pays once.
		again := terminalsim.NewQRPurchase(t, code, amount, cards.CNY, instalments, tr.nextSTAN(t.TID))
		c, resp, took, err := tr.sendOn(ctx, lane, t, again)
		if tr.countAnswer(lane, way, cards.InvalidCardNumber, resp, err, took, true); err == nil {
			tr.slip(ctx, c, lane, t, ws.Wallet(), again, resp, took, false)
		}
		return
	}
	if !tr.mix {
		return
	}
	switch r := rand.Float64(); {
	case r < demoQRResendShare:
		tr.resend(ctx, lane, t, cards.Card{}, req, resp)
	case r < demoQRResendShare+demoQRReversalShare:
		tr.exchange(ctx, lane, t, "reversal", cards.Card{}, terminalsim.NewReversal(req, false))
	case r < demoQRResendShare+demoQRReversalShare+demoQRRefundShare:
		tr.exchange(ctx, lane, t, "QR refund", cards.Card{}, terminalsim.NewQRRefund(req, max(amount/2, 1), tr.nextSTAN(t.TID)))
	}
}

// qrOrder: the terminal asks the switch for an order, shows its QR, a wallet's customer scans and
// pays it, and the terminal polls until it is paid. Every sixth order the cashier cancels instead.
func (tr *demoTraffic) qrOrder(ctx context.Context, lane *demoLane, t terminalsim.Terminal, n int, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(ctx, demoOrderPollDeadline+demoPurchaseTimeout)
	defer cancel()
	ids := []string{"alipay", "wechat", "unionpay-qr"}
	ws := tr.kit.wallets[ids[n%len(ids)]]
	customer := estateCustomers(ws.Wallet())[0].ID
	amount := amountIn(rng, cards.StandardAmountRange[0], cards.StandardAmountRange[1])
	c, err := lane.conn(ctx)
	if err != nil {
		tr.countAnswer(lane, wayOrder, cards.Approved, nil, err, 0, false)
		return
	}
	start := time.Now()
	tr.countMAC(t, "0600", 1)
	// The create request is kept: a refund of the order's payment names it in field 90.
	createReq := terminalsim.NewOrderCreate(t, amount, cards.CNY, tr.nextSTAN(t.TID))
	created, err := c.Send(ctx, createReq)
	var o terminalsim.Order
	if err == nil {
		o = terminalsim.Order{ID: fieldText(created, 48), Payload: fieldText(created, 62), Terminal: t, Amount: amount, Currency: cards.CNY}
		if rc := fieldText(created, 39); rc != cards.Approved || o.ID == "" || o.Payload == "" {
			err = fmt.Errorf("order request answered %s", rc)
		}
	}
	if err != nil {
		if created != nil {
			tr.countAnswer(lane, wayOrder, cards.Approved, created, nil, time.Since(start), true)
		} else {
			tr.countAnswer(lane, wayOrder, cards.Approved, nil, err, 0, false)
		}
		tr.log.Warn("demo order", zap.String("tid", t.TID), zap.Error(err))
		return
	}
	if tr.receipts {
		tr.write(fmt.Sprintf("%s %-9s %s %-20s %-12s %s %9s  order %s shown as a QR code (EMVCo payload, %d characters)\n",
			time.Now().Format("15:04:05"), lane.name, t.TID, "QR order", "ORDER", "CNY", terminalsim.FormatAmount(amount, 2), o.ID, len(o.Payload)))
	}
	expected := cards.Approved
	var paid sync.WaitGroup
	if n%demoOrderCancelEvery == demoOrderCancelEvery-1 {
		expected = txn.RCCustomerCancelled
		tr.countMAC(t, "0600", 1)
		if _, err := terminalsim.CancelOrder(ctx, c, o, tr.nextSTAN(t.TID)); err != nil {
			tr.log.Warn("demo order cancel", zap.String("order", o.ID), zap.Error(err))
		}
	} else {
		paid.Add(1)
		go func() {
			defer paid.Done()
			p, err := ws.PayOrder(ctx, o.Payload, customer, "", 0)
			tr.mu.Lock()
			if err == nil && p.Captured {
				tr.ch.ordersPaid++
			} else {
				tr.ch.ordersReleased++
			}
			tr.mu.Unlock()
		}()
	}
	res, err := terminalsim.PollOrder(ctx, c, o, terminalsim.PollConfig{Interval: demoOrderPollInterval,
		Deadline: demoOrderPollDeadline, NextSTAN: func() int { return tr.nextSTAN(t.TID) }})
	paid.Wait()
	tr.countMAC(t, "0600", int64(res.Polls))
	if res.Response == nil {
		tr.countAnswer(lane, wayOrder, expected, nil, err, 0, false)
		return
	}
	tr.countAnswer(lane, wayOrder, expected, res.Response, nil, time.Since(start), true)
	tr.slip(ctx, c, lane, t, ws.Wallet(), res.Request, res.Response, time.Since(start), true)
	if res.Status == terminalsim.OrderPaid && n%demoOrderRefundEvery == 0 {
		// The customer brings part of it back: the refund goes to the wallet that paid, by the
		// issuer trace the switch gave the payment.
		tr.exchange(ctx, lane, t, "QR order refund", cards.Card{}, terminalsim.NewQRRefund(createReq, max(amount/2, 1), tr.nextSTAN(t.TID)))
	}
}

// fieldText is a field of m as text, "" when absent.
func fieldText(m *iso8583.Message, id int) string {
	v, _ := m.GetString(id)
	return v
}

// repayment: a customer repays the Huabei credit line of an Alipay account by card at the POS.
func (tr *demoTraffic) repayment(ctx context.Context, lane *demoLane, t terminalsim.Terminal, n int, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(ctx, demoPurchaseTimeout)
	defer cancel()
	card := tr.kit.pick(wayRepayment, n, rng)
	account := estateCustomers(walletsim.Alipay)[1].ID
	amount := amountIn(rng, cards.StandardAmountRange[0], cards.StandardAmountRange[1])
	req := terminalsim.NewHuabeiRepayment(t, card, account, amount, cards.CNY, tr.nextSTAN(t.TID))
	c, resp, took, err := tr.sendOn(ctx, lane, t, req)
	if tr.countAnswer(lane, wayRepayment, card.Outcome, resp, err, took, false); err == nil {
		tr.slip(ctx, c, lane, t, "", req, resp, took, true)
	}
}

// sendOn sends req from t over the lane's connection, counting MACed requests and answers whose MAC
// failed.
func (tr *demoTraffic) sendOn(ctx context.Context, lane *demoLane, t terminalsim.Terminal, req *iso8583.Message) (*terminalsim.Client, *iso8583.Message, time.Duration, error) {
	c, err := lane.conn(ctx)
	if err != nil {
		tr.log.Warn("demo terminal cannot connect", zap.String("listener", lane.name), zap.Error(err))
		return nil, nil, 0, err
	}
	mti, _ := req.GetMTI()
	tr.countMAC(t, mti, 1)
	start := time.Now()
	resp, err := c.Send(ctx, req)
	took := time.Since(start)
	if errors.Is(err, terminalsim.ErrAnswerMAC) {
		tr.mu.Lock()
		tr.ch.macErrors++
		tr.mu.Unlock()
	}
	if err != nil {
		tr.log.Warn("demo request failed", zap.String("listener", lane.name), zap.String("tid", t.TID), zap.Error(err))
	}
	return c, resp, took, err
}

// countMAC counts n requests of mti from t that go with a MAC.
func (tr *demoTraffic) countMAC(t terminalsim.Terminal, mti string, n int64) {
	if t.Keys.MACs(mti) {
		tr.mu.Lock()
		tr.ch.maced += n
		tr.mu.Unlock()
	}
}

// countAnswer counts one answer of a way in the summary's totals (response codes, latency, answers
// other than expected) and in the way's own line; it returns the response code. expected is the
// code the catalogue, the CVM rules or a deliberate decline call for. purchase: an approval books a
// purchase entry (the ledger line checks them).
func (tr *demoTraffic) countAnswer(lane *demoLane, way, expected string, resp *iso8583.Message, err error, took time.Duration, purchase bool) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	w := tr.way(way)
	tr.sum.Sent++
	tr.sum.Expected[expected]++
	switch {
	case err == nil && resp != nil:
		code, _ := resp.GetString(39)
		tr.sum.Answered++
		tr.sum.Codes[code]++
		tr.perLane[lane.name]++
		w.codes[code]++
		if code != expected {
			tr.sum.Mismatches++
			w.mismatches++
		}
		if purchase && code == cards.Approved {
			tr.purchaseApprovals++
		}
		if took > 0 {
			_ = tr.sum.Latency.RecordValue(max(took.Microseconds(), 1))
		}
		return code
	case errors.Is(err, context.DeadlineExceeded):
		tr.sum.Timeouts++
		w.codes["timeout"]++
	default:
		tr.sum.Errors++
		w.codes["error"]++
	}
	return ""
}

// slip makes the receipt of req and its answer, uploads the cardholder's e-signature when the
// receipt asks for one (sign), and prints the receipt's line. hint names the wallet of a QR payment
// whose answer does not (a decline), or the kind of a message that has no entry mode (a QR refund).
func (tr *demoTraffic) slip(ctx context.Context, c *terminalsim.Client, lane *demoLane, t terminalsim.Terminal, hint string,
	req, resp *iso8583.Message, took time.Duration, sign bool) {
	r := terminalsim.NewReceiptWithLimits(t, req, resp, tr.kit.noCVMLimits())
	cvm := ""
	switch {
	case r.Approved && r.SignatureRequired && sign && c != nil:
		img := terminalsim.SignatureImage(uint64(time.Now().UnixNano()))
		chunks := len(img)/747 + 1
		code, err := terminalsim.UploadSignature(ctx, c, t, req, img, tr.reserveSTANs(t.TID, chunks))
		if err != nil {
			code = "error"
			tr.log.Warn("demo signature upload", zap.String("tid", t.TID), zap.Error(err))
		}
		tr.mu.Lock()
		tr.ch.sigRequired++
		if tr.ch.sigUploads == nil {
			tr.ch.sigUploads = map[string]int64{}
		}
		tr.ch.sigUploads[code]++
		tr.mu.Unlock()
		cvm = "SIGNED, e-signature " + code
	case r.Approved && r.NoSignatureRequired:
		tr.mu.Lock()
		tr.ch.noSig++
		tr.mu.Unlock()
		cvm = "NO SIG"
	}
	tr.mu.Lock()
	tr.ch.receipts++
	tr.mu.Unlock()
	if !tr.receipts {
		return
	}
	auth := r.AuthCode
	if auth == "" {
		auth = "------"
	}
	extra := ""
	if f54, _ := resp.GetString(54); f54 != "" {
		extra = " BAL " + f54
	}
	tr.write(fmt.Sprintf("%s %-9s %s %-20s %-12s %s %9s  %-19s %-2s %-26s AUTH %s RRN %-12s %6.1fms %s%s\n",
		time.Now().Format("15:04:05"), lane.name, r.TerminalID, receiptWay(r, req, hint), r.Type, r.Currency, r.FormattedAmount(),
		r.Card, r.ResponseCode, strings.ToUpper(shortMeaning(r.ResponseCode)), auth, r.RRN, float64(took.Microseconds())/1000, cvm, extra))
}

// noCVMLimits are the limits receipts apply: the switch's, or the terminal default without channels.
func (w *demoWays) noCVMLimits() map[string]int64 {
	if w == nil || w.limits == nil {
		return terminalsim.DefaultNoCVMLimits
	}
	return w.limits
}

// receiptWay names how the customer paid, for the receipt line: chip+PIN, tap, swipe, fallback, or
// QR with the wallet, its funding source and instalments ("QR ALIPAY HUABEI 03").
func receiptWay(r terminalsim.Receipt, req *iso8583.Message, hint string) string {
	switch r.EntryMode {
	case "QR":
		w := r.Wallet
		if w == "" {
			w = hint
		}
		s := strings.TrimSpace("QR " + w + " " + r.Funding)
		if r.Instalments > 0 {
			s += fmt.Sprintf(" %02d", r.Instalments)
		}
		return s
	case "CHIP":
		if req.GetField(52) != nil {
			return "chip+PIN"
		}
		return "chip"
	case "CONTACTLESS":
		if req.GetField(52) != nil {
			return "tap+PIN"
		}
		return "tap"
	case "SWIPE":
		if req.GetField(52) != nil {
			return "swipe+PIN"
		}
		return "swipe"
	case "FALLBACK":
		return "fallback"
	case "":
		return hint
	}
	return strings.ToLower(r.EntryMode)
}

// shortMeaning is demoMeaning cut to fit a receipt line ("insert card" for 1A).
func shortMeaning(code string) string {
	m, _, _ := strings.Cut(demoMeaning(code), " /")
	return m
}

// reserveSTANs takes n consecutive STANs of terminal tid and returns the first.
func (tr *demoTraffic) reserveSTANs(tid string, n int) int {
	first := tr.nextSTAN(tid)
	for range n - 1 {
		tr.nextSTAN(tid)
	}
	return first
}

// demoMeaning is a response code's meaning: the catalogue's words, else the switch's.
func demoMeaning(code string) string {
	if m := cards.ResponseText(code); m != "code "+code {
		return m
	}
	return txn.Meaning(code)
}

// printWays prints the per-way counts and the channel figures of a Channels run.
func printWays(out io.Writer, res demoResult) {
	if len(res.Ways) == 0 {
		return
	}
	fmt.Fprintf(out, "  ways of paying (paid: answers by code; 1A asks for the chip, the flow then inserts it with the PIN):\n")
	for _, way := range demoWayOrder {
		w, ok := res.Ways[way]
		if !ok {
			continue
		}
		codes := make([]string, 0, len(w.codes))
		for c := range w.codes {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		parts := make([]string, len(codes))
		for i, c := range codes {
			parts[i] = fmt.Sprintf("%s ×%d", c, w.codes[c])
		}
		mism := ""
		if w.mismatches > 0 {
			mism = fmt.Sprintf("  (%d unexpected)", w.mismatches)
		}
		fmt.Fprintf(out, "    %-17s %5d  %s%s\n", way, w.flows, strings.Join(parts, ", "), mism)
	}
	ch := res.Channels
	uploads := make([]string, 0, len(ch.sigUploads))
	for c, n := range ch.sigUploads {
		uploads = append(uploads, fmt.Sprintf("%s ×%d", c, n))
	}
	sort.Strings(uploads)
	fmt.Fprintf(out, "  receipts: %d printed; %d approvals with no signature required (PIN, tap within the limit, QR); %d signed\n",
		ch.receipts, ch.noSig, ch.sigRequired)
	fmt.Fprintf(out, "  e-signatures: %d uploaded (answers %s); %d stored with their transactions in PostgreSQL during the run\n",
		ch.sigRequired, strings.Join(uploads, ", "), res.SignaturesStored)
	fmt.Fprintf(out, "  chip: %d answers carried an ARPC, the cards accepted %d\n", ch.arpcs, ch.arpcsValid)
	fmt.Fprintf(out, "  MAC: %d requests MACed by master-key terminals (X9.19, AES-CMAC); %d answers failed their MAC check\n", ch.maced, ch.macErrors)
	fmt.Fprintf(out, "  orders: %d paid by wallet customers, %d payments released\n", ch.ordersPaid, ch.ordersReleased)
	for _, id := range []string{"alipay", "wechat", "unionpay-qr"} {
		if s, ok := res.WalletStats[id]; ok {
			fmt.Fprintf(out, "  wallet-sim %-11s %d payments, %d refunds, %d reversals, %d repayments, %d orders\n",
				id, s.Payments, s.Refunds, s.Reversals, s.Repayments, s.Orders)
		}
	}
}
