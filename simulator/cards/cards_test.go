package cards

import (
	"strings"
	"testing"
)

func TestEveryCardButTheBadLuhnOneIsLuhnValid(t *testing.T) {
	bad := 0
	for _, c := range Catalogue() {
		if !LuhnValid(c.PAN) {
			bad++
			if c.Outcome != InvalidCardNumber || c.DecidedBy != "switch" {
				t.Errorf("%s fails Luhn but is not the switch's 14 card", c.Masked())
			}
		}
	}
	if bad != 1 {
		t.Errorf("%d bad-Luhn cards, want exactly 1", bad)
	}
}

func TestCatalogueCoversEveryOutcome(t *testing.T) {
	for _, code := range []string{Approved, InsufficientFunds, ExpiredCard, DoNotHonour, InvalidCardNumber,
		ExceedsWithdrawLimit, RestrictedCard, NoSuchIssuer} {
		if len(ByOutcome(code)) == 0 {
			t.Errorf("no card with outcome %s", code)
		}
	}
	if len(Load()) < 4 {
		t.Errorf("only %d load cards", len(Load()))
	}
}

func TestCardsBelongToTheIssuerOwningTheirBIN(t *testing.T) {
	routes := Routes()
	seen := map[string]bool{}
	for _, c := range Catalogue() {
		if seen[c.PAN] {
			t.Errorf("%s listed twice", c.Masked())
		}
		seen[c.PAN] = true
		if got := routes[c.PAN[:6]]; got != c.Issuer {
			t.Errorf("%s: BIN owner %q, card issuer %q", c.Masked(), got, c.Issuer)
		}
		if len(c.Expiry) != 4 || len(c.ServiceCode) != 3 || c.Balance < 0 || c.Limit <= 0 {
			t.Errorf("%s: malformed card %+v", c.Masked(), c)
		}
	}
}

func TestMaskPANKeepsSixAndFour(t *testing.T) {
	if got := MaskPAN("4761730000000011"); got != "476173******0011" {
		t.Errorf("MaskPAN = %s", got)
	}
	if got := MaskPAN("1234"); strings.ContainsAny(got, "1234") {
		t.Errorf("short PAN leaked: %s", got)
	}
}
