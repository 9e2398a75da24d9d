// Package routing is the BIN table: which issuer serves a card number or payment code. A route is a
// prefix ("476173"), a range of leading digits ("622126-622925": the PAN's first six digits between
// the two, inclusive) or the default. The most specific route wins: the one that looks at the most
// leading digits; at equal length a prefix beats a range, because a prefix names one value of that
// length and a range several. Ranges of the same length may not overlap (the table refuses them); a
// range may contain longer prefixes or ranges, which win for the cards they cover.
//
// A route may also say what it matches besides its digits: PaymentCodes (only wallet payment codes
// the terminal scanned, entry mode 03x, never a card) and Length (only numbers of exactly that many
// digits). So "62, 19 digits, payment codes" sends UnionPay QR codes to the UnionPay wallet while
// 62 cards, 16 or 19 digits, keep going to their banks. A payment code is looked up among the
// payment-code routes first (most specific wins there), and only then among the others, so a card
// BIN sharing a code's leading digits never takes it; a card never sees payment-code routes. At
// equal leading digits a route with a length beats one without.
//
// A Table is immutable; Router swaps tables atomically so routes can be reloaded without a restart.
package routing

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
)

// MaxDigits bounds prefixes and range bounds to a full PAN.
const MaxDigits = 19

// Entry is one configured route: exactly one of Prefix, Range or Default.
type Entry struct {
	Prefix  string
	Range   string // "LOW-HIGH", both bounds of the same number of digits, LOW <= HIGH
	Issuer  string
	Default bool
	// PaymentCodes: the route matches only payment codes (LookupPaymentCode), never a card number.
	PaymentCodes bool
	// Length: the route matches only numbers of exactly this many digits; 0 matches any length.
	Length int
}

// EntryError is a route the table refuses, by its index in the entries given (and, for a conflict,
// the index of the earlier entry it conflicts with; otherwise -1), so a caller can name the line.
type EntryError struct {
	Index, Other int
	Field        string // "prefix", "range", "default", "issuer", "length" or "payment_codes"
	Reason       string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("route %d: %s: %s", e.Index, e.Field, e.Reason)
}

type span struct {
	low, high string
	issuer    string
	index     int
}

// matchClass is what a route matches besides its digits.
type matchClass struct {
	codes  bool // payment codes only
	length int  // exact number of digits; 0: any
}

// rank orders classes at equal leading digits: the one that says more wins.
func (c matchClass) rank() int {
	r := 0
	if c.codes {
		r += 2
	}
	if c.length > 0 {
		r++
	}
	return r
}

// classTable holds the prefixes and ranges of one match class.
type classTable struct {
	class    matchClass
	prefixes [MaxDigits + 1]map[string]string
	ranges   [MaxDigits + 1][]span // sorted by low, no two overlapping
}

// Table maps prefixes and ranges to issuer IDs.
type Table struct {
	classes      []*classTable // most specific class first (see matchClass.rank)
	longest      int
	defaultRoute string
	size         int
}

// class returns the table of a match class, making it on first use.
func (t *Table) class(c matchClass) *classTable {
	for _, ct := range t.classes {
		if ct.class == c {
			return ct
		}
	}
	ct := &classTable{class: c}
	t.classes = append(t.classes, ct)
	sort.SliceStable(t.classes, func(a, b int) bool { return t.classes[a].class.rank() > t.classes[b].class.rank() })
	return ct
}

// ParseRange splits "LOW-HIGH" into its bounds and checks them: digits only, equal lengths of 1 to
// MaxDigits, LOW <= HIGH.
func ParseRange(r string) (low, high string, err error) {
	low, high, ok := strings.Cut(r, "-")
	low, high = strings.TrimSpace(low), strings.TrimSpace(high)
	switch {
	case !ok:
		return "", "", fmt.Errorf("%q is not LOW-HIGH (e.g. 622126-622925)", r)
	case !digits(low) || !digits(high):
		return "", "", fmt.Errorf("%q: bounds must be digits", r)
	case len(low) != len(high):
		return "", "", fmt.Errorf("%q: both bounds must have the same number of digits", r)
	case len(low) > MaxDigits:
		return "", "", fmt.Errorf("%q: bounds of at most %d digits", r, MaxDigits)
	case low > high:
		return "", "", fmt.Errorf("%q: low bound is above the high bound", r)
	}
	return low, high, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NewTable builds a table. It refuses an entry that is not exactly one of prefix, range and default,
// a prefix routed twice, a second default, and two ranges of the same length that overlap; the error
// is an *EntryError.
func NewTable(entries []Entry) (*Table, error) {
	t := &Table{}
	defaultIndex := -1
	for i, e := range entries {
		bad := func(other int, field, format string, args ...any) error {
			return &EntryError{Index: i, Other: other, Field: field, Reason: fmt.Sprintf(format, args...)}
		}
		if e.Issuer == "" {
			return nil, bad(-1, "issuer", "is required")
		}
		kinds := 0
		for _, set := range []bool{e.Prefix != "", e.Range != "", e.Default} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			return nil, bad(-1, "prefix", "a route has exactly one of prefix, range and default: true")
		}
		if e.Length < 0 || e.Length > MaxDigits {
			return nil, bad(-1, "length", "must be 1 to %d digits, is %d", MaxDigits, e.Length)
		}
		class := matchClass{codes: e.PaymentCodes, length: e.Length}
		switch {
		case e.Default:
			if e.PaymentCodes || e.Length != 0 {
				return nil, bad(-1, "default", "the default route takes every number: no payment_codes or length with it")
			}
			if defaultIndex >= 0 {
				return nil, bad(defaultIndex, "default", "a second default route (the first is route %d)", defaultIndex)
			}
			defaultIndex = i
			t.defaultRoute = e.Issuer
		case e.Prefix != "":
			n := len(e.Prefix)
			if !digits(e.Prefix) || n > MaxDigits {
				return nil, bad(-1, "prefix", "must be 1 to %d digits, is %q", MaxDigits, e.Prefix)
			}
			if e.Length != 0 && e.Length < n {
				return nil, bad(-1, "length", "%d is shorter than the prefix %q", e.Length, e.Prefix)
			}
			ct := t.class(class)
			if ct.prefixes[n] == nil {
				ct.prefixes[n] = map[string]string{}
			}
			if _, dup := ct.prefixes[n][e.Prefix]; dup {
				return nil, bad(-1, "prefix", "prefix %q is routed twice", e.Prefix)
			}
			ct.prefixes[n][e.Prefix] = e.Issuer
			t.longest = max(t.longest, n)
		default:
			low, high, err := ParseRange(e.Range)
			if err != nil {
				return nil, bad(-1, "range", "%v", err)
			}
			n := len(low)
			if e.Length != 0 && e.Length < n {
				return nil, bad(-1, "length", "%d is shorter than the range bounds %q", e.Length, e.Range)
			}
			ct := t.class(class)
			ct.ranges[n] = append(ct.ranges[n], span{low: low, high: high, issuer: e.Issuer, index: i})
			t.longest = max(t.longest, n)
		}
		t.size++
	}
	for _, ct := range t.classes {
		for n := range ct.ranges {
			rs := ct.ranges[n]
			sort.SliceStable(rs, func(a, b int) bool { return rs[a].low < rs[b].low })
			for j := 1; j < len(rs); j++ {
				if rs[j].low <= rs[j-1].high {
					later, earlier := rs[j], rs[j-1]
					if later.index < earlier.index {
						later, earlier = earlier, later
					}
					return nil, &EntryError{Index: later.index, Other: earlier.index, Field: "range",
						Reason: fmt.Sprintf("%s-%s overlaps %s-%s (route %d) of the same length",
							later.low, later.high, earlier.low, earlier.high, earlier.index)}
				}
			}
		}
	}
	return t, nil
}

// Lookup returns the issuer for a card number by the most specific matching route, else the
// default. Routes for payment codes only are not considered.
func (t *Table) Lookup(pan string) (issuer string, ok bool) { return t.lookup(pan, false) }

// LookupPaymentCode returns the issuer for a wallet payment code (entry mode 03x) by the most
// specific matching route, payment-code routes included, else the default.
func (t *Table) LookupPaymentCode(code string) (issuer string, ok bool) { return t.lookup(code, true) }

func (t *Table) lookup(number string, code bool) (string, bool) {
	// A payment code is a wallet's before it is anyone else's: its own routes are searched first,
	// so a card BIN that happens to share its leading digits cannot take it.
	if code {
		if is, ok := t.search(number, true); ok {
			return is, true
		}
	}
	if is, ok := t.search(number, false); ok {
		return is, true
	}
	return t.defaultRoute, t.defaultRoute != ""
}

// search finds the most specific route among the payment-code routes (codes) or the others.
func (t *Table) search(number string, codes bool) (string, bool) {
	for n := min(len(number), t.longest); n > 0; n-- {
		key := number[:n]
		for _, ct := range t.classes {
			if ct.class.codes != codes || (ct.class.length != 0 && ct.class.length != len(number)) {
				continue
			}
			if m := ct.prefixes[n]; m != nil {
				if is, found := m[key]; found {
					return is, true
				}
			}
			if rs := ct.ranges[n]; len(rs) > 0 {
				// The last range starting at or below key is the only one that can hold it.
				j := sort.Search(len(rs), func(i int) bool { return rs[i].low > key }) - 1
				if j >= 0 && key <= rs[j].high {
					return rs[j].issuer, true
				}
			}
		}
	}
	return "", false
}

// Len is the number of routes, the default included.
func (t *Table) Len() int { return t.size }

// Router holds the table in force.
type Router struct{ table atomic.Pointer[Table] }

// NewRouter starts with a table.
func NewRouter(t *Table) *Router {
	r := &Router{}
	r.table.Store(t)
	return r
}

// Lookup routes a card number with the table in force.
func (r *Router) Lookup(pan string) (string, bool) { return r.table.Load().Lookup(pan) }

// LookupPaymentCode routes a wallet payment code with the table in force.
func (r *Router) LookupPaymentCode(code string) (string, bool) {
	return r.table.Load().LookupPaymentCode(code)
}

// Replace installs a new table; requests already routed keep their issuer.
func (r *Router) Replace(t *Table) { r.table.Store(t) }

// Table is the table in force.
func (r *Router) Table() *Table { return r.table.Load() }
