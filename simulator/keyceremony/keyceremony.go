// Package keyceremony sets up the keys of a simulated estate the way an acquirer's key management
// would: each issuer and the switch share a ZMK, over which the switch sends the issuer its zone PIN
// key; each terminal's PIN pad shares a TMK with the switch, over which it receives its TPK or DUKPT
// BDK. Every key crosses between HSMs only as a TR-31 key block under a shared KEK; no clear key
// exists outside hsm/. The results are key blocks for the switch's configuration, PIN checks for the
// issuer simulators, and PIN pads for the terminal simulator.
package keyceremony

import (
	"context"
	"fmt"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

// PIN pad kinds.
const (
	TPK       = "tpk"        // master/session: a terminal PIN key, ISO format 0
	DUKPTTDES = "dukpt-tdes" // ANSI X9.24-1, ISO format 0
	DUKPTAES  = "dukpt-aes"  // ANSI X9.24-3 AES-128 BDK, ISO format 0 under a 2TDEA working key
)

// Issuer is what the ceremony made for one issuer.
type Issuer struct {
	SwitchZPK hsm.KeyBlock        // the zone PIN key under the switch's LMK: issuers[].zpk
	PIN       *issuersim.PINCheck // the issuer's HSM, its copy of the ZPK, its PVK and the cards' PVVs
}

// Terminal is what the ceremony made for one terminal.
type Terminal struct {
	Kind      string
	SwitchTPK hsm.KeyBlock // terminals[].tpk (TPK pads)
	SwitchBDK hsm.KeyBlock // terminals[].bdk (DUKPT pads)
	Pad       terminalsim.PINPad
}

// Estate holds the ceremony's results.
type Estate struct {
	Issuers   map[string]Issuer
	Terminals map[string]Terminal
}

// Run establishes the keys. switchHSM is the switch's HSM (its LMK is the one the switch runs with);
// each issuer gets a fresh HSM of its own; all PIN pads share one pad HSM. kinds maps terminal IDs to
// a pad kind; terminals not listed get no PIN pad.
func Run(ctx context.Context, switchHSM *hsm.HSM, issuerIDs []string, kinds map[string]string) (*Estate, error) {
	e := &Estate{Issuers: map[string]Issuer{}, Terminals: map[string]Terminal{}}
	for _, id := range issuerIDs {
		issuerHSM := hsm.NewDevelopment()
		zmkSwitch, zmkIssuer, err := hsm.EstablishSharedKEK(ctx, switchHSM, issuerHSM)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: %w", id, err)
		}
		zpk, kcv, err := switchHSM.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsagePIN, Algorithm: hsm.TDES})
		if err != nil {
			return nil, fmt.Errorf("issuer %s: generating the ZPK: %w", id, err)
		}
		wrapped, _, err := switchHSM.ExportKey(ctx, zmkSwitch, zpk)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: exporting the ZPK: %w", id, err)
		}
		issuerZPK, issuerKCV, err := issuerHSM.ImportKey(ctx, zmkIssuer, wrapped)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: importing the ZPK: %w", id, err)
		}
		if issuerKCV != kcv {
			return nil, fmt.Errorf("issuer %s: ZPK check values differ after the exchange", id)
		}
		check, err := issuersim.NewPINCheck(ctx, issuerHSM, issuerZPK, hsm.ISO0, cards.ByIssuer(id))
		if err != nil {
			return nil, err
		}
		e.Issuers[id] = Issuer{SwitchZPK: zpk, PIN: check}
	}
	if len(kinds) == 0 {
		return e, nil
	}
	padHSM := hsm.NewDevelopment()
	tmkSwitch, tmkPad, err := hsm.EstablishSharedKEK(ctx, switchHSM, padHSM)
	if err != nil {
		return nil, fmt.Errorf("PIN pads: %w", err)
	}
	deliver := func(spec hsm.KeySpec) (onSwitch, onPad hsm.KeyBlock, err error) {
		onSwitch, _, err = switchHSM.GenerateKey(ctx, spec)
		if err != nil {
			return "", "", err
		}
		wrapped, _, err := switchHSM.ExportKey(ctx, tmkSwitch, onSwitch)
		if err != nil {
			return "", "", err
		}
		onPad, _, err = padHSM.ImportKey(ctx, tmkPad, wrapped)
		return onSwitch, onPad, err
	}
	n := 0
	for tid, kind := range kinds {
		n++
		t := Terminal{Kind: kind}
		switch kind {
		case TPK:
			sw, pad, err := deliver(hsm.KeySpec{Usage: hsm.UsagePIN, Algorithm: hsm.TDES})
			if err != nil {
				return nil, fmt.Errorf("terminal %s: TPK: %w", tid, err)
			}
			t.SwitchTPK, t.Pad = sw, terminalsim.TPKPad{HSM: padHSM, TPK: pad, Format: hsm.ISO0}
		case DUKPTTDES, DUKPTAES:
			spec := hsm.KeySpec{Usage: hsm.UsageBDK, Algorithm: hsm.TDES}
			ksn := []byte{0xFF, 0xFF, 0x98, 0x76, 0x54, byte(n >> 8), byte(n), 0, 0, 0}
			if kind == DUKPTAES {
				spec.Algorithm = hsm.AES
				ksn = []byte{0x12, 0x34, 0x56, 0x78, 0x90, 0x12, byte(n >> 8), byte(n), 0, 0, 0, 0}
			}
			sw, pad, err := deliver(spec)
			if err != nil {
				return nil, fmt.Errorf("terminal %s: BDK: %w", tid, err)
			}
			t.SwitchBDK, t.Pad = sw, &terminalsim.DUKPTPad{HSM: padHSM, BDK: pad, Format: hsm.ISO0, InitialKSN: ksn}
		default:
			return nil, fmt.Errorf("terminal %s: unknown PIN pad kind %q", tid, kind)
		}
		e.Terminals[tid] = t
	}
	return e, nil
}

// Pads is the terminal-sim view: PIN pads by terminal ID.
func (e *Estate) Pads() map[string]terminalsim.PINPad {
	pads := map[string]terminalsim.PINPad{}
	for tid, t := range e.Terminals {
		pads[tid] = t.Pad
	}
	return pads
}
