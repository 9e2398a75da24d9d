package limits

import (
	"crypto/sha256"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value sums the series a collector reports now.
func value(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			panic(err)
		}
		sum += d.GetCounter().GetValue() + d.GetGauge().GetValue()
	}
	return sum
}

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// clock is a settable test clock.
type clock struct{ now atomic.Pointer[time.Time] }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.now.Store(&t) }
func (c *clock) Now() time.Time   { return *c.now.Load() }

func card(n string) []byte { d := sha256.Sum256([]byte("key|" + n)); return d[:] }

func policy() *Policy {
	return &Policy{
		Location: shanghai, MaxCardsPerDay: 1000,
		Merchants: map[string]Subject{
			"M1": {Rules: map[string]Rule{"156": {MaxAmount: 50000, DailyAmount: 100000, DailyCount: 5}},
				BlockedMCCs: map[string]bool{"7995": true}},
		},
		Terminals: map[string]Subject{
			"T1": {Rules: map[string]Rule{"156": {DailyCount: 3}}, BlockedMCCs: map[string]bool{"6051": true}},
		},
		Cards: map[string]Rule{"156": {MaxAmount: 40000, DailyAmount: 60000, DailyCount: 10}},
	}
}

func newLimiter(t *testing.T, p *Policy, c *clock) *Limiter {
	t.Helper()
	l, err := New(Config{Policy: p, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var noon = time.Date(2026, 11, 24, 12, 0, 0, 0, shanghai)

func req(amount int64) Request {
	return Request{Merchant: "M1", Terminal: "T1", Currency: "156", MCC: "5411", Amount: amount, Card: card("A")}
}

func TestEachLimitDeclinesWithItsScopeAndKind(t *testing.T) {
	type want struct {
		scope Scope
		kind  Kind
	}
	cases := []struct {
		name  string
		prior []Request // reserved first, all must pass
		r     Request
		want  *want
	}{
		{"within every limit", nil, req(1000), nil},
		{"merchant blocks the category", nil, func() Request { r := req(1000); r.MCC = "7995"; return r }(), &want{ScopeMerchant, KindBlockedMCC}},
		{"terminal blocks the category", nil, func() Request { r := req(1000); r.MCC = "6051"; return r }(), &want{ScopeTerminal, KindBlockedMCC}},
		{"merchant single maximum", nil, req(50001), &want{ScopeMerchant, KindMaxAmount}},
		{"merchant single maximum is inclusive", nil, func() Request { r := req(50000); r.Card = nil; return r }(), nil},
		{"card single maximum", nil, req(40001), &want{ScopeCard, KindMaxAmount}},
		{"merchant daily amount", []Request{
			withCard(req(40000), "B"), withCard(req(40000), "C")}, withCard(req(20001), "D"), &want{ScopeMerchant, KindDailyAmount}},
		{"merchant daily amount reached exactly passes", []Request{
			withCard(req(40000), "B"), withCard(req(40000), "C")}, withCard(req(20000), "D"), nil},
		{"terminal daily count", []Request{req(1), req(1), req(1)}, req(1), &want{ScopeTerminal, KindDailyCount}},
		{"card daily amount", []Request{
			onTerminal(req(30000), "T2"), onTerminal(req(30000), "T3")}, onTerminal(req(1), "T4"), &want{ScopeCard, KindDailyAmount}},
		{"other card unaffected", []Request{
			onTerminal(req(30000), "T2"), onTerminal(req(30000), "T3")}, withCard(onTerminal(req(1), "T4"), "B"), nil},
		{"limits are per currency", []Request{req(1), req(1), req(1)},
			func() Request { r := req(900000); r.Currency = "840"; return r }(), nil},
		{"no card digest: no card limits", nil, func() Request { r := req(45000); r.Card = nil; return r }(), nil},
		{"unknown merchant and terminal have no limits", nil,
			Request{Merchant: "M9", Terminal: "T9", Currency: "156", MCC: "7995", Amount: 39000}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLimiter(t, policy(), newClock(noon))
			for i, p := range c.prior {
				if _, d := l.Reserve(p); d != nil {
					t.Fatalf("prior request %d declined: %v", i, d)
				}
			}
			_, d := l.Reserve(c.r)
			switch {
			case c.want == nil && d != nil:
				t.Fatalf("declined: %v", d)
			case c.want != nil && d == nil:
				t.Fatalf("passed; want %s %s", c.want.scope, c.want.kind)
			case c.want != nil && (d.Scope != c.want.scope || d.Kind != c.want.kind):
				t.Fatalf("declined by %s %s (%v); want %s %s", d.Scope, d.Kind, d, c.want.scope, c.want.kind)
			}
			if d != nil {
				if got := value(l.declines.WithLabelValues(d.Scope.String(), d.Kind.String())); got != 1 {
					t.Errorf("decline metric %s/%s = %v, want 1", d.Scope, d.Kind, got)
				}
			}
		})
	}
}

func withCard(r Request, c string) Request    { r.Card = card(c); return r }
func onTerminal(r Request, id string) Request { r.Terminal = id; return r }

func TestConcurrentReservationsNeverPassADailyLimitTogether(t *testing.T) {
	p := policy()
	p.Terminals["T1"] = Subject{Rules: map[string]Rule{"156": {DailyCount: 10}}}
	l := newLimiter(t, p, newClock(noon))
	var passed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, d := l.Reserve(Request{Merchant: "M2", Terminal: "T1", Currency: "156", Amount: 1}); d == nil {
				passed.Add(1)
			}
		}()
	}
	wg.Wait()
	if passed.Load() != 10 {
		t.Fatalf("%d of 100 concurrent requests passed a daily count of 10", passed.Load())
	}
}

func TestReleaseGivesTheReservationBack(t *testing.T) {
	l := newLimiter(t, policy(), newClock(noon))
	for i := 0; i < 3; i++ {
		res, d := l.Reserve(req(100))
		if d != nil {
			t.Fatalf("attempt %d declined: %v", i, d)
		}
		l.Release(res) // declined by the issuer: it does not count
	}
	if u := l.TerminalUsage("T1", "156"); u != (Usage{}) {
		t.Fatalf("terminal usage after three released reservations: %+v", u)
	}
	if u := l.CardUsage(card("A"), "156"); u != (Usage{}) {
		t.Fatalf("card usage after three released reservations: %+v", u)
	}
	kept, _ := l.Reserve(req(100))
	_ = kept // approved: kept
	if u := l.MerchantUsage("M1", "156"); u != (Usage{Amount: 100, Count: 1}) {
		t.Fatalf("merchant usage %+v, want one of 100", u)
	}
	l.Release(Reservation{}) // the zero reservation releases nothing
	if u := l.MerchantUsage("M1", "156"); u.Count != 1 {
		t.Fatalf("zero reservation changed usage: %+v", u)
	}
}

func TestTheDayEndsAtMidnightInThePolicysZone(t *testing.T) {
	cases := []struct {
		name     string
		zone     *time.Location
		newDayAt time.Time // first instant of the next local day
	}{
		{"Asia/Shanghai by default", shanghai, time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC)},
		{"UTC", time.UTC, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)},
		{"New York", mustZone("America/New_York"), time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := policy()
			p.Location = c.zone
			clk := newClock(c.newDayAt.Add(-time.Second))
			l := newLimiter(t, p, clk)
			for i := 0; i < 3; i++ {
				if _, d := l.Reserve(req(1)); d != nil {
					t.Fatal(d)
				}
			}
			if _, d := l.Reserve(req(1)); d == nil || d.Kind != KindDailyCount {
				t.Fatalf("fourth of the day passed the terminal's daily count of 3: %v", d)
			}
			clk.set(c.newDayAt)
			if _, d := l.Reserve(req(1)); d != nil {
				t.Fatalf("first of the new day declined: %v", d)
			}
			if u := l.TerminalUsage("T1", "156"); u.Count != 1 {
				t.Fatalf("usage of the new day %+v, want one transaction", u)
			}
		})
	}
}

func TestReleaseAfterMidnightLeavesTheNewDayAlone(t *testing.T) {
	clk := newClock(time.Date(2026, 11, 24, 23, 59, 59, 0, shanghai))
	l := newLimiter(t, policy(), clk)
	res, d := l.Reserve(req(500))
	if d != nil {
		t.Fatal(d)
	}
	clk.set(time.Date(2026, 11, 25, 0, 0, 1, 0, shanghai))
	if _, d := l.Reserve(req(700)); d != nil {
		t.Fatal(d)
	}
	l.Release(res) // yesterday's, declined after midnight
	if u := l.MerchantUsage("M1", "156"); u != (Usage{Amount: 700, Count: 1}) {
		t.Fatalf("new day's usage %+v, want only today's 700", u)
	}
}

func TestCardsBeyondTheDailyCapAreNotTrackedButKeepTheirMaximum(t *testing.T) {
	p := policy()
	p.MaxCardsPerDay = 2
	p.Merchants = nil
	p.Terminals = nil
	l := newLimiter(t, p, newClock(noon))
	for _, c := range []string{"A", "B", "C", "C"} {
		if _, d := l.Reserve(withCard(req(30000), c)); d != nil {
			t.Fatalf("card %s declined: %v", c, d)
		}
	}
	if u := l.CardUsage(card("A"), "156"); u.Amount != 30000 {
		t.Errorf("tracked card usage %+v", u)
	}
	if u := l.CardUsage(card("C"), "156"); u != (Usage{}) {
		t.Errorf("card past the cap tracked: %+v", u)
	}
	if got := value(l.cardsUntracked); got != 2 {
		t.Errorf("untracked metric %v, want 2", got)
	}
	if got := value(l.cardsTracked); got != 2 {
		t.Errorf("tracked cards gauge %v, want 2", got)
	}
	if _, d := l.Reserve(withCard(req(40001), "D")); d == nil || d.Scope != ScopeCard || d.Kind != KindMaxAmount {
		t.Errorf("untracked card above the single maximum: %v", d)
	}
	// A tracked card still hits its daily amount.
	if _, d := l.Reserve(withCard(req(30001), "A")); d == nil || d.Kind != KindDailyAmount {
		t.Errorf("tracked card past its daily amount: %v", d)
	}
}

func TestNewPolicyKeepsTheDaysUsage(t *testing.T) {
	l := newLimiter(t, policy(), newClock(noon))
	if _, d := l.Reserve(req(1)); d != nil {
		t.Fatal(d)
	}
	p := policy()
	p.Terminals["T1"] = Subject{Rules: map[string]Rule{"156": {DailyCount: 1}}}
	if err := l.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	if _, d := l.Reserve(req(1)); d == nil || d.Scope != ScopeTerminal || d.Kind != KindDailyCount {
		t.Fatalf("the reloaded count of 1 did not see the transaction before the reload: %v", d)
	}
	if err := l.SetPolicy(&Policy{}); err == nil {
		t.Fatal("a policy without a zone was accepted")
	}
}

func TestDeclineTextNamesFiguresButNoCardData(t *testing.T) {
	l := newLimiter(t, policy(), newClock(noon))
	_, d := l.Reserve(Request{Merchant: "M2", Terminal: "T2", Currency: "156", Amount: 40001, Card: card("6221260000000000")})
	if d == nil {
		t.Fatal("passed")
	}
	if got := d.Error(); got != "card: amount 40001 above the single-transaction maximum 40000" {
		t.Errorf("text %q", got)
	}
	if strings.Contains(d.Error(), "6221") {
		t.Errorf("decline text holds card data: %q", d.Error())
	}
}

func TestMetricsRegister(t *testing.T) {
	l := newLimiter(t, policy(), newClock(noon))
	reg := prometheus.NewRegistry()
	if err := l.Register(reg); err != nil {
		t.Fatal(err)
	}
	l.Reserve(req(99999999))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range families {
		got[f.GetName()] = len(f.GetMetric())
	}
	want := map[string]int{"poswitch_limit_declines_total": 1, "poswitch_limit_cards_tracked": 1, "poswitch_limit_cards_untracked_total": 1}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s: %d series, want %d (gathered %v)", name, got[name], n, got)
		}
	}
}

func BenchmarkReserveAndRelease(b *testing.B) {
	l, err := New(Config{Policy: policy()})
	if err != nil {
		b.Fatal(err)
	}
	digests := make([][]byte, 1024)
	for i := range digests {
		digests[i] = card(string(rune(i)))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req(1)
		r.Card = digests[i%len(digests)]
		res, _ := l.Reserve(r)
		l.Release(res)
	}
}
