// Package routing is the BIN table: which issuer serves a card number or payment code, by the longest
// matching prefix, with an optional default. A Table is immutable; Router swaps tables atomically so
// routes can be reloaded without a restart.
package routing

import (
	"fmt"
	"sync/atomic"
)

// maxPrefixDigits bounds prefixes to a full PAN.
const maxPrefixDigits = 19

// Table maps prefixes to issuer IDs.
type Table struct {
	byLength     [maxPrefixDigits + 1]map[string]string
	longest      int
	defaultRoute string
}

// Entry is one configured route.
type Entry struct {
	Prefix  string
	Issuer  string
	Default bool
}

// NewTable builds a table; it refuses duplicate prefixes and a second default.
func NewTable(entries []Entry) (*Table, error) {
	t := &Table{}
	for _, e := range entries {
		if e.Default {
			if t.defaultRoute != "" {
				return nil, fmt.Errorf("two default routes (%s and %s)", t.defaultRoute, e.Issuer)
			}
			t.defaultRoute = e.Issuer
			continue
		}
		n := len(e.Prefix)
		if n == 0 || n > maxPrefixDigits {
			return nil, fmt.Errorf("prefix %q: must be 1 to %d digits", e.Prefix, maxPrefixDigits)
		}
		if t.byLength[n] == nil {
			t.byLength[n] = map[string]string{}
		}
		if _, dup := t.byLength[n][e.Prefix]; dup {
			return nil, fmt.Errorf("prefix %q is routed twice", e.Prefix)
		}
		t.byLength[n][e.Prefix] = e.Issuer
		if n > t.longest {
			t.longest = n
		}
	}
	return t, nil
}

// Lookup returns the issuer for a card number by the longest matching prefix, else the default.
func (t *Table) Lookup(pan string) (issuer string, ok bool) {
	n := min(len(pan), t.longest)
	for ; n > 0; n-- {
		if m := t.byLength[n]; m != nil {
			if is, found := m[pan[:n]]; found {
				return is, true
			}
		}
	}
	return t.defaultRoute, t.defaultRoute != ""
}

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
