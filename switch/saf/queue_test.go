package saf_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/saf"
)

const linkTimeout = 150 * time.Millisecond

func TestEnqueueIsCommittedAndIdempotentOnIssuerKindAndOriginal(t *testing.T) {
	db := pgtest.NewDatabase(t)
	ctx := context.Background()
	q := saf.NewQueue(pgtest.Pool(t, db.App), saf.Config{}, nil)
	other := saf.NewQueue(pgtest.Pool(t, db.App), saf.Config{}, nil) // another node on the same database
	it := reversal("000101", "0102030405", 1500)
	if err := q.Enqueue(ctx, it); err != nil {
		t.Fatal(err)
	}
	again := it
	again.Reason, again.OriginalKey = saf.ReasonLateResponse, "" // the late answer's view of the same original
	for _, enq := range []func(context.Context, saf.Item) error{q.Enqueue, other.Enqueue} {
		if err := enq(ctx, again); err != nil {
			t.Fatal(err)
		}
	}
	recs := list(t, other)
	if len(recs) != 1 {
		t.Fatalf("%d items after enqueueing one reversal three times", len(recs))
	}
	if r := recs[0]; r.Status != saf.StatusPending || r.Attempts != 0 || r.Reason != saf.ReasonTimeout ||
		r.OriginalKey != it.OriginalKey || r.PANMasked != card.Masked() || len(r.PANSealed) != 0 {
		t.Fatalf("stored %+v", r)
	}
	// Another original, another issuer and an advice of the same original are other items.
	other1 := reversal("000102", "0102030405", 1500)
	other2 := it
	other2.Issuer = "bank-b"
	if err := q.Enqueue(ctx, other1); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, other2); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, standInAdvice(t, hsm.NewDevelopment(), "000101", "0102030405", 1500)); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, q); st.Pending != 4 || len(st.Items) != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestItemsThatWouldLeakOrNotPackAreRefused(t *testing.T) {
	db := pgtest.NewDatabase(t)
	q := saf.NewQueue(pgtest.Pool(t, db.App), saf.Config{}, nil)
	cases := map[string]func(*saf.Item){
		"clear PAN in the masked PAN":  func(it *saf.Item) { it.PANMasked = card.PAN },
		"sealed PAN on a reversal":     func(it *saf.Item) { it.PANSealed = []byte{1, 2, 3} },
		"reversal sent as an advice":   func(it *saf.Item) { it.MTI = "0220" },
		"short link STAN":              func(it *saf.Item) { it.OrigSTAN = "123" },
		"transmission time not digits": func(it *saf.Item) { it.OrigTime = "01020304xx" },
		"acquirer too long":            func(it *saf.Item) { it.AcquirerID = "123456789012" },
		"terminal too long":            func(it *saf.Item) { it.TerminalID = "TERMINAL9" },
		"no reason":                    func(it *saf.Item) { it.Reason = "" },
		"negative amount":              func(it *saf.Item) { it.Amount = -1 },
		"no issuer":                    func(it *saf.Item) { it.Issuer = "" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			it := reversal("000201", "0102030405", 100)
			edit(&it)
			if err := q.Enqueue(context.Background(), it); err == nil {
				t.Fatal("enqueued")
			}
		})
	}
	if n := len(list(t, q)); n != 0 {
		t.Fatalf("%d refused items were stored", n)
	}
}

func TestMessageCarriesFieldNinetyAndTheReasonAndPacks(t *testing.T) {
	it := reversal("000301", "0102030405", 1234)
	for _, repeat := range []bool{false, true} {
		m, err := it.Message(specs.IssuerLink, repeat, "")
		if err != nil {
			t.Fatal(err)
		}
		body, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		got := iso8583.NewMessage(specs.IssuerLink)
		if err := got.Unpack(body); err != nil {
			t.Fatal(err)
		}
		want := map[int]string{0: "0420", 3: "000000", 4: "000000001234", 32: acquirer, 41: terminal, 42: merchant,
			49: card.Currency, saf.ReasonField: saf.ReasonTimeout,
			90: "0200" + "000301" + "0102030405" + acquirer + "00000000000"}
		if repeat {
			want[0] = "0421"
		}
		for id, v := range want {
			if s, _ := got.GetString(id); s != v {
				t.Errorf("repeat=%v field %d = %q, want %q", repeat, id, s, v)
			}
		}
		if s, _ := got.GetString(2); s != "" {
			t.Errorf("a reversal carries a PAN: %q", s)
		}
	}
}

func TestRunSendsEachReversalOnceAndMarksItDone(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{})
	link := startLink(t, srv.Addr(), time.Second, true)
	before, _ := srv.Balance(card.PAN)
	stan, at := purchaseAtIssuer(t, link, "000401", 2500)
	if b, _ := srv.Balance(card.PAN); b != before-2500 {
		t.Fatalf("purchase did not debit: %d → %d", before, b)
	}
	q := saf.NewQueue(pgtest.Pool(t, db.App), saf.Config{PollInterval: 20 * time.Millisecond}, nil)
	if err := q.Enqueue(context.Background(), reversal(stan, at, 2500)); err != nil {
		t.Fatal(err)
	}
	stop := running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "the reversal to be acknowledged", func() bool { return stats(t, q).Done == 1 })
	stop()

	rec := simRecord(t, srv, stan, at)
	if rec.ReversalsNamed != 1 || rec.ReversalsApplied != 1 {
		t.Fatalf("issuer-sim record %+v", rec)
	}
	if b, _ := srv.Balance(card.PAN); b != before {
		t.Fatalf("balance %d after the reversal, want %d", b, before)
	}
	if req := srv.Stats().Requests; req["0420"] != 1 || req["0421"] != 0 {
		t.Fatalf("issuer-sim requests %v", req)
	}
	r := list(t, q)[0]
	if r.Status != saf.StatusDone || r.Attempts != 1 || r.LastResponse != "00" || r.DoneAt == nil {
		t.Fatalf("item %+v", r)
	}
	if st := stats(t, q); st.Sent != 1 || st.Answered != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnansweredReversalIsRepeatedAs0421WithBackoffUntilAcknowledged(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{})
	link := startLink(t, srv.Addr(), linkTimeout, true)
	before, _ := srv.Balance(card.PAN)
	stan, at := purchaseAtIssuer(t, link, "000501", 700)
	// From now on issuer-sim processes every reversal and drops its answer.
	if err := srv.SetFaults(issuersim.Faults{DropShare: 1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := saf.Config{RetryBase: 20 * time.Millisecond, RetryMax: 40 * time.Millisecond, MaxAttempts: 100,
		PollInterval: 10 * time.Millisecond}
	q := saf.NewQueue(pgtest.Pool(t, db.App), cfg, nil)
	if err := q.Enqueue(context.Background(), reversal(stan, at, 700)); err != nil {
		t.Fatal(err)
	}
	stop := running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "three repeats", func() bool { return srv.Stats().Requests["0421"] >= 3 })
	stop()

	r := list(t, q)[0]
	req := srv.Stats().Requests
	if req["0420"] != 1 || int64(r.Attempts) != req["0420"]+req["0421"] || r.Status != saf.StatusPending {
		t.Fatalf("issuer-sim requests %v, item attempts %d status %s", req, r.Attempts, r.Status)
	}
	// The next attempt waits the back-off after the last one: at least Backoff(attempts), and not a
	// lease (the attempt was settled, not left claimed).
	wait := r.NextAttemptAt.Sub(*lastAttempt(t, db, r.ID))
	if min := q.Config().Backoff(r.Attempts); wait < min || wait >= q.Config().Lease {
		t.Fatalf("next attempt %v after the last, want at least %v and less than the lease", wait, min)
	}
	if !strings.Contains(r.LastError, "timeout") {
		t.Fatalf("last error %q", r.LastError)
	}
	// Applied once whatever the number of copies.
	if rec := simRecord(t, srv, stan, at); rec.ReversalsApplied != 1 || rec.ReversalsNamed != r.Attempts {
		t.Fatalf("issuer-sim record %+v after %d attempts", rec, r.Attempts)
	}

	// The issuer answers again: the next repeat settles it.
	if err := srv.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	stop = running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "the acknowledgement", func() bool { return stats(t, q).Done == 1 })
	stop()
	if b, _ := srv.Balance(card.PAN); b != before {
		t.Fatalf("balance %d, want %d", b, before)
	}
	if req := srv.Stats().Requests; req["0420"] != 1 {
		t.Fatalf("first-attempt MTI sent again: %v", req)
	}
}

func lastAttempt(t *testing.T, db pgtest.DB, id string) *time.Time {
	t.Helper()
	var at time.Time
	if err := pgtest.Pool(t, db.App).QueryRow(context.Background(), `SELECT last_attempt_at FROM saf_item WHERE id = $1`, id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return &at
}

func TestItemIsFlaggedForAnOperatorAfterMaxAttemptsAndCanBeRequeued(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{DropShare: 1, Seed: 2})
	link := startLink(t, srv.Addr(), linkTimeout, true)
	cfg := saf.Config{RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, MaxAttempts: 3,
		PollInterval: 10 * time.Millisecond}
	q := saf.NewQueue(pgtest.Pool(t, db.App), cfg, nil)
	if err := q.Enqueue(context.Background(), reversal("000601", "0102030405", 100)); err != nil {
		t.Fatal(err)
	}
	stop := running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "the operator flag", func() bool { return stats(t, q).Operator == 1 })
	stop()
	if req := srv.Stats().Requests; req["0420"] != 1 || req["0421"] != 2 {
		t.Fatalf("issuer-sim requests %v, want one 0420 and two 0421", req)
	}
	recs, err := q.List(context.Background(), saf.StatusOperator, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Attempts != 3 || !strings.Contains(recs[0].LastError, "3 attempts unanswered") {
		t.Fatalf("operator items %+v", recs)
	}
	if st := stats(t, q); st.Flagged != 1 || st.Unanswered != 3 {
		t.Fatalf("stats %+v", st)
	}

	// The operator requeues it once the issuer answers: it goes as a repeat and is done.
	if err := srv.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := q.Requeue(context.Background(), recs[0].ID); err != nil || !ok {
		t.Fatalf("requeue: %v %v", ok, err)
	}
	if ok, _ := q.Requeue(context.Background(), recs[0].ID); ok {
		t.Fatal("requeued an item that is not flagged")
	}
	stop = running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "the requeued item to be done", func() bool { return stats(t, q).Done == 1 })
	stop()
	if req := srv.Stats().Requests; req["0420"] != 1 || req["0421"] != 3 {
		t.Fatalf("issuer-sim requests %v", req)
	}
}

// An issuer that does not answer one item holds only that item for its timeout: the queue keeps
// MaxBatch items in flight and claims more as attempts finish, so items enqueued after the silent one
// was sent are all sent and done while its attempt still waits for an answer (not yet settled), more
// of them than the slots beside it, and it is repeated afterwards.
func TestUnansweredItemDoesNotHoldUpTheOthers(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{DropShare: 1, Seed: 4})
	// The timeout only has to outlast sending the others; the assertion is on order, not on time.
	link := startLink(t, srv.Addr(), 5*time.Second, true)
	cfg := saf.Config{RetryBase: 10 * time.Millisecond, PollInterval: 10 * time.Millisecond, MaxBatch: 4}
	q := saf.NewQueue(pgtest.Pool(t, db.App), cfg, nil)
	ctx := context.Background()
	const silentSTAN, others = "001201", 12 // three times the slots left beside the silent item
	if err := q.Enqueue(ctx, reversal(silentSTAN, "0102030405", 100)); err != nil {
		t.Fatal(err)
	}
	stop := running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "the silent item's answer to be dropped", func() bool { return srv.Stats().Dropped == 1 })
	if err := srv.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	for i := range others {
		if err := q.Enqueue(ctx, reversal(fmt.Sprintf("%06d", 1300+i), "0102030405", int64(200+i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the others to be done", func() bool { return stats(t, q).Done >= others })
	// Read after the others were seen done: the silent item's attempt had not yet timed out.
	if st := stats(t, q); st.Unanswered != 0 {
		t.Fatalf("the others were done only after the silent item's attempt timed out: %+v", st)
	}
	for _, r := range list(t, q) {
		if r.OrigSTAN == silentSTAN && (r.Status != saf.StatusPending || r.Attempts != 1 || r.LastError != "") {
			t.Fatalf("silent item settled before the others were done: %+v", r)
		}
	}
	waitFor(t, "the silent item's repeat to be done", func() bool { return stats(t, q).Done == others+1 })
	stop()
	for _, r := range list(t, q) {
		if want := map[bool]int{true: 2, false: 1}[r.OrigSTAN == silentSTAN]; r.Status != saf.StatusDone || r.Attempts != want {
			t.Errorf("item %s: %s after %d attempts, want done after %d", r.OrigSTAN, r.Status, r.Attempts, want)
		}
	}
	if req := srv.Stats().Requests; req["0420"] != others+1 || req["0421"] != 1 {
		t.Fatalf("issuer-sim requests %v, want %d 0420 and one 0421", req, others+1)
	}
	if st := stats(t, q); st.Sent != others+2 || st.Unanswered != 1 || st.Answered != others+1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIssuerDownIsNotAnAttempt(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{RefuseSignOn: true})
	link := startLink(t, srv.Addr(), linkTimeout, false)
	cfg := saf.Config{RetryBase: 10 * time.Millisecond, MaxAttempts: 1, PollInterval: 10 * time.Millisecond}
	q := saf.NewQueue(pgtest.Pool(t, db.App), cfg, nil)
	if err := q.Enqueue(context.Background(), reversal("000701", "0102030405", 100)); err != nil {
		t.Fatal(err)
	}
	stop := running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "sign-ons to be refused", func() bool { return srv.Stats().SignOnsRefused >= 3 })
	if r := list(t, q)[0]; r.Attempts != 0 || r.Status != saf.StatusPending {
		t.Fatalf("while the issuer refuses sign-on: %+v", r)
	}
	// The issuer comes back: with MaxAttempts 1 the item must still get its first (0420) attempt.
	if err := srv.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reversal to be acknowledged", func() bool { return stats(t, q).Done == 1 })
	stop()
	if req := srv.Stats().Requests; req["0420"] != 1 || req["0421"] != 0 {
		t.Fatalf("issuer-sim requests %v", req)
	}
}

func TestTwoNodesOnOneDatabaseNeverSendTheSameItem(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{})
	const items = 300
	ctx := context.Background()
	seed := saf.NewQueue(pgtest.Pool(t, db.App), saf.Config{}, nil)
	for i := range items {
		if err := seed.Enqueue(ctx, reversal(fmt.Sprintf("%06d", 100000+i), "0102030405", int64(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	cfg := saf.Config{PollInterval: 5 * time.Millisecond, MaxBatch: 7}
	var queues []*saf.Queue
	var stops []func()
	for node := range 2 {
		c := cfg
		c.Node = fmt.Sprintf("node-%d", node)
		q := saf.NewQueue(pgtest.Pool(t, db.App), c, nil)
		link := startLink(t, srv.Addr(), time.Second, true)
		queues = append(queues, q)
		stops = append(stops, running(q, map[string]saf.Sender{issuer: link}))
	}
	waitFor(t, "every item to be done", func() bool { return stats(t, seed).Done == items })
	for _, stop := range stops {
		stop()
	}
	st := srv.Stats()
	if st.Requests["0420"] != items || st.Requests["0421"] != 0 || st.ReversalsUnknown != items {
		t.Fatalf("issuer-sim saw %v and %d reversals of unknown originals, want %d 0420 and nothing else",
			st.Requests, st.ReversalsUnknown, items)
	}
	var sent int64
	for i, q := range queues {
		s := stats(t, q).Sent
		t.Logf("node %d sent %d", i, s)
		sent += s
	}
	if sent != items {
		t.Fatalf("nodes sent %d messages for %d items", sent, items)
	}
	for _, r := range list(t, seed) {
		if r.Attempts != 1 {
			t.Fatalf("item %s/%s attempted %d times", r.OrigSTAN, r.OrigTime, r.Attempts)
		}
	}
}

func TestLateApprovalSendsADeliveredReversalAgain(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{})
	link := startLink(t, srv.Addr(), time.Second, true)
	q := saf.NewQueue(pgtest.Pool(t, db.App), saf.Config{PollInterval: 10 * time.Millisecond}, nil)
	it := reversal("000801", "0102030405", 100)
	if err := q.Enqueue(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	stop := running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "the reversal to be done", func() bool { return stats(t, q).Done == 1 })
	// A plain enqueue of a done item changes nothing; a late approval's sends it again, as a repeat.
	if err := q.Enqueue(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, q); st.Done != 1 || st.Pending != 0 {
		t.Fatalf("after a second enqueue: %+v", st)
	}
	late := it
	late.Reason = saf.ReasonLateResponse
	if err := q.EnqueueLate(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the repeat", func() bool { return srv.Stats().Requests["0421"] == 1 })
	waitFor(t, "the repeat to be done", func() bool { return stats(t, q).Done == 1 })
	stop()
	if req := srv.Stats().Requests; req["0420"] != 1 {
		t.Fatalf("issuer-sim requests %v", req)
	}
}

func TestLateReversalOfReadsTheOriginalFromTheAnswer(t *testing.T) {
	answer := func(mti, rc, proc string) *iso8583.Message {
		m := iso8583.NewMessage(specs.IssuerLink)
		m.MTI(mti)
		for id, v := range map[int]string{3: proc, 4: "000000001500", 7: "0102030405", 11: "000123", 32: acquirer,
			37: "000000000123", 38: "A12345", 39: rc, 41: terminal, 42: merchant, 49: "840"} {
			if err := m.Field(id, v); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	it, ok, err := saf.LateReversalOf(issuer, answer("0210", "00", "000000"), acquirer)
	if err != nil || !ok {
		t.Fatalf("late approval: ok=%v err=%v", ok, err)
	}
	want := reversal("000123", "0102030405", 1500)
	if it.OrigMTI != "0200" || it.OrigSTAN != want.OrigSTAN || it.OrigTime != want.OrigTime || it.Amount != 1500 ||
		it.AcquirerID != acquirer || it.TerminalID != terminal || it.Reason != saf.ReasonLateResponse || it.MTI != "0420" {
		t.Fatalf("late reversal %+v", it)
	}
	for name, m := range map[string]*iso8583.Message{
		"decline":          answer("0210", "51", "000000"),
		"balance inquiry":  answer("0210", "00", "310000"),
		"advice answer":    answer("0230", "00", "000000"),
		"reversal answer":  answer("0430", "00", "000000"),
		"network answer":   answer("0810", "00", "000000"),
		"pre-auth decline": answer("0110", "05", "000000"),
	} {
		if _, ok, err := saf.LateReversalOf(issuer, m, acquirer); ok || err != nil {
			t.Errorf("%s: ok=%v err=%v, want nothing to reverse", name, ok, err)
		}
	}
	if it, ok, _ := saf.LateReversalOf(issuer, answer("0110", "00", "000000"), acquirer); !ok || it.OrigMTI != "0100" {
		t.Errorf("late pre-authorisation approval: ok=%v orig MTI %s", ok, it.OrigMTI)
	}
}

func TestReversalOfAnUnsentStandInAdviceCancelsBoth(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{})
	link := startLink(t, srv.Addr(), time.Second, true)
	v := hsm.NewDevelopment()
	q := saf.NewQueue(pgtest.Pool(t, db.App), saf.Config{PollInterval: 10 * time.Millisecond, Opener: v}, nil)
	ctx := context.Background()
	// Named by the terminal's STAN and time, as a stand-in approval is.
	if err := q.Enqueue(ctx, standInAdvice(t, v, "000901", "0102030405", 300)); err != nil {
		t.Fatal(err)
	}
	rev := reversal("000901", "0102030405", 300)
	rev.Reason = saf.ReasonCustomerCancel
	if err := q.Enqueue(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, q); st.Cancelled != 2 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A marker item shows the queue drained while the cancelled pair stayed unsent.
	if err := q.Enqueue(ctx, reversal("000902", "0102030405", 1)); err != nil {
		t.Fatal(err)
	}
	stop := running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "the marker", func() bool { return stats(t, q).Done == 1 })
	stop()
	if st := srv.Stats(); st.Advices != 0 || st.Reversals != 1 {
		t.Fatalf("issuer-sim got %d advices and %d reversals, want only the marker", st.Advices, st.Reversals)
	}
}

func TestReversalWaitsUntilItsAdviceIsDelivered(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{DropShare: 1, Seed: 3})
	link := startLink(t, srv.Addr(), linkTimeout, true)
	v := hsm.NewDevelopment()
	cfg := saf.Config{RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, MaxAttempts: 100,
		PollInterval: 10 * time.Millisecond, Opener: v}
	q := saf.NewQueue(pgtest.Pool(t, db.App), cfg, nil)
	ctx := context.Background()
	before, _ := srv.Balance(card.PAN)
	if err := q.Enqueue(ctx, standInAdvice(t, v, "001001", "0102030405", 400)); err != nil {
		t.Fatal(err)
	}
	stop := running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "the first advice", func() bool { return srv.Stats().Advices >= 1 })
	// The issuer may have posted the advice: the reversal may no longer cancel it, and must wait.
	rev := reversal("001001", "0102030405", 400)
	rev.Reason = saf.ReasonCustomerCancel
	if err := q.Enqueue(ctx, rev); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two advice repeats", func() bool { return srv.Stats().Requests["0221"] >= 2 })
	if st := srv.Stats(); st.Reversals != 0 {
		t.Fatalf("a reversal overtook its undelivered advice: %v", st.Requests)
	}
	if err := srv.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "advice and reversal to be done", func() bool { return stats(t, q).Done == 2 })
	stop()
	advices := srv.Advices()
	if len(advices) != 1 || advices[0].MaskedPAN != card.Masked() || advices[0].Amount != 400 || !advices[0].Applied {
		t.Fatalf("issuer-sim advices %+v", advices)
	}
	// Whether the issuer undoes the advice is the issuer's business; this queue's is the order.
	b, _ := srv.Balance(card.PAN)
	t.Logf("issuer-sim balance %d before the advice, %d after the advice and its reversal", before, b)
	if req := srv.Stats().Requests; req["0220"] != 1 || req["0420"] != 1 {
		t.Fatalf("issuer-sim requests %v", req)
	}
}

func TestTimeoutReversalFillsInTheKeyOfALateReversalStoredFirst(t *testing.T) {
	db := pgtest.NewDatabase(t)
	ctx := context.Background()
	q := saf.NewQueue(pgtest.Pool(t, db.App), saf.Config{}, nil)
	it := reversal("000901", "0102030405", 700)
	late := it
	late.Reason, late.OriginalKey = saf.ReasonLateResponse, "" // the late answer does not know the terminal's key
	if err := q.EnqueueLate(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, it); err != nil {
		t.Fatal(err)
	}
	other := it
	other.OriginalKey = "1|" + terminal + "|another"
	if err := q.Enqueue(ctx, other); err != nil { // a known key is never replaced
		t.Fatal(err)
	}
	recs := list(t, q)
	if len(recs) != 1 {
		t.Fatalf("%d items after enqueueing one reversal three times", len(recs))
	}
	if r := recs[0]; r.OriginalKey != it.OriginalKey || r.Reason != saf.ReasonLateResponse || r.Status != saf.StatusPending {
		t.Fatalf("stored %+v", r)
	}
}
