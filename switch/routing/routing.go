// Package routing is the BIN table: which issuer serves a card number or payment code. A route is a
// prefix ("476173"), a range of leading digits ("622126-622925": the PAN's first six digits between
// the two, inclusive) or the default. The most specific route wins: the one that looks at the most
// leading digits; at equal length a prefix beats a range, because a prefix names one value of that
// length and a range several. Ranges of the same length may not overlap (the table refuses them); a
// range may contain longer prefixes or ranges, which win for the cards they cover.
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
}

// EntryError is a route the table refuses, by its index in the entries given (and, for a conflict,
// the index of the earlier entry it conflicts with; otherwise -1), so a caller can name the line.
type EntryError struct {
	Index, Other int
	Field        string // "prefix", "range", "default" or "issuer"
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

// Table maps prefixes and ranges to issuer IDs.
type Table struct {
	prefixes     [MaxDigits + 1]map[string]string
	ranges       [MaxDigits + 1][]span // sorted by low, no two overlapping
	longest      int
	defaultRoute string
	size         int
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
		switch {
		case e.Default:
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
			if t.prefixes[n] == nil {
				t.prefixes[n] = map[string]string{}
			}
			if _, dup := t.prefixes[n][e.Prefix]; dup {
				return nil, bad(-1, "prefix", "prefix %q is routed twice", e.Prefix)
			}
			t.prefixes[n][e.Prefix] = e.Issuer
			t.longest = max(t.longest, n)
		default:
			low, high, err := ParseRange(e.Range)
			if err != nil {
				return nil, bad(-1, "range", "%v", err)
			}
			n := len(low)
			t.ranges[n] = append(t.ranges[n], span{low: low, high: high, issuer: e.Issuer, index: i})
			t.longest = max(t.longest, n)
		}
		t.size++
	}
	for n := range t.ranges {
		rs := t.ranges[n]
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
	return t, nil
}

// Lookup returns the issuer for a card number by the most specific matching route, else the default.
func (t *Table) Lookup(pan string) (issuer string, ok bool) {
	for n := min(len(pan), t.longest); n > 0; n-- {
		key := pan[:n]
		if m := t.prefixes[n]; m != nil {
			if is, found := m[key]; found {
				return is, true
			}
		}
		if rs := t.ranges[n]; len(rs) > 0 {
			// The last range starting at or below key is the only one that can hold it.
			j := sort.Search(len(rs), func(i int) bool { return rs[i].low > key }) - 1
			if j >= 0 && key <= rs[j].high {
				return rs[j].issuer, true
			}
		}
	}
	return t.defaultRoute, t.defaultRoute != ""
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

// Lookup routes with the table in force.
func (r *Router) Lookup(pan string) (string, bool) { return r.table.Load().Lookup(pan) }

// Replace installs a new table; requests already routed keep their issuer.
func (r *Router) Replace(t *Table) { r.table.Store(t) }

// Table is the table in force.
func (r *Router) Table() *Table { return r.table.Load() }
