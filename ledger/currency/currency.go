// Package currency is the ISO 4217 table poswitch uses: numeric code (as carried in ISO 8583 fields
// 49, 50 and 51), alphabetic code and minor-unit exponent. Amounts everywhere in poswitch are int64
// minor units; the exponent says how many of them make one major unit (CNY 2: 1.00 = 100, JPY 0,
// KWD 3: 1.000 = 1000). The same table is seeded into the ledger's `currency` table by migration.
package currency

import (
	"fmt"
	"strconv"
	"strings"
)

// Currency is one ISO 4217 entry.
type Currency struct {
	Numeric  string // three digits, e.g. "156"
	Alpha    string // e.g. "CNY"
	Exponent int    // minor-unit digits, 0..3
	Name     string
}

// table is the list poswitch knows. Keep it in step with the seed in
// ledger/schema/migrations (a test compares them).
var table = []Currency{
	{"036", "AUD", 2, "Australian Dollar"},
	{"048", "BHD", 3, "Bahraini Dinar"},
	{"124", "CAD", 2, "Canadian Dollar"},
	{"152", "CLP", 0, "Chilean Peso"},
	{"156", "CNY", 2, "Yuan Renminbi"},
	{"208", "DKK", 2, "Danish Krone"},
	{"344", "HKD", 2, "Hong Kong Dollar"},
	{"348", "HUF", 2, "Forint"},
	{"356", "INR", 2, "Indian Rupee"},
	{"360", "IDR", 2, "Rupiah"},
	{"368", "IQD", 3, "Iraqi Dinar"},
	{"376", "ILS", 2, "New Israeli Sheqel"},
	{"392", "JPY", 0, "Yen"},
	{"400", "JOD", 3, "Jordanian Dinar"},
	{"410", "KRW", 0, "Won"},
	{"414", "KWD", 3, "Kuwaiti Dinar"},
	{"434", "LYD", 3, "Libyan Dinar"},
	{"446", "MOP", 2, "Pataca"},
	{"458", "MYR", 2, "Malaysian Ringgit"},
	{"484", "MXN", 2, "Mexican Peso"},
	{"512", "OMR", 3, "Rial Omani"},
	{"554", "NZD", 2, "New Zealand Dollar"},
	{"578", "NOK", 2, "Norwegian Krone"},
	{"608", "PHP", 2, "Philippine Peso"},
	{"634", "QAR", 2, "Qatari Rial"},
	{"643", "RUB", 2, "Russian Ruble"},
	{"682", "SAR", 2, "Saudi Riyal"},
	{"702", "SGD", 2, "Singapore Dollar"},
	{"704", "VND", 0, "Dong"},
	{"710", "ZAR", 2, "Rand"},
	{"752", "SEK", 2, "Swedish Krona"},
	{"756", "CHF", 2, "Swiss Franc"},
	{"764", "THB", 2, "Baht"},
	{"784", "AED", 2, "UAE Dirham"},
	{"788", "TND", 3, "Tunisian Dinar"},
	{"826", "GBP", 2, "Pound Sterling"},
	{"840", "USD", 2, "US Dollar"},
	{"901", "TWD", 2, "New Taiwan Dollar"},
	{"949", "TRY", 2, "Turkish Lira"},
	{"978", "EUR", 2, "Euro"},
	{"985", "PLN", 2, "Zloty"},
	{"986", "BRL", 2, "Brazilian Real"},
}

var (
	byNumeric = map[string]Currency{}
	byAlpha   = map[string]Currency{}
)

func init() {
	for _, c := range table {
		byNumeric[c.Numeric] = c
		byAlpha[c.Alpha] = c
	}
}

// All returns the table in numeric order.
func All() []Currency { return append([]Currency(nil), table...) }

// ByNumeric looks up a three-digit numeric code ("156"); a shorter numeric string is zero-padded.
func ByNumeric(code string) (Currency, bool) {
	if n, err := strconv.Atoi(code); err == nil && n >= 0 && n < 1000 && len(code) <= 3 {
		code = fmt.Sprintf("%03d", n)
	}
	c, ok := byNumeric[code]
	return c, ok
}

// ByAlpha looks up an alphabetic code ("CNY"), case-insensitively.
func ByAlpha(code string) (Currency, bool) {
	c, ok := byAlpha[strings.ToUpper(code)]
	return c, ok
}

// Lookup accepts either form.
func Lookup(code string) (Currency, bool) {
	if c, ok := ByNumeric(code); ok {
		return c, true
	}
	return ByAlpha(code)
}

// Format renders minor units as a decimal string in major units: Format(123456, CNY) = "1234.56",
// Format(-5, KWD) = "-0.005", Format(100, JPY) = "100".
func (c Currency) Format(minor int64) string {
	neg := minor < 0
	u := uint64(minor)
	if neg {
		u = uint64(-minor)
	}
	s := strconv.FormatUint(u, 10)
	if c.Exponent > 0 {
		for len(s) <= c.Exponent {
			s = "0" + s
		}
		s = s[:len(s)-c.Exponent] + "." + s[len(s)-c.Exponent:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// Parse turns a decimal string in major units into minor units, refusing more fraction digits than
// the exponent allows ("12.345" is not a CNY amount).
func (c Currency) Parse(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	t := strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(t, ".")
	if intPart == "" || (hasFrac && frac == "") {
		return 0, fmt.Errorf("amount %q: not a decimal number", s)
	}
	if len(frac) > c.Exponent {
		return 0, fmt.Errorf("amount %q: %s has %d decimal places", s, c.Alpha, c.Exponent)
	}
	frac += strings.Repeat("0", c.Exponent-len(frac))
	digits := intPart + frac
	if len(digits) > 18 {
		return 0, fmt.Errorf("amount %q: too large", s)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || strings.ContainsAny(digits, "+-") {
		return 0, fmt.Errorf("amount %q: not a decimal number", s)
	}
	if neg {
		n = -n
	}
	return n, nil
}
