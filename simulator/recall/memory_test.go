package recall_test

import (
	"slices"
	"testing"

	"github.com/poswitch/poswitch/simulator/recall"
)

type request struct {
	name string
	keys []string
}

func newMemory(maxValues int) *recall.Memory[string, *request] {
	return recall.New(maxValues, func(r *request) []string { return r.keys })
}

func names(m *recall.Memory[string, *request]) []string {
	var out []string
	for r := range m.All() {
		out = append(out, r.name)
	}
	return out
}

func TestOldestIsForgottenWithItsKeys(t *testing.T) {
	m := newMemory(2)
	a := &request{name: "a", keys: []string{"a1", "a2"}}
	m.Remember(a)
	m.Remember(&request{name: "b", keys: []string{"b1"}})
	m.Remember(&request{name: "c", keys: []string{"c1"}})
	if got := names(m); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("remembered %v, want [b c]", got)
	}
	for _, k := range []string{"a1", "a2"} {
		if _, ok := m.Get(k); ok {
			t.Errorf("key %s of the forgotten value still found", k)
		}
	}
	if r, ok := m.Get("c1"); !ok || r.name != "c" {
		t.Errorf("c1 names %v, %v; want c", r, ok)
	}
}

func TestTakenKeyKeepsNamingTheFirstValue(t *testing.T) {
	m := newMemory(2)
	m.Remember(&request{name: "a", keys: []string{"k"}})
	m.Remember(&request{name: "b", keys: []string{"k", "b1"}})
	if r, _ := m.Get("k"); r.name != "a" {
		t.Fatalf("k names %s, want a", r.name)
	}
	if r, _ := m.Get("b1"); r.name != "b" {
		t.Fatalf("b1 names %s, want b", r.name)
	}
}

func TestIndexedKeyIsForgottenWithItsValue(t *testing.T) {
	m := newMemory(1)
	a := &request{name: "a", keys: []string{"a1"}}
	m.Remember(a)
	a.keys = append(a.keys, "trace")
	m.Index("trace", a)
	if r, ok := m.Get("trace"); !ok || r != a {
		t.Fatalf("trace names %v, %v; want a", r, ok)
	}
	m.Remember(&request{name: "b"})
	if _, ok := m.Get("trace"); ok {
		t.Fatal("trace still found after a was forgotten")
	}
}
