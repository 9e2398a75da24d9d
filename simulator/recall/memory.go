// Package recall is the bounded memory of a simulated host: the last requests it answered, each found
// again by any of its identities (a repeat, a reversal's field 90, a refund's original), the oldest
// forgotten first so that a long run keeps a fixed footprint.
package recall

import (
	"fmt"
	"iter"
)

// Memory remembers at most a fixed number of values, each under the keys its keys function gives;
// a key names the first remembered value that claimed it. It is not safe for concurrent use: the
// owner's lock guards it along with the values.
type Memory[K comparable, V comparable] struct {
	keys  func(V) []K
	max   int
	ring  []V // remembered values in arrival order
	next  int // the oldest value once ring is full
	byKey map[K]V
}

// New makes a Memory of at most maxValues values; keys gives the keys a value is found by, and is
// asked again when the value is forgotten.
func New[K comparable, V comparable](maxValues int, keys func(V) []K) *Memory[K, V] {
	if maxValues <= 0 {
		panic(fmt.Sprintf("recall: memory of %d values", maxValues))
	}
	return &Memory[K, V]{keys: keys, max: maxValues, byKey: make(map[K]V)}
}

// Remember stores v under its keys, forgetting the oldest value (and the keys that name it) when the
// bound is reached. Keys already naming another value keep naming it.
func (m *Memory[K, V]) Remember(v V) {
	if len(m.ring) < m.max {
		m.ring = append(m.ring, v)
	} else {
		old := m.ring[m.next]
		for _, k := range m.keys(old) {
			if m.byKey[k] == old {
				delete(m.byKey, k)
			}
		}
		m.ring[m.next] = v
		m.next = (m.next + 1) % m.max
	}
	for _, k := range m.keys(v) {
		m.Index(k, v)
	}
}

// Index makes k name v too, unless k already names a value. The keys function should give k from
// now on, so that k is forgotten with v.
func (m *Memory[K, V]) Index(k K, v V) {
	if _, taken := m.byKey[k]; !taken {
		m.byKey[k] = v
	}
}

// Get returns the value k names.
func (m *Memory[K, V]) Get(k K) (V, bool) {
	v, ok := m.byKey[k]
	return v, ok
}

// Len is how many values are remembered.
func (m *Memory[K, V]) Len() int { return len(m.ring) }

// All yields the remembered values, oldest first.
func (m *Memory[K, V]) All() iter.Seq[V] {
	return func(yield func(V) bool) {
		for i := range m.ring {
			if !yield(m.ring[(m.next+i)%len(m.ring)]) {
				return
			}
		}
	}
}
