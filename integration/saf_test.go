package integration

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/saf"
)

// sentPurchase is one purchase a terminal sent and what it heard. Every purchase of a test has an
// amount of its own, so the issuer-sim's record of it is found by amount alone, without trusting
// anything the switch says about which link STAN it used.
type sentPurchase struct {
	tid, key string
	card     cards.Card
	amount   int64
	rc       string
	started  time.Time
	took     time.Duration
}

// journalRow is one journal entry with the sum and count of its postings.
type journalRow struct {
	txnKey, originalKey, kind, status, currency string
	amount, sum                                 int64
	postings                                    int
}

// readJournal reads every journal entry through the switch's own (application role) pool.
func readJournal(t *testing.T, s *stack) []journalRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := s.node.Pool.Query(ctx, `
		SELECT e.txn_key, e.original_key, e.kind, e.status, e.currency, e.amount,
		       coalesce(sum(p.amount), 0), count(p.entry_id)
		  FROM journal_entry e LEFT JOIN posting p ON p.entry_id = e.id
		 GROUP BY e.id`)
	if err != nil {
		t.Fatalf("reading the journal: %v", err)
	}
	defer rows.Close()
	var out []journalRow
	for rows.Next() {
		var r journalRow
		if err := rows.Scan(&r.txnKey, &r.originalKey, &r.kind, &r.status, &r.currency, &r.amount, &r.sum, &r.postings); err != nil {
			t.Fatalf("reading the journal: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading the journal: %v", err)
	}
	return out
}

// journalByKey indexes journal entries by txn_key and, for an entry that follows another (a reversal or
// refund), by original_key too.
func journalByKey(journal []journalRow) map[string][]journalRow {
	entries := map[string][]journalRow{}
	for _, e := range journal {
		entries[e.txnKey] = append(entries[e.txnKey], e)
		if e.originalKey != "" {
			entries[e.originalKey] = append(entries[e.originalKey], e)
		}
	}
	return entries
}

// safRow is one store-and-forward item as the database holds it.
type safRow struct {
	issuer, kind, status, originalKey, reason string
	attempts                                  int
}

// readSAFByOriginal reads every store-and-forward item, indexed by the original transaction's key.
func readSAFByOriginal(t *testing.T, s *stack) map[string][]safRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := s.node.Pool.Query(ctx, `SELECT issuer, kind, status, original_key, reason, attempts FROM saf_item`)
	if err != nil {
		t.Fatalf("reading the store-and-forward queue: %v", err)
	}
	defer rows.Close()
	out := map[string][]safRow{}
	for rows.Next() {
		var r safRow
		if err := rows.Scan(&r.issuer, &r.kind, &r.status, &r.originalKey, &r.reason, &r.attempts); err != nil {
			t.Fatalf("reading the store-and-forward queue: %v", err)
		}
		out[r.originalKey] = append(out[r.originalKey], r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading the store-and-forward queue: %v", err)
	}
	return out
}

// waitForSAFDrained polls the queue until nothing is pending and nothing waits in memory to be
// stored. The bound only keeps a broken queue from hanging the test.
func waitForSAFDrained(t *testing.T, s *stack, bound time.Duration) saf.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound+5*time.Second)
	defer cancel()
	deadline := time.Now().Add(bound)
	for {
		st, err := s.node.SAF.Queue.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 && s.node.SAF.Backlog() == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("store-and-forward not drained after %v: %d pending (oldest %v), %d waiting in memory, %d done, %d for an operator",
				bound, st.Pending, st.OldestPending, s.node.SAF.Backlog(), st.Done, st.Operator)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recordsByAmount indexes the issuer-sims' records of financial requests by amount; an amount seen
// twice is an error (every purchase of these tests has its own amount, and the link never resends a
// financial request).
func recordsByAmount(t *testing.T, sims ...*issuersim.Server) map[int64]issuersim.Record {
	t.Helper()
	out := map[int64]issuersim.Record{}
	for _, is := range sims {
		for _, r := range is.Transactions() {
			if prev, dup := out[r.Amount]; dup {
				t.Errorf("amount %d recorded twice at the issuer: %s STAN %s and %s STAN %s", r.Amount, prev.MTI, prev.STAN, r.MTI, r.STAN)
			}
			out[r.Amount] = r
		}
	}
	return out
}

// logWarnings prints the switch's first warnings and errors, to explain a failure.
func logWarnings(t *testing.T, s *stack, limit int) {
	t.Helper()
	for _, e := range s.logs.FilterLevelExact(zapcore.WarnLevel).All() {
		if limit--; limit < 0 {
			return
		}
		t.Logf("switch log %s: %s %v", e.Level, e.Message, e.ContextMap())
	}
	for _, e := range s.logs.FilterLevelExact(zapcore.ErrorLevel).All() {
		if limit--; limit < 0 {
			return
		}
		t.Logf("switch log %s: %s %v", e.Level, e.Message, e.ContextMap())
	}
}

// TestDroppedIssuerAnswersAreReversedOnceAndTheQueueDrains runs 5,000 purchases through a switch
// whose issuers drop 20% of their answers (reversals included) and proves what store-and-forward
// promises: every purchase whose answer was lost is answered 91, reversed at the issuer exactly once
// if the issuer had applied it, and never booked; every approval a terminal heard is booked once and
// never reversed; the queue drains, repeating (0421) the reversals whose own answers were dropped;
// and the issuer's cardholder balances agree with the approvals the terminals heard.
func TestDroppedIssuerAnswersAreReversedOnceAndTheQueueDrains(t *testing.T) {
	const (
		terminals   = 20
		perTerminal = 250 // 5,000 purchases
		inFlight    = 16  // per terminal connection: 320 in flight
		timeout     = 400 * time.Millisecond
		dropShare   = 0.2
	)
	faults := issuersim.Faults{DropShare: dropShare, Seed: 5}
	s := startStack(t, stackOptions{terminals: terminals, issuerTimeout: timeout,
		issuerFaults: map[string]issuersim.Faults{cards.BankA: faults, cards.BankB: faults},
		safRetryBase: 100 * time.Millisecond, safRetryMax: time.Second, safPollInterval: 50 * time.Millisecond})

	// High-balance cards approve whatever the amount; the declining cards show that a lost decline is
	// reversed too (the switch cannot know it was a decline) and restores nothing.
	var pick []cards.Card
	for range 3 {
		pick = append(pick, cards.Load()...)
	}
	pick = append(pick, cards.ByOutcome(cards.InsufficientFunds)...)
	pick = append(pick, cards.ByOutcome(cards.DoNotHonour)...)
	for _, c := range pick {
		if c.DecidedBy != "issuer" {
			t.Fatalf("%s is decided by the switch: it would never reach the issuer", c.Masked())
		}
	}

	began := time.Now()
	sent := make([]sentPurchase, terminals*perTerminal)
	var wg sync.WaitGroup
	for ti, term := range s.terminals {
		c := s.dial("iso87a", "iso87a", false)
		rng := rand.New(rand.NewPCG(uint64(ti), 5))
		sem := make(chan struct{}, inFlight)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var twg sync.WaitGroup
			for i := range perTerminal {
				n := ti*perTerminal + i
				card := pick[rng.IntN(len(pick))]
				// Amounts 100..5,099 minor units: each purchase its own, all within the range for
				// which the catalogue's outcomes hold.
				amount := int64(100 + n)
				sem <- struct{}{}
				twg.Add(1)
				go func() {
					defer twg.Done()
					defer func() { <-sem }()
					req := terminalsim.NewPurchase(term, card, amount, card.Currency, i+1)
					p := sentPurchase{tid: term.TID, key: keyOf(req, term.TID), card: card, amount: amount, started: time.Now()}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					resp, err := c.Send(ctx, req)
					p.took = time.Since(p.started)
					if err != nil {
						t.Errorf("terminal %s amount %d: no answer: %v", term.TID, amount, err)
					} else {
						p.rc, _ = resp.GetString(39)
					}
					sent[n] = p
				}()
			}
			twg.Wait()
		}()
	}
	wg.Wait()
	trafficTook := time.Since(began)
	if t.Failed() {
		t.FailNow()
	}

	st := waitForSAFDrained(t, s, 30*time.Second)
	drainTook := time.Since(began) - trafficTook

	bankA, bankB := s.issuers[cards.BankA], s.issuers[cards.BankB]
	recs := recordsByAmount(t, bankA, bankB)
	journal := readJournal(t, s)
	entries := journalByKey(journal)
	queued := readSAFByOriginal(t, s)

	var approved, declined, unanswered, dropped, droppedApplied, timedOutUndropped int
	approvedByPAN := map[string]int64{}
	for _, p := range sent {
		rec, ok := recs[p.amount]
		if !ok {
			t.Errorf("%s amount %d (%s): the issuer never saw it", p.key, p.amount, p.rc)
			continue
		}
		if rec.Terminal != p.tid || rec.Copies != 1 {
			t.Errorf("%s amount %d: issuer record from terminal %q with %d copies", p.key, p.amount, rec.Terminal, rec.Copies)
		}
		if rec.ReversalsApplied > 1 {
			t.Errorf("%s amount %d: reversed %d times at the issuer", p.key, p.amount, rec.ReversalsApplied)
		}
		if rec.Dropped > 0 {
			dropped++
			if rec.Applied {
				droppedApplied++
			}
		}
		booked := entries[p.key]
		switch {
		// A lost answer is 91: the issuer may have approved, so the switch may not approve and must
		// reverse. An answer that came after the timeout (the box is noisy) is also 91 and reversed,
		// so the rule is "91 whenever no answer came in time", which every dropped answer satisfies.
		case p.rc == "91":
			unanswered++
			if rec.Dropped == 0 {
				timedOutUndropped++
			}
			want := 0
			if rec.Applied {
				want = 1
			}
			if rec.ReversalsApplied != want || rec.ReversalsNamed == 0 {
				t.Errorf("%s amount %d: answered 91, applied at the issuer %v, reversals named %d applied %d (want %d)",
					p.key, p.amount, rec.Applied, rec.ReversalsNamed, rec.ReversalsApplied, want)
			}
			if len(booked) != 0 {
				t.Errorf("%s amount %d: answered 91 but the journal holds %d entries for it (first: %s %s)",
					p.key, p.amount, len(booked), booked[0].kind, booked[0].status)
			}
			q := queued[p.key]
			if len(q) != 1 || q[0].kind != string(saf.KindReversal) || q[0].status != string(saf.StatusDone) {
				t.Errorf("%s amount %d: answered 91, store-and-forward holds %+v, want one reversal done", p.key, p.amount, q)
			}
		case rec.Dropped > 0:
			t.Errorf("%s amount %d: the issuer dropped its answer, yet the terminal heard %s", p.key, p.amount, p.rc)
		case p.rc == cards.Approved:
			approved++
			approvedByPAN[p.card.PAN] += p.amount
			if !rec.Applied || rec.ReversalsNamed != 0 {
				t.Errorf("%s amount %d: approval heard, issuer applied %v, reversals named %d", p.key, p.amount, rec.Applied, rec.ReversalsNamed)
			}
			if len(booked) != 1 || booked[0].kind != "purchase" || booked[0].status != "booked" || booked[0].txnKey != p.key ||
				booked[0].amount != p.amount || booked[0].sum != 0 || booked[0].postings == 0 {
				t.Errorf("%s amount %d: approval heard, journal holds %+v, want one balanced purchase", p.key, p.amount, booked)
			}
			if len(queued[p.key]) != 0 {
				t.Errorf("%s amount %d: approval heard, yet queued for the issuer: %+v", p.key, p.amount, queued[p.key])
			}
		case p.rc == p.card.Outcome:
			declined++
			if rec.Applied || rec.ReversalsNamed != 0 || len(booked) != 0 || len(queued[p.key]) != 0 {
				t.Errorf("%s amount %d: declined %s, issuer applied %v reversals %d, journal %d entries, queue %d items",
					p.key, p.amount, p.rc, rec.Applied, rec.ReversalsNamed, len(booked), len(queued[p.key]))
			}
		default:
			t.Errorf("%s amount %d (%s): answered %s, want %s or 91", p.key, p.amount, p.card.Masked(), p.rc, p.card.Outcome)
		}
	}

	// Nothing else is in the journal or the queue: only approvals were booked, only the unanswered
	// were queued, every item was delivered.
	if len(journal) != approved {
		t.Errorf("%d journal entries, %d approvals heard", len(journal), approved)
	}
	var items int
	for _, q := range queued {
		items += len(q)
	}
	if items != unanswered || st.Done != int64(unanswered) || st.Operator != 0 || st.Cancelled != 0 {
		t.Errorf("store-and-forward: %d items, done %d, operator %d, cancelled %d; want %d reversals done",
			items, st.Done, st.Operator, st.Cancelled, unanswered)
	}

	// The issuer's own view: every reversal it received named a request it knew, and those that
	// restored money are exactly the applied requests answered 91.
	var reversalsApplied, reversalsReceived, reversalsUnknown, repeats, droppedTotal int64
	for _, is := range []*issuersim.Server{bankA, bankB} {
		ist := is.Stats()
		reversalsApplied += ist.ReversalsApplied
		reversalsReceived += ist.Reversals
		reversalsUnknown += ist.ReversalsUnknown
		repeats += ist.Requests["0421"]
		droppedTotal += ist.Dropped
	}
	var appliedUnanswered int64
	for _, p := range sent {
		if rec := recs[p.amount]; p.rc == "91" && rec.Applied {
			appliedUnanswered++
		}
	}
	if reversalsApplied != appliedUnanswered || reversalsUnknown != 0 {
		t.Errorf("issuers applied %d reversals (want %d) and got %d for unknown originals", reversalsApplied, appliedUnanswered, reversalsUnknown)
	}
	// Faults hit reversals too: some 0420 answers were dropped and repeated as 0421.
	droppedReversalAnswers := droppedTotal - int64(dropped)
	if droppedReversalAnswers == 0 || repeats == 0 || st.Unanswered == 0 {
		t.Errorf("no reversal answer was dropped and repeated (dropped %d, 0421 %d, unanswered attempts %d): the run did not exercise repeats",
			droppedReversalAnswers, repeats, st.Unanswered)
	}
	// The shares come out near 20%: far off means the faults were not in force.
	if dropped < len(sent)/10 || dropped > len(sent)*3/10 {
		t.Errorf("%d of %d answers dropped, expected about %v", dropped, len(sent), dropShare)
	}

	// Every repeat is explained: an item is sent again only after an attempt went unanswered, and an
	// attempt goes unanswered when the issuer dropped its answer (or, on a noisy box, answered after
	// the timeout: a late answer the link counts). A queue that repeats what was acknowledged fails.
	var repeatsSent, lateAnswers int64
	for _, q := range queued {
		for _, r := range q {
			repeatsSent += int64(r.attempts - 1)
		}
	}
	for _, id := range []string{cards.BankA, cards.BankB} {
		lateAnswers += s.node.LinkStats(id).LateAnswers
	}
	if repeatsSent < droppedReversalAnswers || repeatsSent > droppedReversalAnswers+lateAnswers {
		t.Errorf("%d repeated attempts for %d dropped reversal answers and %d late answers", repeatsSent, droppedReversalAnswers, lateAnswers)
	}

	// Cardholder balances at the issuer are the catalogue's less the approvals the terminals heard.
	seen := map[string]bool{}
	for _, c := range pick {
		if seen[c.PAN] {
			continue
		}
		seen[c.PAN] = true
		want := c.Balance - approvedByPAN[c.PAN]
		is := s.issuers[c.Issuer]
		if b, ok := is.Balance(c.PAN); !ok || b != want {
			t.Errorf("%s at %s: balance %d, want %d (catalogue %d less %d approved)", c.Masked(), c.Issuer, b, want, c.Balance, approvedByPAN[c.PAN])
		}
		if a, _ := is.Available(c.PAN); a != want {
			t.Errorf("%s at %s: available %d, want %d", c.Masked(), c.Issuer, a, want)
		}
	}

	t.Logf("%d purchases in %v (queue drained %v later): %d approved, %d declined, %d answered 91 "+
		"(%d answers dropped, %d of them applied by the issuer; %d timed out without a drop)",
		len(sent), trafficTook.Round(time.Millisecond), drainTook.Round(time.Millisecond), approved, declined, unanswered,
		dropped, droppedApplied, timedOutUndropped)
	t.Logf("reversals: %d items done, %d reversal messages at the issuers (%d repeats 0421, %d answers dropped), %d applied; queue attempts sent %d, unanswered %d",
		st.Done, reversalsReceived, repeats, droppedReversalAnswers, reversalsApplied, st.Sent, st.Unanswered)
}
