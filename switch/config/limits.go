package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits are the acquirer's risk limits (docs/configuration.md, Limits). Amounts are minor units of
// the entry's currency; 0 or absent means no limit of that kind. Daily figures count approved
// purchases, pre-authorizations and bill payments of the local day in TimeZone.
type Limits struct {
	TimeZone       string       `yaml:"time_zone"`         // IANA zone of the day's midnight; default Asia/Shanghai
	MaxCardsPerDay int          `yaml:"max_cards_per_day"` // cards whose daily usage is tracked; default 1,000,000
	Merchants      []LimitEntry `yaml:"merchants"`         // by merchant ID (field 42)
	Terminals      []LimitEntry `yaml:"terminals"`         // by terminal ID (field 41)
	Cards          []LimitEntry `yaml:"cards"`             // one per currency, for every card; no id
}

// LimitEntry is the limits of one merchant or terminal (or of every card) in one currency, and the
// merchant categories it may not take.
type LimitEntry struct {
	ID          string   `yaml:"id"`
	Currency    string   `yaml:"currency"`     // ISO 4217 numeric; required with an amount or count
	MaxAmount   int64    `yaml:"max_amount"`   // one transaction (61)
	DailyAmount int64    `yaml:"daily_amount"` // sum of the day (61)
	DailyCount  int64    `yaml:"daily_count"`  // transactions of the day (65)
	BlockedMCCs []string `yaml:"blocked_mccs"` // merchants: 57, terminals: 58; not for cards

	line lines
}

// Bounds and defaults of the limits section.
const (
	defaultLimitsTimeZone       = "Asia/Shanghai"
	DefaultMaxCardsPerDay       = 1_000_000
	maxMaxCardsPerDay           = 50_000_000
	maxLimitAmount        int64 = 1e15 // well inside int64 when a day's amounts are summed
)

func (e *LimitEntry) UnmarshalYAML(n *yaml.Node) error {
	type plain LimitEntry
	e.line = keyLines(n)
	return n.Decode((*plain)(e))
}

// HasAmounts tells whether the entry limits amounts or counts (and so needs a currency).
func (e LimitEntry) HasAmounts() bool {
	return e.MaxAmount != 0 || e.DailyAmount != 0 || e.DailyCount != 0
}

func (c *Config) applyLimitsDefaults() {
	if c.Limits.TimeZone == "" {
		c.Limits.TimeZone = defaultLimitsTimeZone
	}
	if c.Limits.MaxCardsPerDay == 0 {
		c.Limits.MaxCardsPerDay = DefaultMaxCardsPerDay
	}
}

// LimitsLocation is the time zone whose midnight resets the daily limits (validated at load).
func (c *Config) LimitsLocation() *time.Location {
	loc, err := time.LoadLocation(c.Limits.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// validateLimits checks the limits section against the merchants and terminals of the file.
func (c *Config) validateLimits() error {
	bad := func(line int, key, format string, args ...any) error {
		return &Error{File: c.path, Line: line, Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	if _, err := time.LoadLocation(c.Limits.TimeZone); err != nil {
		return bad(0, "limits.time_zone", "%q is not an IANA time zone: %v", c.Limits.TimeZone, err)
	}
	if n := c.Limits.MaxCardsPerDay; n < 1 || n > maxMaxCardsPerDay {
		return bad(0, "limits.max_cards_per_day", "must be 1..%d, is %d", maxMaxCardsPerDay, n)
	}
	merchants, terminals := map[string]bool{}, map[string]bool{}
	for _, m := range c.Merchants {
		merchants[m.ID] = true
	}
	for _, t := range c.Terminals {
		terminals[t.ID] = true
	}
	sections := []struct {
		name    string
		entries []LimitEntry
		known   map[string]bool // nil: entries have no id (cards)
		what    string
	}{
		{"limits.merchants", c.Limits.Merchants, merchants, "merchant"},
		{"limits.terminals", c.Limits.Terminals, terminals, "terminal"},
		{"limits.cards", c.Limits.Cards, nil, "card"},
	}
	for _, sec := range sections {
		seen := map[[2]string]int{} // (id, currency) → line of the entry that set amounts for it
		for i, e := range sec.entries {
			key := fmt.Sprintf("%s[%d]", sec.name, i)
			at := func(k string) (int, string) { return e.line.of(k), key + "." + k }
			if sec.known == nil {
				if e.ID != "" {
					l, k := at("id")
					return bad(l, k, "card limits apply to every card and have no id (a card number never goes in the file)")
				}
				if len(e.BlockedMCCs) > 0 {
					l, k := at("blocked_mccs")
					return bad(l, k, "merchant categories are blocked per merchant (57) or terminal (58), not per card")
				}
			} else if !sec.known[e.ID] {
				l, k := at("id")
				return bad(l, k, "unknown %s %q", sec.what, e.ID)
			}
			if !e.HasAmounts() && len(e.BlockedMCCs) == 0 {
				l, k := at("currency")
				return bad(l, k, "the entry sets no limit (max_amount, daily_amount, daily_count or blocked_mccs)")
			}
			for _, f := range []struct {
				name string
				v    int64
			}{{"max_amount", e.MaxAmount}, {"daily_amount", e.DailyAmount}, {"daily_count", e.DailyCount}} {
				if f.v < 0 || f.v > maxLimitAmount {
					l, k := at(f.name)
					return bad(l, k, "must be 0 (no limit) to %d minor units, is %d", maxLimitAmount, f.v)
				}
			}
			if e.HasAmounts() {
				if len(e.Currency) != 3 || !isDigits(e.Currency) {
					l, k := at("currency")
					return bad(l, k, "an ISO 4217 numeric code like 156 is required with amounts and counts, is %q", e.Currency)
				}
				id := [2]string{e.ID, e.Currency}
				if first, dup := seen[id]; dup {
					l, k := at("currency")
					return bad(l, k, "%s %q already has limits in currency %s (line %d)", sec.what, e.ID, e.Currency, first)
				}
				seen[id] = e.line.of("currency")
			} else if e.Currency != "" {
				l, k := at("currency")
				return bad(l, k, "a currency goes with amounts and counts; blocked_mccs apply in every currency")
			}
			for j, mcc := range e.BlockedMCCs {
				if len(mcc) != 4 || !isDigits(mcc) {
					return bad(e.line.of("blocked_mccs"), fmt.Sprintf("%s.blocked_mccs[%d]", key, j), "must be a 4-digit merchant category code, is %q", mcc)
				}
			}
		}
	}
	return nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
