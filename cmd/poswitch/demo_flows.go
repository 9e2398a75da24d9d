package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

// Shares of approved purchases that the demo follows with another message on the same terminal, so
// `make run` shows the whole message set, not only purchases.
const (
	demoRetransmitShare = 0.04 // the terminal resends the purchase: the switch answers from memory
	demoReversalShare   = 0.04 // 0400: the terminal gave up on it
	demoVoidShare       = 0.03 // 0200 processing code 02
	demoRefundShare     = 0.04 // 0200 processing code 20, half the amount
	// Every demoOtherEvery-th beat is not a purchase but, in turn, a balance inquiry, a
	// pre-authorisation with its completion, or a bill payment.
	demoOtherEvery = 7
)

// flow records one non-purchase exchange for the summary (type → response code → count).
func (tr *demoTraffic) flow(kind, code string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.flows == nil {
		tr.flows = map[string]map[string]int64{}
	}
	if tr.flows[kind] == nil {
		tr.flows[kind] = map[string]int64{}
	}
	tr.flows[kind][code]++
}

// exchange sends one follow-up message, records its outcome and prints its receipt line.
func (tr *demoTraffic) exchange(ctx context.Context, lane *demoLane, t terminalsim.Terminal, kind string, card cards.Card,
	req *iso8583.Message) (*iso8583.Message, string) {
	c, err := lane.conn(ctx)
	if err != nil {
		tr.flow(kind, "error")
		return nil, ""
	}
	start := time.Now()
	resp, err := c.Send(ctx, req)
	took := time.Since(start)
	if err != nil {
		tr.flow(kind, "no answer")
		return nil, ""
	}
	code, _ := resp.GetString(39)
	tr.flow(kind, code)
	if tr.receipts {
		auth, _ := resp.GetString(38)
		rrn, _ := resp.GetString(37)
		currency, _ := req.GetString(49)
		amount, _ := req.GetString(4)
		var minor int64
		fmt.Sscanf(strings.TrimLeft(amount, "0")+"0", "%d", &minor)
		minor /= 10
		if auth == "" {
			auth = "------"
		}
		extra := ""
		if f54, _ := resp.GetString(54); f54 != "" {
			extra = " BAL " + f54
		}
		tr.write(fmt.Sprintf("%s %-9s %s %-10s %s %s %9s  %s  %s %-26s AUTH %s RRN %s %6.1fms%s\n",
			time.Now().Format("15:04:05"), lane.name, t.TID, "", fmt.Sprintf("%-8s", strings.ToUpper(kind)), cards.CurrencyAlpha(currency),
			terminalsim.FormatAmount(minor, cards.CurrencyExponent(currency)), card.Masked(), code,
			strings.ToUpper(cards.ResponseText(code)), auth, rrn, float64(took.Microseconds())/1000, extra))
	}
	return resp, code
}

// followUp may act again on an approved purchase: resend it, reverse it, void it or refund part of it.
func (tr *demoTraffic) followUp(ctx context.Context, lane *demoLane, t terminalsim.Terminal, card cards.Card,
	req, resp *iso8583.Message) {
	r := rand.Float64()
	switch {
	case r < demoRetransmitShare:
		again, code := tr.exchange(ctx, lane, t, "resend", card, req)
		if again != nil {
			a1, _ := resp.GetString(38)
			a2, _ := again.GetString(38)
			if code != "00" || a1 != a2 {
				tr.flow("resend", "differing answer")
			}
		}
	case r < demoRetransmitShare+demoReversalShare:
		tr.exchange(ctx, lane, t, "reversal", card, terminalsim.NewReversal(req, false))
	case r < demoRetransmitShare+demoReversalShare+demoVoidShare:
		tr.exchange(ctx, lane, t, "void", card, terminalsim.NewVoid(req, tr.nextSTAN(t.TID)))
	case r < demoRetransmitShare+demoReversalShare+demoVoidShare+demoRefundShare:
		amount, _ := req.GetString(4)
		var minor int64
		fmt.Sscanf(strings.TrimLeft(amount, "0")+"0", "%d", &minor)
		tr.exchange(ctx, lane, t, "refund", card, terminalsim.NewRefund(t, card, req, max(minor/20, 1), tr.nextSTAN(t.TID)))
	}
}

// other runs one of the non-purchase transactions, in turn.
func (tr *demoTraffic) other(ctx context.Context, lane *demoLane, t terminalsim.Terminal, card cards.Card, amount int64, turn int) {
	switch turn % 3 {
	case 0:
		tr.exchange(ctx, lane, t, "balance", card, terminalsim.NewBalanceInquiry(t, card, "", tr.nextSTAN(t.TID)))
	case 1:
		pre := terminalsim.NewPreAuth(t, card, amount, "", tr.nextSTAN(t.TID))
		resp, code := tr.exchange(ctx, lane, t, "preauth", card, pre)
		if code == "00" {
			auth, _ := resp.GetString(38)
			tr.exchange(ctx, lane, t, "completion", card, terminalsim.NewCompletion(pre, auth, amount*9/10, tr.nextSTAN(t.TID)))
		}
	case 2:
		tr.exchange(ctx, lane, t, "bill payment", card, terminalsim.NewBillPayment(t, card, amount, "", tr.nextSTAN(t.TID)))
	}
}

// printFlows prints the non-purchase outcomes: per type, the answers by code.
func printFlows(out interface{ Write([]byte) (int, error) }, flows map[string]map[string]int64) {
	if len(flows) == 0 {
		return
	}
	kinds := make([]string, 0, len(flows))
	for k := range flows {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(out, "  other messages (type: answers by code):\n")
	for _, k := range kinds {
		codes := make([]string, 0, len(flows[k]))
		for c, n := range flows[k] {
			codes = append(codes, fmt.Sprintf("%s ×%d", c, n))
		}
		sort.Strings(codes)
		fmt.Fprintf(out, "    %-13s %s\n", k, strings.Join(codes, ", "))
	}
}

// tr0Seed is the seed of the issuer's fault sequence: the demo's own seed, or the clock's.
func tr0Seed(seed uint64) uint64 {
	if seed != 0 {
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// safLine describes the store-and-forward queue once traffic has stopped, after giving it a few
// seconds to deliver what the run queued.
func safLine(ctx context.Context, est *estate) string {
	q := est.stack.SAF.Queue
	deadline := time.Now().Add(demoSAFDrainWait)
	for {
		st, err := q.Stats(ctx)
		if err != nil {
			return "cannot read: " + err.Error()
		}
		if st.Pending == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Sprintf("this run sent %d reversals and advices to issuers (%d unanswered and repeated with back-off); queue in the database: %d done, %d pending, %d flagged for an operator",
				st.Sent, st.Unanswered, st.Done, st.Pending, st.Operator)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// demoSAFDrainWait bounds how long the summary waits for the queue to drain.
const demoSAFDrainWait = 10 * time.Second
