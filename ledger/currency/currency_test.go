package currency

import "testing"

func TestLookupByEitherCode(t *testing.T) {
	for _, c := range []struct {
		code, alpha string
		exp         int
	}{
		{"156", "CNY", 2}, {"392", "JPY", 0}, {"414", "KWD", 3}, {"840", "USD", 2}, {"978", "EUR", 2}, {"344", "HKD", 2},
		{"CNY", "CNY", 2}, {"jpy", "JPY", 0}, {"36", "AUD", 2},
	} {
		got, ok := Lookup(c.code)
		if !ok || got.Alpha != c.alpha || got.Exponent != c.exp {
			t.Errorf("Lookup(%q) = %+v %v, want %s exponent %d", c.code, got, ok, c.alpha, c.exp)
		}
	}
	for _, bad := range []string{"", "999", "XXX", "1560", "-1"} {
		if _, ok := Lookup(bad); ok {
			t.Errorf("Lookup(%q) found something", bad)
		}
	}
}

func TestFormatAndParseUseTheExponent(t *testing.T) {
	cny, _ := ByAlpha("CNY")
	jpy, _ := ByAlpha("JPY")
	kwd, _ := ByAlpha("KWD")
	for _, c := range []struct {
		cur   Currency
		minor int64
		text  string
	}{
		{cny, 123456, "1234.56"}, {cny, 5, "0.05"}, {cny, -5, "-0.05"}, {jpy, 1234, "1234"}, {kwd, 1234, "1.234"}, {kwd, 0, "0.000"},
	} {
		if got := c.cur.Format(c.minor); got != c.text {
			t.Errorf("%s Format(%d) = %q, want %q", c.cur.Alpha, c.minor, got, c.text)
		}
		if got, err := c.cur.Parse(c.text); err != nil || got != c.minor {
			t.Errorf("%s Parse(%q) = %d %v, want %d", c.cur.Alpha, c.text, got, err, c.minor)
		}
	}
	for _, bad := range []string{"12.345", "1.2.3", "abc", "", ".5", "1e5", "12.", "+-1"} {
		if _, err := cny.Parse(bad); err == nil {
			t.Errorf("CNY Parse(%q) accepted", bad)
		}
	}
}
