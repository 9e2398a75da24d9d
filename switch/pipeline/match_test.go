package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/poswitch/poswitch/switch/txn"
)

// clock is a settable time source for the answer cache's TTL.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func request(mti string, stan int) *txn.Transaction {
	t := purchase()
	t.MTI, t.STAN, t.AcquirerID, t.TransmissionTime = mti, fmt.Sprintf("%06d", stan), "00000000001", "0614123045"
	return t
}

// answer plays the rest of the pipeline: the issuer's answer.
func answer(t *txn.Transaction, rc string) {
	t.Response, t.AuthCode, t.RRN, t.AdditionalAmounts = rc, "A1B2C3", "432919000001", "1002156C000000012345"
	t.Booked = rc == txn.RCApproved
}

func TestMatchAnswersDuplicatesAndRetransmissions(t *testing.T) {
	cases := []struct {
		name string
		// first runs through Match and, unless inFlight, gets answer firstRC and Done.
		firstMTI string
		firstRC  string
		inFlight bool
		// second is the copy that follows.
		secondMTI string
		edit      func(*txn.Transaction)
		wantRC    string // "" means the second runs on (not ended by Match)
		wantAuth  string
	}{
		{name: "same request in flight is 94", firstMTI: "0200", inFlight: true, secondMTI: "0200", wantRC: txn.RCDuplicate},
		{name: "repeat of a request in flight is 94", firstMTI: "0200", inFlight: true, secondMTI: "0201", wantRC: txn.RCDuplicate},
		{name: "retransmission of an approval gets it again", firstMTI: "0200", firstRC: "00", secondMTI: "0200", wantRC: "00", wantAuth: "A1B2C3"},
		{name: "repeat of an approval gets it again", firstMTI: "0200", firstRC: "00", secondMTI: "0201", wantRC: "00", wantAuth: "A1B2C3"},
		{name: "repeat of a decline gets the decline", firstMTI: "0200", firstRC: "51", secondMTI: "0201", wantRC: "51", wantAuth: "A1B2C3"},
		{name: "repeat of a reversal gets its 00", firstMTI: "0400", firstRC: "00", secondMTI: "0401", wantRC: "00", wantAuth: "A1B2C3"},
		{name: "same identity, other amount is 94", firstMTI: "0200", firstRC: "00", secondMTI: "0201",
			edit: func(t *txn.Transaction) { t.Amount++ }, wantRC: txn.RCDuplicate},
		{name: "same identity, other card is 94", firstMTI: "0200", firstRC: "00", secondMTI: "0200",
			edit: func(t *txn.Transaction) { t.PAN = "5413330000000019" }, wantRC: txn.RCDuplicate},
		{name: "96 is not kept: the retransmission runs again", firstMTI: "0200", firstRC: "96", secondMTI: "0201"},
		{name: "an advice is not its request", firstMTI: "0200", firstRC: "00", secondMTI: "0220"},
		{name: "another STAN is another transaction", firstMTI: "0200", inFlight: true, secondMTI: "0200",
			edit: func(t *txn.Transaction) { t.STAN = "000002" }},
		{name: "another terminal is another transaction", firstMTI: "0200", firstRC: "00", secondMTI: "0200",
			edit: func(t *txn.Transaction) { t.TerminalID = "T2" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewMatch(MatchConfig{})
			ctx := context.Background()
			first := request(c.firstMTI, 1)
			m.Run(ctx, first)
			if first.Ended() {
				t.Fatalf("first request ended by Match: %s", first.Response)
			}
			if !c.inFlight {
				answer(first, c.firstRC)
				m.Done(first)
			}
			second := request(c.secondMTI, 1)
			if c.edit != nil {
				c.edit(second)
			}
			m.Run(ctx, second)
			if second.Response != c.wantRC || second.Ended() != (c.wantRC != "") {
				t.Fatalf("second: response %q ended %v (%s), want %q", second.Response, second.Ended(), second.Reason, c.wantRC)
			}
			if c.wantRC != "" && !second.Duplicate {
				t.Error("answered by Match but not marked duplicate")
			}
			if second.AuthCode != c.wantAuth {
				t.Errorf("auth code %q, want %q", second.AuthCode, c.wantAuth)
			}
			if c.wantRC == c.firstRC && c.wantRC != "" && (second.RRN != "432919000001" || second.AdditionalAmounts != first.AdditionalAmounts) {
				t.Errorf("stored answer lost RRN or balance: %q %q", second.RRN, second.AdditionalAmounts)
			}
			// Done of a copy Match answered must not release or overwrite the original's state.
			m.Done(second)
			if c.inFlight && c.wantRC == txn.RCDuplicate {
				third := request(c.firstMTI, 1)
				m.Run(ctx, third)
				if third.Response != txn.RCDuplicate {
					t.Errorf("after the duplicate's Done the original is no longer in flight: %q", third.Response)
				}
			}
		})
	}
}

func TestMatchForgetsAnswersAfterTheirTTLAndBeyondItsBound(t *testing.T) {
	clk := &clock{now: time.Date(2025, 6, 14, 12, 0, 0, 0, time.UTC)}
	m := NewMatch(MatchConfig{MaxAnswers: matchShards * 2, AnswerTTL: time.Minute, Now: clk.Now})
	ctx := context.Background()
	finish := func(stan int) {
		tx := request("0200", stan)
		m.Run(ctx, tx)
		answer(tx, "00")
		m.Done(tx)
	}
	replayed := func(stan int) bool {
		tx := request("0201", stan)
		m.Run(ctx, tx)
		if !tx.Ended() {
			answer(tx, "00")
			m.Done(tx)
		}
		return tx.Ended()
	}
	finish(1)
	clk.now = clk.now.Add(59 * time.Second)
	if !replayed(1) {
		t.Fatal("answer forgotten within its TTL")
	}
	clk.now = clk.now.Add(2 * time.Second)
	if replayed(1) {
		t.Fatal("answer replayed after its TTL")
	}

	// Far more answers than the bound: the cache never holds more than its bound, and the newest
	// are kept.
	for stan := 100; stan < 100+matchShards*20; stan++ {
		finish(stan)
	}
	if st := m.Stats(); st.Answers > matchShards*2 || st.InFlight != 0 {
		t.Fatalf("holds %d answers (%d in flight), bound %d", st.Answers, st.InFlight, matchShards*2)
	}
	if !replayed(100 + matchShards*20 - 1) {
		t.Error("the newest answer was evicted")
	}
	if replayed(100) {
		t.Error("the oldest answer survived a full cache")
	}
}

func TestAwaitReturnsWhenTheOriginalIsAnswered(t *testing.T) {
	m := NewMatch(MatchConfig{})
	orig := request("0200", 7)
	m.Run(context.Background(), orig)
	if err := m.Await(context.Background(), request("0200", 8).Key()); err != nil {
		t.Fatalf("await of nothing in flight: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Await(context.Background(), orig.Key()) }()
	select {
	case err := <-done:
		t.Fatalf("Await returned %v while the original is in flight", err)
	case <-time.After(20 * time.Millisecond):
	}
	answer(orig, "00")
	m.Done(orig)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	again := request("0200", 9)
	m.Run(context.Background(), again)
	if err := m.Await(short, again.Key()); err == nil {
		t.Fatal("Await outlived its context")
	}
}
