package routing

import (
	"errors"
	"testing"
)

func TestMostSpecificRouteWinsAndDefaultCatchesTheRest(t *testing.T) {
	table, err := NewTable([]Entry{
		{Prefix: "4", Issuer: "visa-any"},
		{Prefix: "4761", Issuer: "bank-a"},
		{Prefix: "476173", Issuer: "bank-c"},
		{Prefix: "62", Issuer: "cup"},
		{Range: "622126-622925", Issuer: "cup-discover"},
		{Prefix: "622500", Issuer: "bank-in-range"},    // a prefix beats a range of the same length
		{Range: "62250010-62250019", Issuer: "narrow"}, // a longer range beats a shorter prefix
		{Range: "40-45", Issuer: "range-40-45"},        // two digits: longer than "4", shorter than "4761"
		{Default: true, Issuer: "fallback"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, pan, want string }{
		{"longest prefix", "4761739001010010", "bank-c"},
		{"shorter prefix", "4761000000000000", "bank-a"},
		{"range of two digits beats a one-digit prefix", "4100000000000002", "range-40-45"},
		{"one-digit prefix outside the range", "4900000000000002", "visa-any"},
		{"range low bound inclusive", "6221260000000000", "cup-discover"},
		{"range high bound inclusive", "6229259999999999", "cup-discover"},
		{"inside the range", "6224000000000000", "cup-discover"},
		{"just below the range", "6221250000000000", "cup"},
		{"just above the range", "6229260000000000", "cup"},
		{"prefix beats a range of the same length", "6225000000000000", "bank-in-range"},
		{"longer range beats a prefix", "6225001500000000", "narrow"},
		{"default", "5413000000000000", "fallback"},
		{"PAN shorter than the range", "6224", "cup"},
		{"empty PAN", "", "fallback"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := table.Lookup(c.pan)
			if !ok || got != c.want {
				t.Errorf("Lookup(%q) = %q, %v; want %q", c.pan, got, ok, c.want)
			}
		})
	}
}

func TestNoDefaultMeansNoRoute(t *testing.T) {
	table, err := NewTable([]Entry{{Prefix: "4761", Issuer: "bank-a"}, {Range: "622126-622925", Issuer: "cup"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, pan := range []string{"5413000000000000", "6221250000000000"} {
		if is, ok := table.Lookup(pan); ok {
			t.Errorf("unroutable %s routed to %q", pan, is)
		}
	}
}

func TestTableRefusesBadEntriesNamingTheEntry(t *testing.T) {
	cases := []struct {
		name         string
		entries      []Entry
		index, other int
		field        string
	}{
		{"duplicate prefix", []Entry{{Prefix: "4761", Issuer: "a"}, {Prefix: "4761", Issuer: "b"}}, 1, -1, "prefix"},
		{"second default", []Entry{{Default: true, Issuer: "a"}, {Default: true, Issuer: "b"}}, 1, 0, "default"},
		{"20-digit prefix", []Entry{{Prefix: "12345678901234567890", Issuer: "a"}}, 0, -1, "prefix"},
		{"non-digit prefix", []Entry{{Prefix: "47A1", Issuer: "a"}}, 0, -1, "prefix"},
		{"prefix and range together", []Entry{{Prefix: "4", Range: "40-45", Issuer: "a"}}, 0, -1, "prefix"},
		{"nothing to match", []Entry{{Issuer: "a"}}, 0, -1, "prefix"},
		{"no issuer", []Entry{{Prefix: "4"}}, 0, -1, "issuer"},
		{"range without dash", []Entry{{Range: "622126", Issuer: "a"}}, 0, -1, "range"},
		{"range bounds of different lengths", []Entry{{Range: "62212-622925", Issuer: "a"}}, 0, -1, "range"},
		{"range upside down", []Entry{{Range: "622925-622126", Issuer: "a"}}, 0, -1, "range"},
		{"range not digits", []Entry{{Range: "6221x6-622925", Issuer: "a"}}, 0, -1, "range"},
		{"overlapping ranges of the same length", []Entry{
			{Prefix: "4", Issuer: "x"},
			{Range: "622126-622925", Issuer: "a"},
			{Range: "622900-622999", Issuer: "b"},
		}, 2, 1, "range"},
		{"overlap reported on the later entry even when it sorts first", []Entry{
			{Range: "622900-622999", Issuer: "b"},
			{Range: "622126-622900", Issuer: "a"},
		}, 1, 0, "range"},
		{"one range inside another of the same length", []Entry{
			{Range: "622126-622925", Issuer: "a"},
			{Range: "622500-622600", Issuer: "b"},
		}, 1, 0, "range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewTable(c.entries)
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("got %v, want an *EntryError", err)
			}
			if ee.Index != c.index || ee.Other != c.other || ee.Field != c.field {
				t.Errorf("got entry %d (other %d, field %s): %v; want entry %d (other %d, field %s)",
					ee.Index, ee.Other, ee.Field, err, c.index, c.other, c.field)
			}
		})
	}
}

func TestAdjacentRangesAndRangesOfDifferentLengthsMayMeet(t *testing.T) {
	table, err := NewTable([]Entry{
		{Range: "622126-622500", Issuer: "a"},
		{Range: "622501-622925", Issuer: "b"},
		{Range: "6221-6229", Issuer: "wide"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for pan, want := range map[string]string{"6225000000000000": "a", "6225010000000000": "b", "6221000000000000": "wide"} {
		if got, _ := table.Lookup(pan); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", pan, got, want)
		}
	}
}

func TestRouterReplaceTakesEffect(t *testing.T) {
	a, _ := NewTable([]Entry{{Prefix: "4761", Issuer: "bank-a"}})
	b, _ := NewTable([]Entry{{Range: "4700-4799", Issuer: "bank-b"}})
	r := NewRouter(a)
	if is, _ := r.Lookup("4761000000000000"); is != "bank-a" {
		t.Fatalf("got %q", is)
	}
	r.Replace(b)
	if is, _ := r.Lookup("4761000000000000"); is != "bank-b" {
		t.Fatalf("after reload got %q", is)
	}
}

func BenchmarkLookup(b *testing.B) {
	var entries []Entry
	for i := 0; i < 1000; i++ {
		entries = append(entries, Entry{Prefix: string(rune('4'+i%3)) + pad(i, 5), Issuer: "p"})
		entries = append(entries, Entry{Range: "62" + pad(i*2, 4) + "-62" + pad(i*2+1, 4), Issuer: "r"})
	}
	entries = append(entries, Entry{Default: true, Issuer: "d"})
	table, err := NewTable(entries)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		table.Lookup("6201230000000000")
	}
}

func pad(n, width int) string {
	s := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		s[i] = byte('0' + n%10)
		n /= 10
	}
	return string(s)
}
