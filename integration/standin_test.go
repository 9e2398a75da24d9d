package integration

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/issuersim/issuersimtest"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/standin"
)

// withOfflinePIN adds EMV tag 9F34 (CVM Results: plaintext PIN verified by the ICC, successful) to
// field 55 of a chip purchase, as a card that verified the cardholder's PIN offline reports it.
func withOfflinePIN(t *testing.T, m *iso8583.Message) *iso8583.Message {
	t.Helper()
	emv, err := m.GetBytes(55)
	if err != nil || len(emv) == 0 {
		t.Fatalf("purchase has no chip data to add a CVM result to: %v", err)
	}
	objs, err := cards.DecodeTLV(emv)
	if err != nil {
		t.Fatal(err)
	}
	// The terminal's own CVM result (none performed) gives way to the chip's offline PIN.
	kept := []cards.TLV{{Tag: cards.TagCVMResults, Value: []byte{0x01, 0x00, 0x02}}}
	for _, o := range objs {
		if o.Tag != cards.TagCVMResults {
			kept = append(kept, o)
		}
	}
	if emv, err = cards.EncodeTLV(kept...); err != nil {
		t.Fatal(err)
	}
	if err := m.BinaryField(55, emv); err != nil {
		t.Fatal(err)
	}
	return m
}

// reasonOf is the reason the switch logged for a terminal's transaction (tid, STAN, MTI).
func reasonOf(t *testing.T, s *stack, req *iso8583.Message) string {
	t.Helper()
	mti, _ := req.GetMTI()
	for _, e := range s.logs.FilterMessage("transaction").All() {
		f := e.ContextMap()
		if f["tid"] == fieldOf(req, 41) && f["stan"] == fieldOf(req, 11) && f["mti"] == mti {
			r, _ := f["reason"].(string)
			return r
		}
	}
	return ""
}

// TestStandInApprovesWithinLimitsDeclinesBeyondAndAdvisesTheIssuerWhenItReturns takes bank-a down
// with stand-in enabled: purchases within its limits are approved with "S" codes and booked,
// purchases beyond each limit (maximum, floor without offline PIN, daily amount, daily count,
// other currency) and refunds are 91, a reversal of a stand-in approval books and cancels the
// advice the issuer has not yet heard of. When bank-a is back on the same address, the queued
// advices reach it once each, with the card number, and it posts them.
func TestStandInApprovesWithinLimitsDeclinesBeyondAndAdvisesTheIssuerWhenItReturns(t *testing.T) {
	rules := config.StandIn{Enabled: true, Currency: cards.USD, MaxAmount: 10000, FloorAmount: 5000,
		DailyAmountPerCard: 15000, DailyCountPerCard: 3}
	s := startStack(t, stackOptions{terminals: 2, vault: true, standIn: map[string]config.StandIn{cards.BankA: rules},
		safRetryBase: 100 * time.Millisecond, safPollInterval: 50 * time.Millisecond})
	c := s.dial("iso87a", "iso87a", false)
	term := s.terminals[1]
	x := cards.MustLookup("4761730000000011")     // bank-a, USD chip card
	y := cards.MustLookup("4761739000000012")     // bank-a, USD chip card
	cny := cards.MustLookup("6226090000000014")   // bank-a, CNY: not the stand-in currency
	other := cards.MustLookup("5413330000000019") // bank-b: no stand-in, and up

	addr := s.issuers[cards.BankA].Addr()
	s.issuers[cards.BankA].Close()
	for deadline := time.Now().Add(10 * time.Second); s.node.LinkUp(cards.BankA); {
		if time.Now().After(deadline) {
			t.Fatal("bank-a link still up 10s after its issuer closed")
		}
		time.Sleep(10 * time.Millisecond)
	}

	stan := 5000
	next := func() int { stan++; return stan }
	type step struct {
		name string
		req  *iso8583.Message
		rc   string // expected answer
		why  string // the stand-in rule that declined it, in the logged reason
	}
	purchase := func(card cards.Card, amount int64) *iso8583.Message {
		return terminalsim.NewPurchase(term, card, amount, "", next())
	}
	x1 := purchase(x, 4000)
	xf := purchase(x, 2000)
	steps := []step{
		{"within the floor", x1, "00", ""},
		{"above the floor, PIN-less", purchase(x, 9000), "91", standin.AboveFloor},
		{"above the floor, offline PIN verified", withOfflinePIN(t, purchase(x, 9000)), "00", ""},
		{"above the maximum, offline PIN verified", withOfflinePIN(t, purchase(x, 12000)), "91", standin.AboveMax},
		{"beyond the card's daily amount (13000 + 3000 > 15000)", purchase(x, 3000), "91", standin.DailyAmount},
		{"up to the card's daily amount (13000 + 2000)", xf, "00", ""},
		{"first of three", purchase(y, 100), "00", ""},
		{"second of three", purchase(y, 101), "00", ""},
		{"third of three", purchase(y, 102), "00", ""},
		{"beyond the card's daily count", purchase(y, 103), "91", standin.DailyCount},
		{"another currency", purchase(cny, 1000), "91", standin.OtherCurrency},
		{"refund: never stood in", terminalsim.NewRefund(term, x, x1, 1000, next()), "91", standin.NotEligible},
	}
	standInAmounts := map[string]int64{} // auth code → amount, of the stand-in approvals
	var approved []*iso8583.Message
	for _, st := range steps {
		resp := mustExchange(t, c, st.req)
		rc, auth := fieldOf(resp, 39), fieldOf(resp, 38)
		if rc != st.rc {
			t.Errorf("%s: answered %s (%s), want %s", st.name, rc, reasonOf(t, s, st.req), st.rc)
			continue
		}
		if rc != "00" {
			if r := reasonOf(t, s, st.req); !strings.Contains(r, "no stand-in: "+st.why) {
				t.Errorf("%s: declined for %q, want the stand-in rule %s", st.name, r, st.why)
			}
			continue
		}
		if len(auth) != 6 || !strings.HasPrefix(auth, "S") {
			t.Errorf("%s: stand-in approval with authorization code %q, want S and 5 digits", st.name, auth)
		}
		standInAmounts[auth+"/"+fieldOf(st.req, 11)] = mustAmount(t, st.req)
		approved = append(approved, st.req)
	}
	if len(approved) != 6 {
		t.Fatalf("%d stand-in approvals, want 6", len(approved))
	}

	// bank-b has no stand-in and is up: its issuer answers, with a code of its own.
	if resp := mustExchange(t, c, purchase(other, 777)); fieldOf(resp, 39) != "00" || strings.HasPrefix(fieldOf(resp, 38), "S") {
		t.Errorf("bank-b purchase while bank-a is down: %s %q, want 00 with the issuer's code", fieldOf(resp, 39), fieldOf(resp, 38))
	}

	// A reversal is never decided in stand-in: it books against the stand-in approval, and since
	// the issuer never heard of that approval, its advice and the reversal are both cancelled.
	rv := mustExchange(t, c, terminalsim.NewReversal(xf, false))
	if fieldOf(rv, 39) != "00" || strings.HasPrefix(fieldOf(rv, 38), "S") {
		t.Errorf("reversal of a stand-in approval: %s %q, want 00 without a stand-in code", fieldOf(rv, 39), fieldOf(rv, 38))
	}

	// The ledger booked every stand-in approval with its S code, and the reversal.
	ctx := context.Background()
	var booked int
	var total int64
	if err := s.node.Pool.QueryRow(ctx, `SELECT count(*), COALESCE(sum(amount), 0)::bigint FROM journal_entry
		WHERE kind = 'purchase' AND status = 'booked' AND auth_code LIKE 'S%' AND issuer = $1`, cards.BankA).Scan(&booked, &total); err != nil {
		t.Fatal(err)
	}
	if booked != 6 || total != 4000+9000+2000+100+101+102 {
		t.Errorf("ledger: %d stand-in purchases booked for %d, want 6 for %d", booked, total, 4000+9000+2000+100+101+102)
	}
	rev := journalOf(t, s, txnIdentity(xf))
	if n := countEntries(rev, "reversal", "booked"); n != 1 {
		t.Errorf("reversal of the stand-in approval booked %d times, want once: %+v", n, rev)
	}

	// The queue holds the advices, sealed: no clear PAN in any column.
	for _, card := range []cards.Card{x, y} {
		var n int
		if err := s.node.Pool.QueryRow(ctx, `SELECT count(*) FROM saf_item s WHERE strpos(row_to_json(s)::text, $1) > 0
			OR strpos(encode(COALESCE(pan_sealed, ''), 'escape'), $1) > 0`, card.PAN).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d store-and-forward rows hold the clear PAN %s", n, card.Masked())
		}
	}
	byStatus := func() map[string]int {
		out := map[string]int{}
		for _, it := range queueItems(t, s) {
			out[string(it.Kind)+"/"+string(it.Status)]++
		}
		return out
	}
	if got := byStatus(); got["advice/pending"] != 5 || got["advice/cancelled"] != 1 || got["reversal/cancelled"] != 1 || len(got) != 3 {
		t.Errorf("queue while bank-a is down: %v, want 5 advices pending, 1 advice and 1 reversal cancelled", got)
	}

	// bank-a comes back on the same address, with fresh accounts.
	back := issuersimtest.Start(t, issuersim.Config{IssuerID: cards.BankA, Addr: addr})
	st := waitQueueEmpty(t, s)
	if got := byStatus(); got["advice/done"] != 5 || got["advice/cancelled"] != 1 || got["reversal/cancelled"] != 1 || len(got) != 3 {
		t.Errorf("queue after bank-a returned: %v, want 5 advices done, 1 advice and 1 reversal cancelled", got)
	}

	// Each advice reached the issuer, was posted once, with the amount the terminal was approved.
	advices := back.Advices()
	var amounts, want []int64
	copies := 0
	for _, a := range advices {
		amounts = append(amounts, a.Amount)
		copies += a.Copies
		if a.MTI != "0220" || a.Response != "00" || !a.Applied || a.Original == "" {
			t.Errorf("advice at the issuer: %+v, want a 0220 with field 90, answered 00 and applied", a)
		}
	}
	for _, m := range approved {
		if m != xf {
			want = append(want, mustAmount(t, m))
		}
	}
	slices.Sort(amounts)
	slices.Sort(want)
	if !slices.Equal(amounts, want) {
		t.Errorf("advices at the issuer for %v, want %v", amounts, want)
	}
	// One message per advice, plus one repeat for each attempt the issuer left unanswered.
	if int64(copies) != int64(len(want))+st.Unanswered {
		t.Errorf("issuer received %d advice messages for %d advices with %d unanswered attempts", copies, len(want), st.Unanswered)
	}
	if bs := back.Stats(); bs.Reversals != 0 {
		t.Errorf("issuer received %d reversals; the only one was cancelled with its advice", bs.Reversals)
	}
	for _, cb := range []struct {
		card  cards.Card
		spent int64
	}{{x, 4000 + 9000}, {y, 100 + 101 + 102}} {
		if bal, _ := back.Balance(cb.card.PAN); bal != cb.card.Balance-cb.spent {
			t.Errorf("%s balance at the issuer %d, want %d − %d", cb.card.Masked(), bal, cb.card.Balance, cb.spent)
		}
	}

	// With the issuer back, purchases go to it again.
	resp := mustExchange(t, c, purchase(x, 555))
	if fieldOf(resp, 39) != "00" || strings.HasPrefix(fieldOf(resp, 38), "S") || len(issuerRecordsOf(back.Transactions(), x, 555)) != 1 {
		t.Errorf("purchase after bank-a returned: %s %q, want 00 from the issuer", fieldOf(resp, 39), fieldOf(resp, 38))
	}
	t.Logf("stand-in approvals %v; advices delivered %v (%d messages); queue %+v", standInAmounts, amounts, copies, st.Items)
}

// countEntries counts the entries of a kind and status.
func countEntries(rows []entryRow, kind, status string) int {
	n := 0
	for _, r := range rows {
		if r.kind == kind && r.status == status {
			n++
		}
	}
	return n
}

// mustAmount is field 4 of m in minor units.
func mustAmount(t *testing.T, m *iso8583.Message) int64 {
	t.Helper()
	a, err := strconv.ParseInt(fieldOf(m, 4), 10, 64)
	if err != nil {
		t.Fatalf("amount %q: %v", fieldOf(m, 4), err)
	}
	return a
}

// TestStandInAfterAnIssuerTimeoutReversesWhatTheIssuerDidAndAdvisesTheApproval has bank-a apply a
// purchase but lose its answer: the switch times out, stands in (an "S" approval, booked), and owes
// the issuer two messages, both queued: the reversal of the request it may have applied (reason
// 4021, named by the link's STAN) and the advice of the stand-in approval (named by the terminal's).
// Once the issuer answers again it reverses the one and posts the other, so the card pays once.
func TestStandInAfterAnIssuerTimeoutReversesWhatTheIssuerDidAndAdvisesTheApproval(t *testing.T) {
	rules := config.StandIn{Enabled: true, Currency: cards.USD, MaxAmount: 10000, FloorAmount: 5000,
		DailyAmountPerCard: 15000, DailyCountPerCard: 3}
	s := startStack(t, stackOptions{terminals: 2, vault: true, issuerTimeout: time.Second,
		standIn: map[string]config.StandIn{cards.BankA: rules}, safRetryBase: 100 * time.Millisecond, safPollInterval: 50 * time.Millisecond})
	c := s.dial("iso87a", "iso87a", false)
	issuer := s.issuers[cards.BankA]
	x := cards.MustLookup("4761730000000011")
	const amount = 3000
	if err := issuer.SetFaults(issuersim.Faults{DropShare: 1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	req := terminalsim.NewPurchase(s.terminals[1], x, amount, "", 5501)
	resp := mustExchange(t, c, req)
	if err := issuer.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if fieldOf(resp, 39) != "00" || !strings.HasPrefix(fieldOf(resp, 38), "S") {
		t.Fatalf("purchase the issuer did not answer: %s %q (%s), want a stand-in approval", fieldOf(resp, 39), fieldOf(resp, 38), reasonOf(t, s, req))
	}
	if r := reasonOf(t, s, req); !strings.Contains(r, "issuer timeout") {
		t.Errorf("stand-in approval for %q, want after the issuer timeout", r)
	}
	st := waitQueueEmpty(t, s)
	reasons := map[string]string{}
	for _, it := range queueItems(t, s) {
		if it.Status != "done" || it.OriginalKey != txnIdentity(req) {
			t.Errorf("queue item %+v, want done and naming the purchase", it)
		}
		reasons[string(it.Kind)] = it.Reason
	}
	if len(reasons) != 2 || reasons["reversal"] != "4021" || reasons["advice"] != "1007" {
		t.Errorf("queue held %v, want a reversal (4021) and an advice (1007)", reasons)
	}
	entries := journalOf(t, s, txnIdentity(req))
	if len(entries) != 1 || entries[0].status != "booked" || entries[0].authCode != fieldOf(resp, 38) {
		t.Errorf("ledger: %+v, want the stand-in approval booked once with its S code", entries)
	}

	// The issuer applied the request, then its reversal; and posted the advice once.
	recs := issuerRecordsOf(issuer.Transactions(), x, amount)
	advs := issuerRecordsOf(issuer.Advices(), x, amount)
	if len(recs) != 1 || !recs[0].Applied || recs[0].ReversalsApplied != 1 || recs[0].Dropped != 1 {
		t.Fatalf("issuer's record of the unanswered request: %+v, want applied, answer dropped, reversed once", recs)
	}
	if len(advs) != 1 || !advs[0].Applied || advs[0].ReversalsNamed != 0 {
		t.Fatalf("issuer's record of the advice: %+v, want one, applied, not reversed", advs)
	}
	// Every message the queue sent reached the issuer: one per item plus one per unanswered attempt.
	if sent := int64(recs[0].ReversalsNamed + advs[0].Copies); sent != 2+st.Unanswered {
		t.Errorf("issuer received %d reversal and advice messages, want 2 + %d repeats", sent, st.Unanswered)
	}
	if bal, _ := issuer.Balance(x.PAN); bal != x.Balance-amount {
		t.Errorf("card balance at the issuer %d, want %d − %d: charged once", bal, x.Balance, amount)
	}
}
