// Package limits holds the acquirer's risk limits and the day's usage against them: per merchant,
// terminal and card, in each currency, a single-transaction maximum, a daily amount and a daily
// count; and per merchant and terminal, merchant categories they may not take.
//
// A transaction reserves its amount before it goes to the issuer (Reserve), so that requests in
// flight at once cannot pass a limit together; the reservation is kept when the transaction is
// approved and released otherwise (Release). The day ends at local midnight in the policy's time
// zone, when every counter starts again from zero.
//
// Cards are keyed by a keyed digest of the PAN (the HSM's PANDigest), never the PAN. Their number is
// bounded per day (Policy.MaxCardsPerDay; a tracked card costs about 100 bytes): beyond it a new card's daily amount and count are not
// tracked (its single-transaction maximum still is), the transaction goes on, and
// poswitch_limit_cards_untracked_total counts it — an unbounded map would let a flood of card
// numbers exhaust the node's memory, and declining every new card would stop honest trade.
//
// Usage lives in this node's memory: a restart starts the day again from zero, and nodes sharing a
// database each count their own traffic.
package limits

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Scope is whom a limit applies to.
type Scope uint8

const (
	ScopeMerchant Scope = iota
	ScopeTerminal
	ScopeCard
)

func (s Scope) String() string { return [...]string{"merchant", "terminal", "card"}[s] }

// Kind is which limit a transaction hit.
type Kind uint8

const (
	KindMaxAmount   Kind = iota // one transaction above the maximum
	KindDailyAmount             // the day's sum would pass the limit
	KindDailyCount              // the day's count would pass the limit
	KindBlockedMCC              // the merchant category is blocked for this merchant or terminal
)

func (k Kind) String() string {
	return [...]string{"max_amount", "daily_amount", "daily_count", "blocked_mcc"}[k]
}

// Rule is one subject's limits in one currency, in its minor units; 0 means no limit of that kind.
type Rule struct {
	MaxAmount   int64
	DailyAmount int64
	DailyCount  int64
}

func (r Rule) daily() bool { return r.DailyAmount > 0 || r.DailyCount > 0 }

// Subject is a merchant's or a terminal's limits.
type Subject struct {
	Rules       map[string]Rule // by ISO 4217 numeric currency
	BlockedMCCs map[string]bool
}

// Policy is the limits in force. It is immutable once given to a Limiter; a reload builds a new one.
type Policy struct {
	Location       *time.Location // whose midnight ends the day
	MaxCardsPerDay int            // bound on cards tracked per day
	Merchants      map[string]Subject
	Terminals      map[string]Subject
	Cards          map[string]Rule // by currency; applies to every card
}

// maxSubjectsPerDay bounds the merchants and the terminals tracked per day; the estate in the
// configuration is far smaller, so only a caller passing unchecked IDs could reach it.
const maxSubjectsPerDay = 1 << 20

// Request is what a transaction asks of the limits.
type Request struct {
	Merchant, Terminal string
	Currency           string // ISO 4217 numeric
	MCC                string
	Amount             int64  // minor units
	Card               []byte // keyed digest of the PAN; nil: no card limits apply
}

// Decline says which limit a transaction hit. Its text names the subject and the figures, never card
// data.
type Decline struct {
	Scope   Scope
	Kind    Kind
	Subject string // merchant or terminal ID; empty for a card
	Limit   int64  // the limit (amount, or count)
	Used    int64  // the day's usage before this transaction (amount, or count)
	Amount  int64  // this transaction's amount
	MCC     string // for KindBlockedMCC
}

func (d *Decline) Error() string {
	who := d.Scope.String()
	if d.Subject != "" {
		who += " " + d.Subject
	}
	switch d.Kind {
	case KindBlockedMCC:
		return fmt.Sprintf("%s may not take merchant category %s", who, d.MCC)
	case KindMaxAmount:
		return fmt.Sprintf("%s: amount %d above the single-transaction maximum %d", who, d.Amount, d.Limit)
	case KindDailyAmount:
		return fmt.Sprintf("%s: daily amount %d would pass %d (used %d)", who, d.Used+d.Amount, d.Limit, d.Used)
	default:
		return fmt.Sprintf("%s: daily count %d reached", who, d.Limit)
	}
}

// Usage is a subject's approved (or reserved) amount and count of the day.
type Usage struct{ Amount, Count int64 }

type subjectKey struct{ id, currency string }

// cardKey keeps 16 bytes of the keyed digest: 128 bits of a keyed hash do not collide among the
// millions of cards a day brings, and the map stays small.
type cardKey struct {
	digest   [16]byte
	currency uint16
}

// Reservation is what Reserve counted for one transaction; Release takes it back. The zero value
// releases nothing.
type Reservation struct {
	day                int32
	amount             int64
	merchant, terminal *Usage
	card               *Usage
}

// Config builds a Limiter.
type Config struct {
	Policy *Policy
	Now    func() time.Time // clock; nil: time.Now
	Log    *zap.Logger
}

// Limiter checks transactions against the policy in force and counts the day's usage.
type Limiter struct {
	policy atomic.Pointer[Policy]
	now    func() time.Time
	log    *zap.Logger

	mu          sync.Mutex
	day         int32
	merchants   map[subjectKey]*Usage
	terminals   map[subjectKey]*Usage
	cards       map[cardKey]*Usage
	cardsWarned bool

	declines       *prometheus.CounterVec
	cardsUntracked prometheus.Counter
	cardsTracked   prometheus.GaugeFunc
}

// New builds a limiter with its first policy.
func New(cfg Config) (*Limiter, error) {
	if err := checkPolicy(cfg.Policy); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	l := &Limiter{now: cfg.Now, log: cfg.Log, day: -1}
	l.policy.Store(cfg.Policy)
	l.resetDay(-1)
	l.declines = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "poswitch_limit_declines_total",
		Help: "Transactions declined by a risk limit, by scope (merchant, terminal, card) and limit (max_amount, daily_amount, daily_count, blocked_mcc).",
	}, []string{"scope", "limit"})
	l.cardsUntracked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "poswitch_limit_cards_untracked_total",
		Help: "Transactions of new cards whose daily usage was not tracked because max_cards_per_day was reached.",
	})
	l.cardsTracked = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "poswitch_limit_cards_tracked",
		Help: "Cards whose daily usage is tracked today.",
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(len(l.cards))
	})
	return l, nil
}

func checkPolicy(p *Policy) error {
	if p == nil || p.Location == nil {
		return fmt.Errorf("limits: a policy with a time zone is required")
	}
	if p.MaxCardsPerDay < 1 {
		return fmt.Errorf("limits: max cards per day must be positive, is %d", p.MaxCardsPerDay)
	}
	return nil
}

// Register adds the limiter's metrics to a registry.
func (l *Limiter) Register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{l.declines, l.cardsUntracked, l.cardsTracked} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("registering limit metrics: %w", err)
		}
	}
	return nil
}

// SetPolicy installs a new policy; the day's usage is kept (a limit added now counts what this node
// has already approved today). A policy in another time zone starts a new day if the local date
// differs.
func (l *Limiter) SetPolicy(p *Policy) error {
	if err := checkPolicy(p); err != nil {
		return err
	}
	l.policy.Store(p)
	return nil
}

// Policy is the policy in force.
func (l *Limiter) Policy() *Policy { return l.policy.Load() }

// NeedsCard tells whether card limits apply in a currency, so a caller computes the card's digest
// only when it is used.
func (l *Limiter) NeedsCard(currency string) bool {
	_, ok := l.policy.Load().Cards[currency]
	return ok
}

// dayOf is the local date as yyyymmdd.
func dayOf(t time.Time, loc *time.Location) int32 {
	y, m, d := t.In(loc).Date()
	return int32(y*10000 + int(m)*100 + d)
}

// resetDay starts a new day's counters; l.mu is held (or l is not shared yet).
func (l *Limiter) resetDay(day int32) {
	l.day = day
	l.merchants = map[subjectKey]*Usage{}
	l.terminals = map[subjectKey]*Usage{}
	l.cards = map[cardKey]*Usage{}
	l.cardsWarned = false
}

// Reserve checks a transaction against the limits in force and, if it passes, counts it in the day's
// usage of its merchant, terminal and card. The checks run in this order, the first failing one
// declining: merchant category blocked for the merchant, then for the terminal; then for the
// merchant, the terminal and the card in turn: single-transaction maximum, daily amount, daily count.
func (l *Limiter) Reserve(r Request) (Reservation, *Decline) {
	p := l.policy.Load()
	now := l.now()
	mSub, tSub := p.Merchants[r.Merchant], p.Terminals[r.Terminal]
	if r.MCC != "" {
		if mSub.BlockedMCCs[r.MCC] {
			return l.decline(&Decline{Scope: ScopeMerchant, Kind: KindBlockedMCC, Subject: r.Merchant, MCC: r.MCC})
		}
		if tSub.BlockedMCCs[r.MCC] {
			return l.decline(&Decline{Scope: ScopeTerminal, Kind: KindBlockedMCC, Subject: r.Terminal, MCC: r.MCC})
		}
	}
	cardRule, cardLimited := p.Cards[r.Currency]
	cardLimited = cardLimited && len(r.Card) > 0
	var ck cardKey
	if cardLimited {
		cur, err := strconv.ParseUint(r.Currency, 10, 16)
		if err != nil {
			cardLimited = false
		}
		ck.currency = uint16(cur)
		copy(ck.digest[:], r.Card)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if day := dayOf(now, p.Location); day != l.day {
		l.resetDay(day)
	}
	mKey, tKey := subjectKey{r.Merchant, r.Currency}, subjectKey{r.Terminal, r.Currency}
	checks := [3]check{
		{ScopeMerchant, r.Merchant, mSub.Rules[r.Currency], l.merchants[mKey]},
		{ScopeTerminal, r.Terminal, tSub.Rules[r.Currency], l.terminals[tKey]},
	}
	n := 2
	if cardLimited {
		checks[n] = check{ScopeCard, "", cardRule, l.cards[ck]}
		n++
	}
	for _, c := range checks[:n] {
		var used Usage
		if c.used != nil {
			used = *c.used
		}
		switch {
		case c.rule.MaxAmount > 0 && r.Amount > c.rule.MaxAmount:
			return l.decline(&Decline{Scope: c.scope, Kind: KindMaxAmount, Subject: c.subject, Limit: c.rule.MaxAmount, Amount: r.Amount})
		case c.rule.DailyAmount > 0 && used.Amount+r.Amount > c.rule.DailyAmount:
			return l.decline(&Decline{Scope: c.scope, Kind: KindDailyAmount, Subject: c.subject, Limit: c.rule.DailyAmount, Used: used.Amount, Amount: r.Amount})
		case c.rule.DailyCount > 0 && used.Count+1 > c.rule.DailyCount:
			return l.decline(&Decline{Scope: c.scope, Kind: KindDailyCount, Subject: c.subject, Limit: c.rule.DailyCount, Used: used.Count, Amount: r.Amount})
		}
	}

	res := Reservation{day: l.day, amount: r.Amount}
	res.merchant = count(l.merchants, mKey, r.Amount)
	res.terminal = count(l.terminals, tKey, r.Amount)
	if cardLimited && cardRule.daily() {
		if u := l.cards[ck]; u != nil || len(l.cards) < p.MaxCardsPerDay {
			res.card = count(l.cards, ck, r.Amount)
		} else {
			l.cardsUntracked.Inc()
			if !l.cardsWarned {
				l.cardsWarned = true
				l.log.Warn("max_cards_per_day reached: new cards' daily limits are not tracked until midnight",
					zap.Int("max_cards_per_day", p.MaxCardsPerDay))
			}
		}
	}
	return res, nil
}

// check is one subject's rule and its usage so far.
type check struct {
	scope   Scope
	subject string
	rule    Rule
	used    *Usage
}

// count adds one transaction of amount to a subject's usage, creating it while under the bound.
func count[K comparable](m map[K]*Usage, k K, amount int64) *Usage {
	u := m[k]
	if u == nil {
		if len(m) >= maxSubjectsPerDay {
			return nil
		}
		u = &Usage{}
		m[k] = u
	}
	u.Amount += amount
	u.Count++
	return u
}

func (l *Limiter) decline(d *Decline) (Reservation, *Decline) {
	l.declines.WithLabelValues(d.Scope.String(), d.Kind.String()).Inc()
	return Reservation{}, d
}

// Release takes back what a reservation counted, unless the day has turned since (the new day
// started from zero without it).
func (l *Limiter) Release(res Reservation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if res.day != l.day {
		return
	}
	for _, u := range []*Usage{res.merchant, res.terminal, res.card} {
		if u != nil {
			u.Amount -= res.amount
			u.Count--
		}
	}
}

// MerchantUsage is a merchant's usage of the day in a currency.
func (l *Limiter) MerchantUsage(id, currency string) Usage {
	return l.usage(func() *Usage { return l.merchants[subjectKey{id, currency}] })
}

// TerminalUsage is a terminal's usage of the day in a currency.
func (l *Limiter) TerminalUsage(id, currency string) Usage {
	return l.usage(func() *Usage { return l.terminals[subjectKey{id, currency}] })
}

// CardUsage is a card's usage of the day in a currency, by its digest.
func (l *Limiter) CardUsage(digest []byte, currency string) Usage {
	cur, err := strconv.ParseUint(currency, 10, 16)
	if err != nil {
		return Usage{}
	}
	k := cardKey{currency: uint16(cur)}
	copy(k.digest[:], digest)
	return l.usage(func() *Usage { return l.cards[k] })
}

func (l *Limiter) usage(get func() *Usage) Usage {
	l.mu.Lock()
	defer l.mu.Unlock()
	if dayOf(l.now(), l.policy.Load().Location) != l.day {
		return Usage{}
	}
	if u := get(); u != nil {
		return *u
	}
	return Usage{}
}
