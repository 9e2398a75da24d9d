package terminalsim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
)

// MAC methods a terminal may use (the switch's terminals[].mac).
const (
	MACX919    = "x9.19"
	MACAESCMAC = "aes-cmac"
)

// ErrNotSignedOn is returned for PIN blocks and MACs asked of a terminal that has no working keys.
var ErrNotSignedOn = errors.New("the terminal has no working keys: sign on first")

// TerminalKeys is a terminal's secure element: the master key (TMK) loaded at deployment and the
// working keys (TPK, TAK) the switch sends under it at each sign-on, all inside the terminal's own
// HSM. It is the terminal's PIN pad (under the current TPK) and its MAC engine (the current TAK).
type TerminalKeys struct {
	HSM *hsm.HSM
	TMK hsm.KeyBlock // K0 AES key under the terminal HSM's LMK, shared with the switch
	// MAC is MACX919, MACAESCMAC or "" (the terminal downloads keys but does not MAC).
	MAC string
	// PINFormat is the PIN block format the pad makes (ISO 0 by default).
	PINFormat hsm.PINFormat

	mu             sync.RWMutex
	tpk, tak       hsm.KeyBlock
	tpkKCV, takKCV hsm.KCV
	rolls          int
}

// NewTerminalKeys is a terminal with a master key and no working keys yet.
func NewTerminalKeys(h *hsm.HSM, tmk hsm.KeyBlock, mac string) *TerminalKeys {
	return &TerminalKeys{HSM: h, TMK: tmk, MAC: mac}
}

// SignOn sends a sign-on (0800, field 70 = 001) and installs the working keys of its answer.
func (k *TerminalKeys) SignOn(ctx context.Context, c *Client, t Terminal, stan int) error {
	return k.roll(ctx, c, NewSignOn(t, stan))
}

// ChangeKeys sends a key change (0800, field 70 = 101) and installs the new working keys.
func (k *TerminalKeys) ChangeKeys(ctx context.Context, c *Client, t Terminal, stan int) error {
	return k.roll(ctx, c, NewNetwork(t, NetworkKeyChange, stan))
}

func (k *TerminalKeys) roll(ctx context.Context, c *Client, req *iso8583.Message) error {
	resp, err := c.Send(ctx, req)
	if err != nil {
		return fmt.Errorf("sign-on: %w", err)
	}
	if rc, _ := resp.GetString(39); rc != "00" {
		return fmt.Errorf("sign-on answered %q", rc)
	}
	f62, _ := resp.GetString(62)
	if f62 == "" {
		return fmt.Errorf("sign-on answer carries no working keys (field 62)")
	}
	return k.Install(ctx, f62)
}

// Install imports the working keys of a sign-on answer's field 62
// ("<TPK under TMK>|<KCV>|<TAK under TMK>|<KCV>") and checks each key's check value and usage
// before it replaces the keys in use.
func (k *TerminalKeys) Install(ctx context.Context, field62 string) error {
	p := strings.Split(field62, "|")
	if len(p) != 4 {
		return fmt.Errorf("working keys: %d parts, want 4", len(p))
	}
	tpk, err := k.importKey(ctx, "TPK", p[0], hsm.KCV(p[1]), hsm.UsagePIN)
	if err != nil {
		return err
	}
	takUsage := hsm.UsageMACAlg3
	if k.MAC == MACAESCMAC {
		takUsage = hsm.UsageMACCMAC
	}
	tak, err := k.importKey(ctx, "TAK", p[2], hsm.KCV(p[3]), takUsage)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.tpk, k.tak, k.tpkKCV, k.takKCV = tpk, tak, hsm.KCV(p[1]), hsm.KCV(p[3])
	k.rolls++
	k.mu.Unlock()
	return nil
}

func (k *TerminalKeys) importKey(ctx context.Context, name, wrapped string, kcv hsm.KCV, usage hsm.KeyUsage) (hsm.KeyBlock, error) {
	kb, got, err := k.HSM.ImportKey(ctx, k.TMK, wrapped)
	if err != nil {
		return "", fmt.Errorf("importing the %s under the TMK: %w", name, err)
	}
	if got != kcv {
		return "", fmt.Errorf("the %s's check value is %s, the switch said %s", name, got, kcv)
	}
	info, err := k.HSM.DescribeKey(ctx, kb)
	if err != nil {
		return "", fmt.Errorf("the %s: %w", name, err)
	}
	if info.Usage != usage {
		return "", fmt.Errorf("the %s has usage %s, want %s", name, info.Usage, usage)
	}
	return kb, nil
}

// CheckValues are the check values of the working keys in use ("" before the first sign-on).
func (k *TerminalKeys) CheckValues() (tpk, tak hsm.KCV) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.tpkKCV, k.takKCV
}

// Rolls counts the key sets installed.
func (k *TerminalKeys) Rolls() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.rolls
}

func (k *TerminalKeys) working() (tpk, tak hsm.KeyBlock) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.tpk, k.tak
}

// PINBlock makes the PIN block under the TPK of the last sign-on (a TPKPad over it).
func (k *TerminalKeys) PINBlock(ctx context.Context, pan, pin string) ([]byte, []byte, error) {
	tpk, _ := k.working()
	if tpk == "" {
		return nil, nil, ErrNotSignedOn
	}
	return TPKPad{HSM: k.HSM, TPK: tpk, Format: k.PINFormat}.PINBlock(ctx, pan, pin)
}

var _ PINPad = (*TerminalKeys)(nil)
