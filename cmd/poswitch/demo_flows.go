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

// exchange sends one follow-up message, records its outcome and prints its receipt line; an
// approved pre-authorisation, completion or bill payment without a PIN gets its e-signature.
func (tr *demoTraffic) exchange(ctx context.Context, lane *demoLane, t terminalsim.Terminal, kind string, card cards.Card,
	req *iso8583.Message) (*iso8583.Message, string) {
	c, resp, took, err := tr.sendOn(ctx, lane, t, req)
	switch {
	case c == nil:
		tr.flow(kind, "error")
		return nil, ""
	case err != nil:
		tr.flow(kind, "no answer")
		return nil, ""
	}
	code, _ := resp.GetString(39)
	tr.flow(kind, code)
	tr.slip(ctx, c, lane, t, kind, req, resp, took, kind != "resend")
	return resp, code
}

// resend sends an approved request again as it was (a retransmission): the switch answers from
// memory with the same authorization code.
func (tr *demoTraffic) resend(ctx context.Context, lane *demoLane, t terminalsim.Terminal, card cards.Card, req, resp *iso8583.Message) {
	again, code := tr.exchange(ctx, lane, t, "resend", card, req)
	if again != nil {
		a1, _ := resp.GetString(38)
		a2, _ := again.GetString(38)
		if code != "00" || a1 != a2 {
			tr.flow("resend", "differing answer")
		}
	}
}

// signOn signs on the lane's master-key terminals over a new connection c and makes c MAC their
// requests with the working keys the switch sent.
func (tr *demoTraffic) signOn(ctx context.Context, c *terminalsim.Client, terms []terminalsim.Terminal) error {
	for _, t := range terms {
		if t.Keys == nil {
			continue
		}
		if err := t.Keys.SignOn(ctx, c, t, tr.nextSTAN(t.TID)); err != nil {
			return fmt.Errorf("terminal %s: %w", t.TID, err)
		}
		c.UseKeys(t.TID, t.Keys)
	}
	return nil
}

// followUp may act again on an approved purchase: resend it, reverse it, void it or refund part of it.
func (tr *demoTraffic) followUp(ctx context.Context, lane *demoLane, t terminalsim.Terminal, card cards.Card,
	req, resp *iso8583.Message) {
	r := rand.Float64()
	switch {
	case r < demoRetransmitShare:
		tr.resend(ctx, lane, t, card, req, resp)
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
		fmt.Fprintf(out, "    %-16s %s\n", k, strings.Join(codes, ", "))
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
