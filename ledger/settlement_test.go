package ledger

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestCutoverPaysMerchantsAndSettlesIssuers(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	if err := UpsertMerchant(ctx, tl.app, MerchantSettings{ID: "M1", SettlementAccount: "ICBC 6222 0000 1111", PayoutDelayDays: 2}); err != nil {
		t.Fatal(err)
	}
	p1 := purchase("M1", "ISS1", 100000) // fee 600
	p2 := purchase("M1", "ISS2", 50000)  // fee 300
	tl.book(t, p1)
	tl.book(t, p2)
	tl.book(t, on(Refund, p1, 20000))
	bd := time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)
	rep, err := Cutover(ctx, tl.app, "manual", bd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Payouts) != 1 {
		t.Fatalf("payouts: %+v", rep.Payouts)
	}
	p := rep.Payouts[0]
	if p.Gross != 150000 || p.Fee != 900 || p.Refunds != 20000 || p.Net != 129100 || p.SettlementAccount != "ICBC 6222 0000 1111" ||
		!p.ValueDate.Equal(bd.AddDate(0, 0, 2)) || p.EntryID == nil {
		t.Errorf("payout: %+v", p)
	}
	want := map[string]int64{"ISS1": 80000, "ISS2": 50000}
	for _, i := range rep.Issuers {
		if i.Net != want[i.Issuer] {
			t.Errorf("issuer %s net %d, want %d", i.Issuer, i.Net, want[i.Issuer])
		}
	}
	for _, acct := range []string{MerchantPayable("M1"), IssuerReceivable("ISS1"), IssuerReceivable("ISS2")} {
		if got := tl.balance(t, acct, "156"); got != 0 {
			t.Errorf("%s after cut-over %d, want 0", acct, got)
		}
	}
	if got := tl.balance(t, AccountSettlementBank, "156"); got != 900 {
		t.Errorf("settlement bank %d, want the fees 900", got)
	}
	// New bookings land in the next cycle.
	if res := tl.book(t, purchase("M1", "ISS1", 1000)); res.Cycle != rep.Cycle+1 {
		t.Errorf("booking after cut-over in cycle %d, want %d", res.Cycle, rep.Cycle+1)
	}
	got, err := SettlementReport(ctx, tl.app, rep.Cycle)
	if err != nil || len(got.Payouts) != 1 || got.Payouts[0].Net != 129100 {
		t.Errorf("settlement report: %+v, %v", got, err)
	}
}

func TestScheduledCutoverRunsOnceAcrossNodes(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	tl.book(t, purchase("M1", "ISS1", 1000))
	bd := time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)
	const nodes = 5
	reps := make([]CycleReport, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := 0; i < nodes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = Cutover(ctx, tl.app, "scheduled", bd, nil)
		}()
	}
	wg.Wait()
	closed := 0
	for i := range reps {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !reps[i].AlreadyClosed {
			closed++
		}
	}
	if closed != 1 {
		t.Errorf("%d nodes closed the cycle, want 1", closed)
	}
	var cycles int
	if err := tl.owner.QueryRow(ctx, `SELECT count(*) FROM settlement_close`).Scan(&cycles); err != nil || cycles != 1 {
		t.Errorf("%d closed cycles (%v), want 1", cycles, err)
	}
}

func TestCutoverScheduleDefaultsTo2300Shanghai(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	for _, c := range []struct {
		now, next time.Time
		date      string
	}{
		{time.Date(2025, 3, 14, 10, 0, 0, 0, sh), time.Date(2025, 3, 14, 23, 0, 0, 0, sh), "2025-03-14"},
		{time.Date(2025, 3, 14, 23, 0, 0, 0, sh), time.Date(2025, 3, 15, 23, 0, 0, 0, sh), "2025-03-15"},
		{time.Date(2025, 3, 14, 16, 30, 0, 0, time.UTC), time.Date(2025, 3, 15, 23, 0, 0, 0, sh), "2025-03-15"}, // 00:30 next day in Shanghai
	} {
		next, date, err := CutoverSchedule{}.Next(c.now)
		if err != nil || !next.Equal(c.next) || date.Format("2006-01-02") != c.date {
			t.Errorf("Next(%s) = %s %s %v, want %s %s", c.now, next, date.Format("2006-01-02"), err, c.next, c.date)
		}
	}
	if _, _, err := (CutoverSchedule{At: "25:00"}).Next(time.Now()); err == nil {
		t.Error("25:00 accepted")
	}
	if _, _, err := (CutoverSchedule{TimeZone: "Mars/Olympus"}).Next(time.Now()); err == nil {
		t.Error("unknown zone accepted")
	}
}

func TestBatchTotalsAreComparedWithTheLedger(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	p1 := purchase("M1", "ISS1", 10000)
	p2 := purchase("M1", "ISS1", 2500)
	tl.book(t, p1)
	tl.book(t, p2)
	tl.book(t, on(Void, p2, 2500))
	tl.book(t, on(Refund, p1, 1000))
	agree := Totals{DebitsCount: 2, DebitsAmount: 12500, DebitsReversalCount: 1, DebitsReversalAmount: 2500, CreditsCount: 1, CreditsAmount: 1000}
	agree.NetAmount = agree.Net()
	m, err := CompareBatchTotals(ctx, tl.app, "T1", 0, agree)
	if err != nil || !m.OK() {
		t.Fatalf("matching totals: %+v, %v", m, err)
	}
	off := agree
	off.DebitsAmount = 12600
	off.NetAmount = off.Net()
	m, err = CompareBatchTotals(ctx, tl.app, "T1", 0, off)
	if err != nil || m.OK() || len(m.Diffs) != 2 || m.Diffs[0].Field != 88 || m.Diffs[1].Field != 97 {
		t.Fatalf("totals off by 1.00 on field 88: %+v, %v", m, err)
	}
}
