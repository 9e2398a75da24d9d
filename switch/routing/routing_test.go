package routing

import "testing"

func TestLongestPrefixWinsAndDefaultCatchesTheRest(t *testing.T) {
	table, err := NewTable([]Entry{
		{Prefix: "4", Issuer: "visa-any"},
		{Prefix: "4761", Issuer: "bank-a"},
		{Prefix: "476173", Issuer: "bank-c"},
		{Prefix: "62", Issuer: "cup"},
		{Default: true, Issuer: "fallback"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ pan, want string }{
		{"4761739001010010", "bank-c"},
		{"4761000000000000", "bank-a"},
		{"4000000000000002", "visa-any"},
		{"6226000000000000", "cup"},
		{"5413000000000000", "fallback"},
		{"47", "visa-any"},
		{"", "fallback"},
	}
	for _, c := range cases {
		got, ok := table.Lookup(c.pan)
		if !ok || got != c.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", c.pan, got, ok, c.want)
		}
	}
}

func TestNoDefaultMeansNoRoute(t *testing.T) {
	table, err := NewTable([]Entry{{Prefix: "4761", Issuer: "bank-a"}})
	if err != nil {
		t.Fatal(err)
	}
	if is, ok := table.Lookup("5413000000000000"); ok {
		t.Fatalf("unroutable BIN routed to %q", is)
	}
}

func TestTableRefusesDuplicatesAndSecondDefault(t *testing.T) {
	if _, err := NewTable([]Entry{{Prefix: "4761", Issuer: "a"}, {Prefix: "4761", Issuer: "b"}}); err == nil {
		t.Error("duplicate prefix accepted")
	}
	if _, err := NewTable([]Entry{{Default: true, Issuer: "a"}, {Default: true, Issuer: "b"}}); err == nil {
		t.Error("second default accepted")
	}
	if _, err := NewTable([]Entry{{Prefix: "12345678901234567890", Issuer: "a"}}); err == nil {
		t.Error("20-digit prefix accepted")
	}
}

func TestRouterReplaceTakesEffect(t *testing.T) {
	a, _ := NewTable([]Entry{{Prefix: "4761", Issuer: "bank-a"}})
	b, _ := NewTable([]Entry{{Prefix: "4761", Issuer: "bank-b"}})
	r := NewRouter(a)
	if is, _ := r.Lookup("4761000000000000"); is != "bank-a" {
		t.Fatalf("got %q", is)
	}
	r.Replace(b)
	if is, _ := r.Lookup("4761000000000000"); is != "bank-b" {
		t.Fatalf("after reload got %q", is)
	}
}
