package config

import (
	"strings"
	"testing"
)

// withLimits is a whole file with range routes, failover endpoints and a limits section; the tests
// below break one line of it at a time. Line numbers are those of this text.
const withLimits = `database:
  url: postgres://app@127.0.0.1:5432/poswitch
listeners:
  - name: pos
    address: 127.0.0.1:0
    dialect: iso87a
issuers:
  - id: bank-a
    endpoints: [127.0.0.1:9101, 127.0.0.1:9111]
  - id: cup
    endpoints: [127.0.0.1:9102]
routes:
  - prefix: "4761"
    issuer: bank-a
  - range: "622126-622925"
    issuer: cup
  - range: "62212600-62212699"
    issuer: bank-a
merchants:
  - id: M1
  - id: M2
terminals:
  - id: T1
    merchant: M1
limits:
  time_zone: Asia/Shanghai
  max_cards_per_day: 500000
  merchants:
    - id: M1
      currency: "156"
      max_amount: 500000
      daily_amount: 5000000
      daily_count: 200
    - id: M1
      blocked_mccs: ["7995", "4829"]
  terminals:
    - id: T1
      currency: "156"
      daily_count: 50
      blocked_mccs: ["6051"]
  cards:
    - currency: "156"
      max_amount: 2000000
      daily_amount: 3000000
      daily_count: 20
`

func TestRangeRoutesFailoverEndpointsAndLimitsLoad(t *testing.T) {
	cfg, table := mustParseWithTable(t, "switch.yaml", withLimits)
	for pan, want := range map[string]string{"6224000000000000": "cup", "6221260500000000": "bank-a", "4761000000000000": "bank-a"} {
		if got, _ := table.Lookup(pan); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", pan, got, want)
		}
	}
	if got := cfg.Issuers[0].Endpoints; len(got) != 2 || got[0] != "127.0.0.1:9101" {
		t.Errorf("endpoints %v", got)
	}
	l := cfg.Limits
	if l.MaxCardsPerDay != 500000 || len(l.Merchants) != 2 || l.Merchants[0].DailyCount != 200 ||
		l.Merchants[1].BlockedMCCs[1] != "4829" || l.Terminals[0].BlockedMCCs[0] != "6051" || l.Cards[0].MaxAmount != 2000000 {
		t.Errorf("limits %+v", l)
	}
	if cfg.LimitsLocation().String() != "Asia/Shanghai" {
		t.Errorf("location %s", cfg.LimitsLocation())
	}
}

func TestLimitsDefaultToShanghaiMidnightAndAMillionCards(t *testing.T) {
	cfg := mustParse(t, "switch.yaml", withLimits[:strings.Index(withLimits, "limits:")])
	if cfg.Limits.TimeZone != "Asia/Shanghai" || cfg.Limits.MaxCardsPerDay != DefaultMaxCardsPerDay {
		t.Errorf("defaults %+v", cfg.Limits)
	}
}

func TestBadRoutesEndpointsAndLimitsNameLineAndKey(t *testing.T) {
	cases := []struct {
		name, old, new string
		line           int
		key, inError   string
	}{
		{"overlapping ranges of the same length", `"62212600-62212699"`, `"622900-622999"`,
			17, "routes[2].range", "overlaps 622126-622925 (route 1) of the same length (line 15)"},
		{"range upside down", `"622126-622925"`, `"622925-622126"`, 15, "routes[1].range", "low bound is above"},
		{"range bounds of different lengths", `"622126-622925"`, `"62212-622925"`, 15, "routes[1].range", "same number of digits"},
		{"prefix and range in one route", `  - range: "622126-622925"`, `  - prefix: "62"
    range: "622126-622925"`, 15, "routes[1].prefix", "exactly one of prefix, range"},
		{"five endpoints", `[127.0.0.1:9101, 127.0.0.1:9111]`, `[a:1, b:1, c:1, d:1, e:1]`, 9, "issuers[0].endpoints", "1 to 4"},
		{"endpoint twice", `[127.0.0.1:9101, 127.0.0.1:9111]`, `[127.0.0.1:9101, 127.0.0.1:9101]`, 9, "issuers[0].endpoints[1]", "repeats endpoints[0]"},
		{"unknown merchant", "    - id: M1\n      currency", "    - id: M9\n      currency", 29, "limits.merchants[0].id", `unknown merchant "M9"`},
		{"unknown terminal", "    - id: T1\n      currency", "    - id: T7\n      currency", 37, "limits.terminals[0].id", `unknown terminal "T7"`},
		{"amounts without currency", `      currency: "156"
      daily_count: 50`, `      daily_count: 50`, 37, "limits.terminals[0].currency", "ISO 4217 numeric code"},
		{"negative amount", "max_amount: 500000", "max_amount: -5", 31, "limits.merchants[0].max_amount", "must be 0 (no limit)"},
		{"limits of one merchant twice in a currency", "    - id: M1\n      blocked_mccs", "    - id: M1\n      currency: \"156\"\n      daily_count: 3\n      blocked_mccs",
			35, "limits.merchants[1].currency", `already has limits in currency 156 (line 30)`},
		{"currency on a blocks-only entry", "    - id: M1\n      blocked_mccs", "    - id: M1\n      currency: \"840\"\n      blocked_mccs",
			35, "limits.merchants[1].currency", "blocked_mccs apply in every currency"},
		{"bad MCC", `"4829"]`, `"48290"]`, 35, "limits.merchants[1].blocked_mccs[1]", "4-digit merchant category code"},
		{"card entry with an id", "  cards:\n    - currency", "  cards:\n    - id: \"6221260000000000\"\n      currency", 42, "limits.cards[0].id", "no id"},
		{"card entry with blocked MCCs", "      daily_count: 20\n", "      daily_count: 20\n      blocked_mccs: [\"7995\"]\n", 46, "limits.cards[0].blocked_mccs", "per merchant (57) or terminal (58)"},
		{"entry with no limit", "      currency: \"156\"\n      daily_count: 50\n      blocked_mccs: [\"6051\"]", "      currency: \"156\"", 38, "limits.terminals[0].currency", "sets no limit"},
		{"bad time zone", "time_zone: Asia/Shanghai", "time_zone: Mars/Olympus", 0, "limits.time_zone", "not an IANA time zone"},
		{"card cap out of bounds", "max_cards_per_day: 500000", "max_cards_per_day: 60000000", 0, "limits.max_cards_per_day", "must be 1..50000000"},
		{"typo in a limits key", "daily_count: 200", "daly_count: 200", 33, "limits.merchants[0].daly_count", "unknown key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := strings.Replace(withLimits, c.old, c.new, 1)
			if file == withLimits {
				t.Fatalf("test edit %q matched nothing", c.old)
			}
			ce, err := parseError(t, "switch.yaml", file)
			if ce.File != "switch.yaml" || ce.Key != c.key || ce.Line != c.line {
				t.Errorf("got %q (line %d key %q), want line %d key %q", err, ce.Line, ce.Key, c.line, c.key)
			}
			if !strings.Contains(ce.Reason, c.inError) {
				t.Errorf("reason %q does not say %q", ce.Reason, c.inError)
			}
		})
	}
}
