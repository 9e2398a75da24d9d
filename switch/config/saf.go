package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SAF bounds the store-and-forward queue of reversals and advices (switch/saf). Every key is optional.
type SAF struct {
	RetryBase    Duration `yaml:"retry_base"`    // wait after the first unanswered attempt, doubling; default 1s
	RetryMax     Duration `yaml:"retry_max"`     // cap of the wait; default 5m
	MaxAttempts  int      `yaml:"max_attempts"`  // unanswered attempts before an operator is needed; default 20
	PollInterval Duration `yaml:"poll_interval"` // how often a node looks for due items; default 1s
	// Lease keeps an item a node is sending away from the other nodes; it must exceed every issuer's
	// timeout. Default 30s.
	Lease    Duration `yaml:"lease"`
	MaxBatch int      `yaml:"max_batch"` // most items in flight at once on this node; default 100

	line lines
}

// StandIn is one issuer's stand-in processing (switch/standin): off unless enabled. Amounts are in
// minor units of Currency, and only transactions in that currency are stood in for.
type StandIn struct {
	Enabled            bool   `yaml:"enabled"`
	Currency           string `yaml:"currency"`              // ISO 4217 numeric, e.g. "156"
	MaxAmount          int64  `yaml:"max_amount"`            // no stand-in approval above it
	FloorAmount        int64  `yaml:"floor_amount"`          // none above it without cardholder verification
	DailyAmountPerCard int64  `yaml:"daily_amount_per_card"` // per card and day, summed
	DailyCountPerCard  int    `yaml:"daily_count_per_card"`  // per card and day

	line lines
}

// Defaults of the saf section.
const (
	defaultSAFRetryBase    = time.Second
	defaultSAFRetryMax     = 5 * time.Minute
	defaultSAFMaxAttempts  = 20
	defaultSAFPollInterval = time.Second
	defaultSAFLease        = 30 * time.Second
	defaultSAFMaxBatch     = 100
)

func (s *SAF) UnmarshalYAML(n *yaml.Node) error {
	type plain SAF
	s.line = keyLines(n)
	return n.Decode((*plain)(s))
}

func (s *StandIn) UnmarshalYAML(n *yaml.Node) error {
	type plain StandIn
	s.line = keyLines(n)
	return n.Decode((*plain)(s))
}

func (c *Config) applySAFDefaults() {
	s := &c.SAF
	if s.RetryBase == 0 {
		s.RetryBase = Duration(defaultSAFRetryBase)
	}
	if s.RetryMax == 0 {
		s.RetryMax = Duration(max(defaultSAFRetryMax, s.RetryBase.D()))
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = defaultSAFMaxAttempts
	}
	if s.PollInterval == 0 {
		s.PollInterval = Duration(defaultSAFPollInterval)
	}
	if s.Lease == 0 {
		s.Lease = Duration(defaultSAFLease)
	}
	if s.MaxBatch == 0 {
		s.MaxBatch = defaultSAFMaxBatch
	}
}

func (c *Config) validateSAF() error {
	s := c.SAF
	bad := func(key, format string, args ...any) error {
		return &Error{File: c.path, Line: s.line.of(key), Key: "saf." + key, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case s.RetryMax < s.RetryBase:
		return bad("retry_max", "must not be shorter than retry_base (%v), is %v", s.RetryBase.D(), s.RetryMax.D())
	case s.RetryMax.D() > 24*time.Hour:
		return bad("retry_max", "must be at most 24h, is %v", s.RetryMax.D())
	case s.MaxAttempts < 1 || s.MaxAttempts > 1000:
		return bad("max_attempts", "must be 1..1000, is %d", s.MaxAttempts)
	case s.PollInterval.D() < 10*time.Millisecond || s.PollInterval.D() > time.Hour:
		return bad("poll_interval", "must be 10ms..1h, is %v", s.PollInterval.D())
	case s.MaxBatch < 1 || s.MaxBatch > 1000:
		return bad("max_batch", "must be 1..1000, is %d", s.MaxBatch)
	case s.Lease.D() > time.Hour:
		return bad("lease", "must be at most 1h, is %v", s.Lease.D())
	}
	for i, is := range c.Issuers {
		if s.Lease.D() <= is.Timeout.D() {
			return bad("lease", "must exceed the timeout of issuer %s (%v), or two nodes may send one item at once; is %v",
				is.ID, is.Timeout.D(), s.Lease.D())
		}
		if err := c.validateStandIn(i); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateStandIn(i int) error {
	is := c.Issuers[i]
	r := is.StandIn
	if !r.Enabled {
		return nil
	}
	bad := func(key, format string, args ...any) error {
		line := r.line.of(key)
		if line == 0 {
			line = is.line.of("stand_in")
		}
		return &Error{File: c.path, Line: line, Key: fmt.Sprintf("issuers[%d].stand_in.%s", i, key), Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case len(r.Currency) != 3 || strings.Trim(r.Currency, "0123456789") != "":
		return bad("currency", "must be an ISO 4217 numeric code like 156 (limits are in its minor units), is %q", r.Currency)
	case r.MaxAmount <= 0:
		return bad("max_amount", "must be greater than 0 when stand-in is enabled, is %d", r.MaxAmount)
	case r.FloorAmount < 0 || r.FloorAmount > r.MaxAmount:
		return bad("floor_amount", "must be 0..max_amount (%d), is %d", r.MaxAmount, r.FloorAmount)
	case r.DailyAmountPerCard <= 0:
		return bad("daily_amount_per_card", "must be greater than 0 when stand-in is enabled, is %d", r.DailyAmountPerCard)
	case r.DailyCountPerCard <= 0:
		return bad("daily_count_per_card", "must be greater than 0 when stand-in is enabled, is %d", r.DailyCountPerCard)
	}
	return nil
}
