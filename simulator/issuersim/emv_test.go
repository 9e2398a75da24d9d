package issuersim_test

import (
	"context"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/keyceremony"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

// chipIssuer starts bank-a's issuer-sim checking chip data with the IMK of a key ceremony, and
// returns the card side of the same ceremony.
func chipIssuer(t *testing.T) (*issuersim.Server, *terminalsim.Client, *terminalsim.Chips) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	estate, err := keyceremony.Run(ctx, hsm.NewDevelopment(), []string{cards.BankA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	is := estate.Issuers[cards.BankA]
	srv, c := start(t, issuersim.Config{IssuerID: cards.BankA, EMV: is.EMV, PIN: is.PIN})
	return srv, c, estate.Chips
}

func icc(t *testing.T, m *iso8583.Message) []cards.TLV {
	t.Helper()
	if m.GetField(55) == nil {
		return nil
	}
	b, err := m.GetBytes(55)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := cards.DecodeTLV(b)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestChipCryptogramIsVerifiedAndAnsweredWithAnARPCTheCardAccepts(t *testing.T) {
	srv, c, chips := chipIssuer(t)
	ctx := context.Background()
	for i, tc := range []struct {
		pan, entry, want string
	}{
		{"4761730000000011", terminalsim.EntryChip, cards.Approved},
		{"6226090000000014", terminalsim.EntryContactless, cards.Approved},
		{"4761730000000037", terminalsim.EntryChip, cards.InsufficientFunds}, // the ARC says the decline
	} {
		card := cards.MustLookup(tc.pan)
		req, err := terminalsim.NewCardPurchase(ctx, shop, chips, card, terminalsim.Presentation{Entry: tc.entry}, 2500, "", 100+i)
		if err != nil {
			t.Fatal(err)
		}
		resp := send(t, c, req)
		if got := field(resp, 39); got != tc.want {
			t.Fatalf("%s: response %s, want %s", card.Masked(), got, tc.want)
		}
		objs := icc(t, resp)
		if arc, ok := cards.FindTLV(objs, cards.TagARC); !ok || string(arc) != tc.want {
			t.Fatalf("%s: 8A = %q, want %q", card.Masked(), arc, tc.want)
		}
		ia, err := chips.AuthenticateIssuer(ctx, card, req, resp)
		if err != nil {
			t.Fatal(err)
		}
		if !ia.Performed || !ia.Valid || ia.ARC != tc.want || !ia.MatchesResponse {
			t.Fatalf("%s: issuer authentication %+v", card.Masked(), ia)
		}
		// A response code changed on the way no longer matches what the issuer authenticated.
		_ = resp.Field(39, "00")
		if tc.want != "00" {
			if ia, _ := chips.AuthenticateIssuer(ctx, card, req, resp); ia.MatchesResponse {
				t.Fatalf("%s: a forged 00 matched the ARC %s", card.Masked(), ia.ARC)
			}
		}
	}
	if st := srv.Stats(); st.ARQCsVerified != 3 || st.ARQCsFailed != 0 {
		t.Fatalf("stats %d verified, %d failed", st.ARQCsVerified, st.ARQCsFailed)
	}
	if atc := chips.ATC("4761730000000011"); atc != 1 {
		t.Fatalf("ATC %d after one cryptogram", atc)
	}
}

func TestWrongOrMissingCryptogramIsDeclinedWithoutARPC(t *testing.T) {
	srv, c, chips := chipIssuer(t)
	ctx := context.Background()
	card := cards.MustLookup("4761730000000011")
	tampered, err := terminalsim.NewCardPurchase(ctx, shop, chips, card, terminalsim.Presentation{Entry: terminalsim.EntryChip}, 2500, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := terminalsim.TamperARQC(tampered); err != nil {
		t.Fatal(err)
	}
	unkeyed := terminalsim.NewPurchase(shop, card, 2500, "", 2) // chip data without a cryptogram
	for name, req := range map[string]*iso8583.Message{"tampered": tampered, "unkeyed": unkeyed} {
		resp := send(t, c, req)
		if got := field(resp, 39); got != cards.DoNotHonour {
			t.Fatalf("%s: response %s, want 05", name, got)
		}
		objs := icc(t, resp)
		if _, ok := cards.FindTLV(objs, cards.TagIssuerAuthData); ok {
			t.Fatalf("%s: an ARPC for a cryptogram that did not verify", name)
		}
		if arc, _ := cards.FindTLV(objs, cards.TagARC); string(arc) != "05" {
			t.Fatalf("%s: 8A = %q", name, arc)
		}
	}
	if st := srv.Stats(); st.ARQCsFailed != 2 {
		t.Fatalf("%d failed cryptograms counted, want 2", st.ARQCsFailed)
	}
	// A swipe carries no chip data: decided as before, answered without field 55.
	swipe, err := terminalsim.NewCardPurchase(ctx, shop, chips, cards.MustLookup("4761730000000029"),
		terminalsim.Presentation{Entry: terminalsim.EntrySwipe}, 2500, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	resp := send(t, c, swipe)
	if field(resp, 39) != "00" || resp.GetField(55) != nil {
		t.Fatalf("swipe: response %s, field 55 present %v", field(resp, 39), resp.GetField(55) != nil)
	}
}

func TestChipWithPINIsVerifiedBothWays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	estate, err := keyceremony.Run(ctx, hsm.NewDevelopment(), []string{cards.BankA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	is := estate.Issuers[cards.BankA]
	// The issuer gets the PIN block under its ZPK directly: a pad holding the issuer's ZPK plays the
	// switch's translation here.
	pad := terminalsim.TPKPad{HSM: is.PIN.HSM.(*hsm.HSM), TPK: is.PIN.ZPK, Format: hsm.ISO0}
	_, c := start(t, issuersim.Config{IssuerID: cards.BankA, EMV: is.EMV, PIN: is.PIN})
	card := cards.MustLookup("4761730000000011")
	req, err := terminalsim.NewCardPurchase(ctx, shop, estate.Chips, card, terminalsim.Presentation{Entry: terminalsim.EntryChip, PIN: pad}, 2500, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if cvm, _ := cards.FindTLV(icc(t, req), cards.TagCVMResults); len(cvm) != 3 || cvm[0] != 0x42 {
		t.Fatalf("9F34 = %x, want online PIN", cvm)
	}
	resp := send(t, c, req)
	if field(resp, 39) != "00" {
		t.Fatalf("response %s", field(resp, 39))
	}
	if ia, err := estate.Chips.AuthenticateIssuer(ctx, card, req, resp); err != nil || !ia.Valid {
		t.Fatalf("issuer authentication %+v, %v", ia, err)
	}
}
