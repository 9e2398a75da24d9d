// Package standin decides for an issuer that cannot answer (its link is down or it timed out), within
// limits the acquirer sets per issuer: stand-in processing (STIP). It is off unless an issuer's rules
// enable it. It never stands in for reversals or anything but purchases and pre-authorisations, never
// for a request with an online PIN (the switch holds no PIN verification keys, so it cannot check the
// PIN; such requests are declined 91), never above MaxAmount, and never above FloorAmount without
// cardholder verification the card itself performed (EMV offline PIN, tag 9F34). Per-card daily
// amount and count are counted in PostgreSQL, keyed by the HSM's keyed PAN digest, so they hold across
// restarts and across the nodes sharing the database.
package standin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// Rules are one issuer's stand-in limits, in minor units of Currency. Stand-in covers only
// transactions in Currency: limits in one currency say nothing about another.
type Rules struct {
	Enabled            bool
	Currency           string // ISO 4217 numeric
	MaxAmount          int64  // no stand-in approval above this
	FloorAmount        int64  // no stand-in approval above this without cardholder verification
	DailyAmountPerCard int64  // stand-in approvals of one card in one day, summed
	DailyCountPerCard  int    // stand-in approvals of one card in one day
}

// Validate checks enabled rules; disabled rules are not checked.
func (r Rules) Validate() error {
	if !r.Enabled {
		return nil
	}
	switch {
	case len(r.Currency) != 3 || strings.Trim(r.Currency, "0123456789") != "":
		return fmt.Errorf("currency must be an ISO 4217 numeric code like 156, is %q", r.Currency)
	case r.MaxAmount <= 0:
		return fmt.Errorf("max_amount must be greater than 0, is %d", r.MaxAmount)
	case r.FloorAmount < 0 || r.FloorAmount > r.MaxAmount:
		return fmt.Errorf("floor_amount must be 0..max_amount (%d), is %d", r.MaxAmount, r.FloorAmount)
	case r.DailyAmountPerCard <= 0:
		return fmt.Errorf("daily_amount_per_card must be greater than 0, is %d", r.DailyAmountPerCard)
	case r.DailyCountPerCard <= 0:
		return fmt.Errorf("daily_count_per_card must be greater than 0, is %d", r.DailyCountPerCard)
	}
	return nil
}

// Why a request was or was not stood in for; the label of poswitch_standin_decisions_total.
const (
	Approved         = "approved"
	NotEnabled       = "not_enabled"      // the issuer's rules do not enable stand-in
	NotEligible      = "not_eligible"     // reversals, refunds, voids, inquiries: the issuer decides
	PINNotVerifiable = "pin_not_verified" // online PIN: the switch cannot verify it
	OtherCurrency    = "other_currency"   // not the currency of the rules
	AboveMax         = "above_max"        // above MaxAmount
	AboveFloor       = "above_floor"      // above FloorAmount without cardholder verification
	NoCard           = "no_card"          // no PAN to count against (or no digest configured)
	DailyAmount      = "daily_amount"     // the card's daily amount would be exceeded
	DailyCount       = "daily_count"      // the card's daily count would be exceeded
	CounterError     = "counter_error"    // the counters could not be read or written
)

// eligible are the types a switch may approve on an issuer's behalf.
var eligible = map[txn.Type]bool{txn.TypePurchase: true, txn.TypePreAuth: true}

// Decider holds every issuer's rules and counts stand-in approvals per card and day.
type Decider struct {
	pool      *pgxpool.Pool
	rules     map[string]Rules
	digest    func(pan string) []byte
	loc       *time.Location
	now       func() time.Time
	log       *zap.Logger
	decisions *prometheus.CounterVec
}

// Options are the parts of a Decider other than its rules.
type Options struct {
	// Digest is the keyed PAN digest (the HSM's PANDigest); nil declines every stand-in (NoCard).
	Digest func(pan string) []byte
	// Location is where a day starts and ends for the daily limits; nil: UTC.
	Location *time.Location
	Now      func() time.Time // nil: time.Now
	Log      *zap.Logger
}

// New builds a decider on the ledger's database (migration 00003 made its table).
func New(pool *pgxpool.Pool, rules map[string]Rules, o Options) (*Decider, error) {
	for issuer, r := range rules {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("stand-in rules of issuer %s: %w", issuer, err)
		}
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return &Decider{
		pool: pool, rules: rules, digest: o.Digest, loc: o.Location, now: o.Now, log: o.Log,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "poswitch_standin_decisions_total",
			Help: "Requests the switch was asked to stand in for, by issuer and outcome.",
		}, []string{"issuer", "outcome"}),
	}, nil
}

// Enabled tells whether stand-in is on for an issuer.
func (d *Decider) Enabled(issuer string) bool { return d.rules[issuer].Enabled }

// Decide tells whether the switch approves t on its issuer's behalf, and why (one of the constants
// above). An approval has counted against the card's daily limits.
func (d *Decider) Decide(ctx context.Context, t *txn.Transaction) (approve bool, why string) {
	why = d.decide(ctx, t)
	d.decisions.WithLabelValues(t.IssuerID, why).Inc()
	return why == Approved, why
}

func (d *Decider) decide(ctx context.Context, t *txn.Transaction) string {
	r, ok := d.rules[t.IssuerID]
	switch {
	case !ok || !r.Enabled:
		return NotEnabled
	case !eligible[t.Type] || t.Advice() || t.Repeat():
		return NotEligible
	case len(t.PINBlock) > 0:
		return PINNotVerifiable
	case t.Currency != r.Currency:
		return OtherCurrency
	case t.Amount > r.MaxAmount:
		return AboveMax
	case t.Amount > r.FloorAmount && !OfflinePINVerified(t.EMV):
		return AboveFloor
	case t.Amount > r.DailyAmountPerCard:
		return DailyAmount
	case t.PAN == "" || d.digest == nil:
		return NoCard
	}
	card := d.digest(t.PAN)
	why, err := d.count(ctx, t.IssuerID, card, r, t.Amount)
	if err != nil {
		d.log.Warn("stand-in counters unavailable; declining", zap.String("issuer", t.IssuerID), zap.Error(err))
		return CounterError
	}
	return why
}

// count adds one approval of amount to the card's day, unless that would exceed a daily limit.
func (d *Decider) count(ctx context.Context, issuer string, card []byte, r Rules, amount int64) (string, error) {
	now := d.now().In(d.loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var total int64
	err := d.pool.QueryRow(ctx, `
		INSERT INTO standin_card_day AS u (issuer, card, day, currency, amount, count)
		VALUES ($1, $2, $3, $4, $5, 1)
		ON CONFLICT (issuer, card, day, currency) DO UPDATE
		   SET amount = u.amount + EXCLUDED.amount, count = u.count + 1
		 WHERE u.amount + EXCLUDED.amount <= $6 AND u.count + 1 <= $7
		RETURNING amount`, issuer, card, day, r.Currency, amount, r.DailyAmountPerCard, r.DailyCountPerCard).Scan(&total)
	if err == nil {
		return Approved, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("counting stand-in usage: %w", err)
	}
	// The row exists and a limit stopped the update: say which.
	var count int
	if err := d.pool.QueryRow(ctx, `SELECT amount, count FROM standin_card_day
		WHERE issuer = $1 AND card = $2 AND day = $3 AND currency = $4`, issuer, card, day, r.Currency).Scan(&total, &count); err != nil {
		return "", fmt.Errorf("reading stand-in usage: %w", err)
	}
	if count+1 > r.DailyCountPerCard {
		return DailyCount, nil
	}
	return DailyAmount, nil
}

// Describe and Collect export poswitch_standin_decisions_total{issuer,outcome}; the lead registers
// the Decider with the node's registry.
func (d *Decider) Describe(ch chan<- *prometheus.Desc) { d.decisions.Describe(ch) }
func (d *Decider) Collect(ch chan<- prometheus.Metric) { d.decisions.Collect(ch) }
