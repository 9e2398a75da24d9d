package integration

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/txn"
)

// outcome is what one terminal heard for one purchase.
type outcome struct {
	key      string // the switch's identity key: acquirer|terminal|STAN|transmission time|class
	mid      string
	amount   int64
	currency string
	rc       string
	expected string // the catalogue's promise for the card
}

// sendPurchases sends n purchases from each terminal over its own connection, inFlight at a time,
// choosing cards from the catalogue, and returns what every terminal heard.
func sendPurchases(t *testing.T, s *stack, listener, dialect string, perTerminal, inFlight int, pick []cards.Card) []outcome {
	t.Helper()
	var mu sync.Mutex
	var out []outcome
	var wg sync.WaitGroup
	for ti, term := range s.terminals {
		c := s.dial(listener, dialect, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(ti), 7))
			sem := make(chan struct{}, inFlight)
			var twg sync.WaitGroup
			for i := 0; i < perTerminal; i++ {
				card := pick[rng.IntN(len(pick))]
				amount := 100 + rng.Int64N(20000)
				stan := i + 1
				sem <- struct{}{}
				twg.Add(1)
				go func() {
					defer twg.Done()
					defer func() { <-sem }()
					req := terminalsim.NewPurchase(term, card, amount, card.Currency, stan)
					f7, _ := req.GetString(7)
					f11, _ := req.GetString(11)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					resp, err := c.Send(ctx, req)
					o := outcome{key: txn.IdentityKey("10000000001", term.TID, f11, f7, txn.MTIClass("0200")), mid: term.MID,
						amount: amount, currency: card.Currency, expected: card.Outcome}
					if err != nil {
						t.Errorf("terminal %s stan %s: %v", term.TID, f11, err)
						return
					}
					o.rc, _ = resp.GetString(39)
					mu.Lock()
					out = append(out, o)
					mu.Unlock()
				}()
			}
			twg.Wait()
		}()
	}
	wg.Wait()
	return out
}

func TestTwoThousandPurchasesAreBookedExactlyOnceAndBalance(t *testing.T) {
	s := startStack(t, stackOptions{terminals: 50})
	// Mixed approve and decline cards, decided by the issuer and by the switch.
	var pick []cards.Card
	pick = append(pick, cards.Load()...)
	pick = append(pick, cards.Load()...) // weight approvals
	pick = append(pick, cards.ByOutcome("51")...)
	pick = append(pick, cards.ByOutcome("54")...)
	pick = append(pick, cards.ByOutcome("05")...)
	pick = append(pick, cards.ByOutcome("14")...) // bad Luhn (switch) and not on file (issuer)
	pick = append(pick, cards.ByOutcome("15")...) // unroutable BIN (switch)
	outcomes := sendPurchases(t, s, "iso87a", "iso87a", 40, 8, pick)
	if len(outcomes) != 2000 {
		t.Fatalf("%d answers, want 2000", len(outcomes))
	}
	codes := map[string]int{}
	for _, o := range outcomes {
		codes[o.rc]++
		if o.rc != o.expected {
			t.Errorf("%s: answered %s, catalogue says %s", o.key, o.rc, o.expected)
		}
	}
	t.Logf("answers by code: %v", codes)
	for _, rc := range []string{"00", "51", "54", "05", "14", "15"} {
		if codes[rc] == 0 {
			t.Errorf("no %s among the answers: the mix did not exercise it", rc)
		}
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	type entry struct {
		count                         int
		sum, receivable, payable, fee int64
		currency                      string
	}
	rows, err := conn.Query(ctx, `
		SELECT e.txn_key, count(DISTINCT e.id), coalesce(sum(p.amount), 0),
		       coalesce(sum(p.amount) FILTER (WHERE p.account LIKE 'issuer_receivable:%'), 0),
		       coalesce(sum(p.amount) FILTER (WHERE p.account LIKE 'merchant_payable:%'), 0),
		       coalesce(sum(p.amount) FILTER (WHERE p.account = 'fee_income'), 0),
		       coalesce(min(p.currency), '')
		FROM journal_entry e LEFT JOIN posting p ON p.entry_id = e.id
		WHERE e.kind = 'purchase'
		GROUP BY e.txn_key`)
	if err != nil {
		t.Fatal(err)
	}
	booked := map[string]entry{}
	for rows.Next() {
		var k string
		var e entry
		if err := rows.Scan(&k, &e.count, &e.sum, &e.receivable, &e.payable, &e.fee, &e.currency); err != nil {
			t.Fatal(err)
		}
		booked[k] = e
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	approved := 0
	for _, o := range outcomes {
		e, ok := booked[o.key]
		if o.rc != txn.RCApproved {
			if ok {
				t.Errorf("declined %s (%s) has a journal entry", o.key, o.rc)
			}
			continue
		}
		approved++
		if !ok || e.count != 1 {
			t.Errorf("approved %s has %d journal entries, want 1", o.key, e.count)
			continue
		}
		fee := halfUpFee(o.amount, s.feeBP(o.mid))
		if e.sum != 0 || abs(e.receivable) != o.amount || abs(e.payable) != o.amount-fee || abs(e.fee) != fee ||
			e.currency != o.currency {
			t.Errorf("%s amount %d: postings receivable %d payable %d fee %d (want fee %d) sum %d currency %s",
				o.key, o.amount, e.receivable, e.payable, e.fee, fee, e.sum, e.currency)
		}
	}
	if len(booked) != approved {
		t.Errorf("%d purchase entries in the journal, %d approvals heard by terminals", len(booked), approved)
	}
	// The whole journal nets to zero per currency.
	rows, err = conn.Query(ctx, `SELECT currency, sum(amount) FROM posting GROUP BY currency`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var cur string
		var sum int64
		if err := rows.Scan(&cur, &sum); err != nil {
			t.Fatal(err)
		}
		if sum != 0 {
			t.Errorf("postings in %s sum to %d", cur, sum)
		}
	}
	if approved < 1000 {
		t.Errorf("only %d approvals: the mix is meant to approve most", approved)
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
