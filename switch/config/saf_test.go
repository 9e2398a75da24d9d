package config

import (
	"strings"
	"testing"
	"time"
)

func TestSAFAndStandInDefaultsAreSafe(t *testing.T) {
	cfg := mustParse(t, "good.yaml", good)
	s := cfg.SAF
	if s.RetryBase.D() != time.Second || s.RetryMax.D() != 5*time.Minute || s.MaxAttempts != 20 ||
		s.PollInterval.D() != time.Second || s.Lease.D() != 30*time.Second || s.MaxBatch != 100 {
		t.Fatalf("saf defaults: %+v", s)
	}
	if cfg.Issuers[0].StandIn.Enabled {
		t.Fatal("stand-in is on without being configured")
	}
}

const standInIssuer = `
  - id: bank-b
    endpoints: [127.0.0.1:9102]
    stand_in:
      enabled: true
      currency: "156"
      max_amount: 50000
      floor_amount: 10000
      daily_amount_per_card: 100000
      daily_count_per_card: 5
`

func withStandIn(edit func(string) string) string {
	return strings.Replace(good, "routes:", strings.TrimPrefix(edit(standInIssuer), "\n")+"routes:", 1)
}

func TestStandInSectionLoads(t *testing.T) {
	cfg := mustParse(t, "s.yaml", withStandIn(func(s string) string { return s }))
	r := cfg.Issuers[1].StandIn
	if !r.Enabled || r.Currency != "156" || r.MaxAmount != 50000 || r.FloorAmount != 10000 ||
		r.DailyAmountPerCard != 100000 || r.DailyCountPerCard != 5 {
		t.Fatalf("stand_in: %+v", r)
	}
}

func TestBadSAFAndStandInNameLineAndKey(t *testing.T) {
	cases := []struct {
		name, file string
		key        string
		at         string // the text of the line the error must name
	}{
		{"floor above max", withStandIn(func(s string) string {
			return strings.Replace(s, "floor_amount: 10000", "floor_amount: 60000", 1)
		}), "issuers[1].stand_in.floor_amount", "floor_amount: 60000"},
		{"currency missing", withStandIn(func(s string) string {
			return strings.Replace(s, `currency: "156"`, `currency: "CNY"`, 1)
		}), "issuers[1].stand_in.currency", `currency: "CNY"`},
		{"no daily count", withStandIn(func(s string) string {
			return strings.Replace(s, "daily_count_per_card: 5", "daily_count_per_card: 0", 1)
		}), "issuers[1].stand_in.daily_count_per_card", "daily_count_per_card: 0"},
		{"unknown stand-in key", withStandIn(func(s string) string {
			return strings.Replace(s, "max_amount:", "maximum:", 1)
		}), "issuers[1].stand_in.maximum", "maximum:"},
		{"lease not above the issuer timeout", good + "saf:\n  lease: 2s\n", "saf.lease", "lease: 2s"},
		{"retry cap below base", good + "saf:\n  retry_base: 10s\n  retry_max: 1s\n", "saf.retry_max", "retry_max: 1s"},
		{"no attempts", good + "saf:\n  max_attempts: -1\n", "saf.max_attempts", "max_attempts: -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ce, _ := parseError(t, "bad.yaml", c.file)
			line := 0
			for i, l := range strings.Split(c.file, "\n") {
				if strings.Contains(l, c.at) {
					line = i + 1
				}
			}
			if ce.Key != c.key || ce.Line != line || ce.File != "bad.yaml" {
				t.Fatalf("got %s (key %s line %d), want key %s line %d", ce, ce.Key, ce.Line, c.key, line)
			}
		})
	}
}
