package issuersim_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

// dropRun sends n purchases of amount over conns connections to a fresh issuer with faults and
// returns the issuer and how many sends got an answer. It waits until the issuer has processed all n
// and every answer it sent has arrived, then closes the clients so the dropped sends return.
func dropRun(t *testing.T, faults issuersim.Faults, card cards.Card, n, conns int, amount int64) (*issuersim.Server, int) {
	t.Helper()
	srv, err := issuersim.New(issuersim.Config{Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clients := make([]*terminalsim.Client, conns)
	for i := range clients {
		if clients[i], err = terminalsim.Dial(ctx, srv.Addr(), "issuer-link", false); err != nil {
			t.Fatal(err)
		}
	}
	var answered atomic.Int64
	var wrong atomic.Value
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := clients[i%conns].Send(ctx, terminalsim.NewPurchase(shop, card, amount, "", i+1))
			if err != nil {
				return
			}
			answered.Add(1)
			if code := field(resp, 39); code != "00" {
				wrong.Store(fmt.Sprintf("STAN %d answered %s", i+1, code))
			}
		}()
	}
	for {
		st := srv.Stats()
		if st.Requests["0200"] == int64(n) && answered.Load() == int64(n)-st.Dropped {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("issuer processed %d of %d, %d answered, %d dropped", st.Requests["0200"], n, answered.Load(), st.Dropped)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range clients {
		_ = c.Close()
	}
	wg.Wait()
	if w := wrong.Load(); w != nil {
		t.Fatal(w)
	}
	return srv, int(answered.Load())
}

func TestDropShareDropsAStableShareOfAnswersAndTheDroppedAreStillDebited(t *testing.T) {
	const n, amount = 2000, 100
	card := cards.MustLookup("4761739000000012")
	faults := issuersim.Faults{DropShare: 0.2, Seed: 20260614}
	var dropped [2]int64
	for run := range dropped {
		srv, answered := dropRun(t, faults, card, n, 4, amount)
		st := srv.Stats()
		dropped[run] = st.Dropped
		if int64(answered) != n-st.Dropped || st.Delayed != 0 || st.Closed != 0 {
			t.Fatalf("run %d: %d answered, stats %+v", run, answered, st)
		}
		recs := srv.Transactions()
		droppedRecs := 0
		for _, r := range recs {
			if r.Response != "00" || !r.Applied || r.Copies != 1 || r.MaskedPAN != card.Masked() {
				t.Fatalf("run %d: record %+v", run, r)
			}
			droppedRecs += r.Dropped
		}
		if len(recs) != n || int64(droppedRecs) != st.Dropped {
			t.Fatalf("run %d: %d records, %d marked dropped, stats say %d", run, len(recs), droppedRecs, st.Dropped)
		}
		// The dropped purchases were applied like the answered ones: the whole run was debited.
		if bal, _ := srv.Balance(card.PAN); card.Balance-bal != n*amount {
			t.Fatalf("run %d: balance moved by %d, want %d", run, card.Balance-bal, n*amount)
		}
	}
	// The count is a function of the seed alone, whatever order the requests arrived in. The bounds
	// are 5 standard deviations around 400: a seed outside them would be a broken generator.
	if dropped[0] != dropped[1] {
		t.Fatalf("same seed dropped %d then %d", dropped[0], dropped[1])
	}
	if sd := math.Sqrt(n * 0.2 * 0.8); math.Abs(float64(dropped[0])-n*0.2) > 5*sd {
		t.Fatalf("dropped %d of %d at share 0.2", dropped[0], n)
	}
	t.Logf("seed %d dropped %d of %d", faults.Seed, dropped[0], n)
}

func TestDelayedAnswersArriveAfterTheDelayUntilFaultsAreTurnedOff(t *testing.T) {
	const delay = 300 * time.Millisecond
	srv, c := start(t, issuersim.Config{Faults: issuersim.Faults{DelayShare: 1, Delay: delay}})
	card := cards.MustLookup("4761730000000011")
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			began := time.Now()
			resp, err := c.Send(ctx, terminalsim.NewPurchase(shop, card, 100, "", 10+i))
			if err != nil {
				errs <- err
				return
			}
			if took := time.Since(began); took < delay || field(resp, 39) != "00" {
				errs <- fmt.Errorf("answered %s after %v, delay is %v", field(resp, 39), took, delay)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := srv.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if code := field(send(t, c, terminalsim.NewPurchase(shop, card, 100, "", 20)), 39); code != "00" {
		t.Fatalf("answered %s", code)
	}
	st := srv.Stats()
	if st.Delayed != 5 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	delayed := 0
	for _, r := range srv.Transactions() {
		delayed += r.Delayed
	}
	if delayed != 5 {
		t.Fatalf("%d records marked delayed", delayed)
	}
}

func TestCloseShareClosesTheConnectionAfterProcessingTheRequest(t *testing.T) {
	srv, c := start(t, issuersim.Config{Faults: issuersim.Faults{CloseShare: 1}})
	card := cards.MustLookup("4761730000000011")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Send(ctx, terminalsim.NewPurchase(shop, card, 700, "", 1)); err == nil || ctx.Err() != nil {
		t.Fatalf("send got %v (context %v), want the connection closed", err, ctx.Err())
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("connection still up")
	}
	if bal, _ := srv.Balance(card.PAN); card.Balance-bal != 700 {
		t.Fatalf("balance moved by %d, want 700", card.Balance-bal)
	}
	if recs := srv.Transactions(); len(recs) != 1 || recs[0].Closed != 1 || !recs[0].Applied {
		t.Fatalf("records %+v", recs)
	}
	// With the faults off a new connection is served.
	if err := srv.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	c2, err := terminalsim.Dial(ctx, srv.Addr(), "issuer-link", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if code := field(send(t, c2, terminalsim.NewPurchase(shop, card, 700, "", 2)), 39); code != "00" {
		t.Fatalf("answered %s", code)
	}
	if st := srv.Stats(); st.Closed != 1 || st.Connections != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func networkMessage(t *testing.T, code string, stan int) *iso8583.Message {
	t.Helper()
	return linkMessage(t, "0800", map[int]string{7: "0614123045", 11: fmt.Sprintf("%06d", stan), 41: "SWITCH01", 70: code})
}

func TestRefusedSignOnIsDeclinedWhileNetworkManagementIsNeverFaulted(t *testing.T) {
	// Every financial answer is dropped, yet echo and sign-off are answered and sign-on is declined.
	srv, c := start(t, issuersim.Config{Faults: issuersim.Faults{DropShare: 1, RefuseSignOn: true}})
	for i, tc := range []struct{ code, want string }{{"001", "91"}, {"301", "00"}, {"002", "00"}} {
		resp := send(t, c, networkMessage(t, tc.code, i+1))
		if mti, _ := resp.GetMTI(); mti != "0810" || field(resp, 39) != tc.want {
			t.Fatalf("70=%s answered %s %s, want 0810 %s", tc.code, mti, field(resp, 39), tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Send(ctx, terminalsim.NewPurchase(shop, cards.MustLookup("4761730000000011"), 100, "", 9)); err == nil {
		t.Fatal("purchase answered with drop share 1")
	}
	// Turned off at run time, sign-on succeeds on the same connection.
	if err := srv.SetFaults(issuersim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if code := field(send(t, c, networkMessage(t, "001", 10)), 39); code != "00" {
		t.Fatalf("sign-on after faults off answered %s", code)
	}
	st := srv.Stats()
	if st.SignOnsRefused != 1 || st.SignOns != 1 || st.Echoes != 1 || st.SignOffs != 1 || st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFaultsOutsideTheirBoundsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults issuersim.Faults
	}{
		{"negative drop share", issuersim.Faults{DropShare: -0.1}},
		{"drop share above 1", issuersim.Faults{DropShare: 1.5}},
		{"NaN close share", issuersim.Faults{CloseShare: math.NaN()}},
		{"shares adding up to more than 1", issuersim.Faults{DropShare: 0.6, CloseShare: 0.6}},
		{"delay share without a delay", issuersim.Faults{DelayShare: 0.5}},
		{"negative delay", issuersim.Faults{DelayShare: 0.5, Delay: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := issuersim.New(issuersim.Config{Faults: tc.faults}); err == nil {
				t.Fatal("New accepted the faults")
			}
			srv, err := issuersim.New(issuersim.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.SetFaults(tc.faults); err == nil {
				t.Fatal("SetFaults accepted the faults")
			}
			if srv.Faults() != (issuersim.Faults{}) {
				t.Fatalf("refused faults took effect: %+v", srv.Faults())
			}
		})
	}
}

func TestDroppedReversalIsStillApplied(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	card := cards.MustLookup("4761730000000011")
	purchase := linkMessage(t, "0200", purchaseFields(card, "000000", 4200, 1))
	if code := field(send(t, c, purchase), 39); code != "00" {
		t.Fatalf("purchase answered %s", code)
	}
	if err := srv.SetFaults(issuersim.Faults{DropShare: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Send(ctx, linkMessage(t, "0420", reversalFields(purchase, 2))); err == nil {
		t.Fatal("reversal answered with drop share 1")
	}
	if bal, _ := srv.Balance(card.PAN); bal != card.Balance {
		t.Fatalf("balance %d after the dropped reversal, want %d", bal, card.Balance)
	}
	if r := srv.Transactions()[0]; r.ReversalsNamed != 1 || r.ReversalsApplied != 1 {
		t.Fatalf("record %+v", r)
	}
}
