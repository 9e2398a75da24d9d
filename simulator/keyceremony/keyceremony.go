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

// Terminals with a master key (TMK): the terminal's secure element and the switch share a TMK; the
// PIN and MAC working keys arrive under it at each sign-on (terminalsim.TerminalKeys), and the PIN
// pad uses the downloaded TPK.
const (
	TMK        = "tmk"          // master key, key download, no MAC
	TMKX919    = "tmk-x9.19"    // master key, requests and answers MACed with ANSI X9.19
	TMKAESCMAC = "tmk-aes-cmac" // master key, requests and answers MACed with AES-CMAC
)

// Issuer is what the ceremony made for one issuer.
type Issuer struct {
	SwitchZPK hsm.KeyBlock        // the zone PIN key under the switch's LMK: issuers[].zpk
	PIN       *issuersim.PINCheck // the issuer's HSM, its copy of the ZPK, its PVK and the cards' PVVs
	// IMK is the issuer master key for application cryptograms (usage E0) under the issuer's own
	// LMK; EMV is the issuer-sim's ARQC check with it (issuersim.Config.EMV). CardIMK is the same key
	// as the card-personalisation HSM holds it (Estate.Chips derives each card's ICC key from it).
	IMK     hsm.KeyBlock
	EMV     *issuersim.EMVCheck
	CardIMK hsm.KeyBlock
}

// Terminal is what the ceremony made for one terminal.
type Terminal struct {
	Kind      string
	SwitchTPK hsm.KeyBlock // terminals[].tpk (TPK pads)
	SwitchBDK hsm.KeyBlock // terminals[].bdk (DUKPT pads)
	Pad       terminalsim.PINPad
	// TMK terminals: terminals[].tmk and terminals[].mac for the switch, and the terminal's secure
	// element (its Pad too) for terminal-sim.
	SwitchTMK hsm.KeyBlock
	MAC       string
	Keys      *terminalsim.TerminalKeys
}

// Estate holds the ceremony's results.
type Estate struct {
	Issuers   map[string]Issuer
	Terminals map[string]Terminal
	// Chips are the ICCs of the catalogue's chip cards, keyed from each issuer's IMK in the
	// card-personalisation HSM (terminalsim.NewCardPurchase computes their ARQCs).
	Chips *terminalsim.Chips
}

// Run establishes the keys. switchHSM is the switch's HSM (its LMK is the one the switch runs with);
// each issuer gets a fresh HSM of its own; all PIN pads share one pad HSM. kinds maps terminal IDs to
// a pad kind; terminals not listed get no PIN pad.
func Run(ctx context.Context, switchHSM *hsm.HSM, issuerIDs []string, kinds map[string]string) (*Estate, error) {
	e := &Estate{Issuers: map[string]Issuer{}, Terminals: map[string]Terminal{}}
	persoHSM := hsm.NewDevelopment() // card personalisation: writes each card's ICC keys
	cardIMKs := map[string]hsm.KeyBlock{}
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
		imk, cardIMK, err := issueIMK(ctx, issuerHSM, persoHSM)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: %w", id, err)
		}
		cardIMKs[id] = cardIMK
		e.Issuers[id] = Issuer{SwitchZPK: zpk, PIN: check, IMK: imk, CardIMK: cardIMK,
			EMV: &issuersim.EMVCheck{HSM: issuerHSM, IMK: imk}}
	}
	e.Chips = terminalsim.NewChips(persoHSM, cardIMKs)
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
		case TMK, TMKX919, TMKAESCMAC:
			tmkSwitch, tmkTerminal, err := hsm.EstablishSharedKEK(ctx, switchHSM, padHSM)
			if err != nil {
				return nil, fmt.Errorf("terminal %s: TMK: %w", tid, err)
			}
			t.SwitchTMK, t.MAC = tmkSwitch, tmkMAC[kind]
			t.Keys = terminalsim.NewTerminalKeys(padHSM, tmkTerminal, t.MAC)
			t.Pad = t.Keys
		default:
			return nil, fmt.Errorf("terminal %s: unknown PIN pad kind %q", tid, kind)
		}
		e.Terminals[tid] = t
	}
	return e, nil
}

// issueIMK generates the issuer's master key for application cryptograms in its HSM and sends it to
// the card-personalisation HSM under a KEK the two share, as an issuer's key management does before
// cards are personalised. The check values must agree on both sides.
func issueIMK(ctx context.Context, issuerHSM, persoHSM *hsm.HSM) (onIssuer, onPerso hsm.KeyBlock, err error) {
	kekIssuer, kekPerso, err := hsm.EstablishSharedKEK(ctx, issuerHSM, persoHSM)
	if err != nil {
		return "", "", fmt.Errorf("IMK: %w", err)
	}
	imk, kcv, err := issuerHSM.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsageEMVMasterAC, Algorithm: hsm.TDES})
	if err != nil {
		return "", "", fmt.Errorf("generating the IMK: %w", err)
	}
	wrapped, _, err := issuerHSM.ExportKey(ctx, kekIssuer, imk)
	if err != nil {
		return "", "", fmt.Errorf("exporting the IMK: %w", err)
	}
	cardIMK, cardKCV, err := persoHSM.ImportKey(ctx, kekPerso, wrapped)
	if err != nil {
		return "", "", fmt.Errorf("importing the IMK for personalisation: %w", err)
	}
	if cardKCV != kcv {
		return "", "", fmt.Errorf("IMK check values differ after the exchange")
	}
	return imk, cardIMK, nil
}

// tmkMAC is the MAC method of each TMK kind.
var tmkMAC = map[string]string{TMK: "", TMKX919: terminalsim.MACX919, TMKAESCMAC: terminalsim.MACAESCMAC}

// TerminalKeys is the terminal-sim view of the TMK terminals: their secure elements by terminal ID.
func (e *Estate) TerminalKeys() map[string]*terminalsim.TerminalKeys {
	keys := map[string]*terminalsim.TerminalKeys{}
	for tid, t := range e.Terminals {
		if t.Keys != nil {
			keys[tid] = t.Keys
		}
	}
	return keys
}

// Pads is the terminal-sim view: PIN pads by terminal ID.
func (e *Estate) Pads() map[string]terminalsim.PINPad {
	pads := map[string]terminalsim.PINPad{}
	for tid, t := range e.Terminals {
		pads[tid] = t.Pad
	}
	return pads
}

// WalletNotifyKey makes the MAC key a wallet MACs its order payment notifications with
// (channels.orders; docs/channels.md): generated in the switch's HSM, which verifies with it
// (issuers[].notify_key), and sent to the wallet's HSM (walletsim.Config.NotifyKey) under a KEK the
// two establish, like a ZPK. alg picks the MAC: hsm.TDES makes an ANSI X9.19 key (M3), hsm.AES an
// AES-CMAC key (M6). The check values must agree on both sides.
func WalletNotifyKey(ctx context.Context, switchHSM, walletHSM *hsm.HSM, alg hsm.KeyAlgorithm) (onSwitch, onWallet hsm.KeyBlock, err error) {
	usage := hsm.UsageMACAlg3
	if alg == hsm.AES {
		usage = hsm.UsageMACCMAC
	}
	kekSwitch, kekWallet, err := hsm.EstablishSharedKEK(ctx, switchHSM, walletHSM)
	if err != nil {
		return "", "", fmt.Errorf("wallet notify key: %w", err)
	}
	key, kcv, err := switchHSM.GenerateKey(ctx, hsm.KeySpec{Usage: usage, Algorithm: alg})
	if err != nil {
		return "", "", fmt.Errorf("generating the wallet notify key: %w", err)
	}
	wrapped, _, err := switchHSM.ExportKey(ctx, kekSwitch, key)
	if err != nil {
		return "", "", fmt.Errorf("exporting the wallet notify key: %w", err)
	}
	walletKey, walletKCV, err := walletHSM.ImportKey(ctx, kekWallet, wrapped)
	if err != nil {
		return "", "", fmt.Errorf("importing the wallet notify key: %w", err)
	}
	if walletKCV != kcv {
		return "", "", fmt.Errorf("wallet notify key check values differ after the exchange")
	}
	return key, walletKey, nil
}
