package config

import (
	"slices"
	"testing"

	"github.com/poswitch/poswitch/specs"
)

// config keeps its own list of terminal dialects so it stays a leaf package; this keeps it honest.
func TestKnownDialectsAreTheTerminalDialectsOfSpecs(t *testing.T) {
	var terminal []string
	for _, n := range specs.DialectNames() {
		if n != "issuer-link" {
			terminal = append(terminal, n)
		}
	}
	got := slices.Clone(knownDialects)
	slices.Sort(got)
	slices.Sort(terminal)
	if !slices.Equal(got, terminal) {
		t.Fatalf("config knows %v, specs has %v", got, terminal)
	}
}
