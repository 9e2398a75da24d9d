package config

import (
	"strings"
	"testing"
)

func TestMerchantCityAndCountryLoad(t *testing.T) {
	src := strings.Replace(good, "    name: Tea House\n", "    name: Tea House\n    city: SINGAPORE\n    country: SG\n", 1)
	cfg := mustParse(t, "switch.yaml", src)
	if m := cfg.Merchants[1]; m.City != "SINGAPORE" || m.Country != "SG" {
		t.Errorf("merchant M2 city %q country %q, want SINGAPORE SG", m.City, m.Country)
	}
	if m := cfg.Merchants[0]; m.City != "" || m.Country != "" {
		t.Errorf("merchant M1 without city or country got %q %q; the order desk supplies the defaults", m.City, m.Country)
	}
}

func TestBadMerchantPlaceNamesLineAndKey(t *testing.T) {
	cases := []struct {
		name, lines, key, inError string
	}{
		{"lower-case country", "    country: sg\n", "merchants[1].country", "alpha-2"},
		{"three-letter country", "    country: SGP\n", "merchants[1].country", "alpha-2"},
		{"city too long for ID 60", "    city: SAN FRANCISCO BAY\n", "merchants[1].city", "at most 15"},
		{"city not ASCII", "    city: 北京\n", "merchants[1].city", "printable ASCII"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(good, "    name: Tea House\n", "    name: Tea House\n"+c.lines, 1)
			ce, err := parseError(t, "switch.yaml", src)
			line := strings.Count(src[:strings.Index(src, c.lines)], "\n") + 1 // the line of the bad key
			if ce.Key != c.key || ce.Line != line || !strings.Contains(ce.Reason, c.inError) {
				t.Errorf("got %q (line %d key %q), want line %d key %q saying %q", err, ce.Line, ce.Key, line, c.key, c.inError)
			}
		})
	}
}
