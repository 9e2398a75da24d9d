package termkeys

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
)

// MAC methods (the configuration's terminals[].mac).
const (
	MethodX919    = "x9.19"    // ISO 9797-1 algorithm 3 (ANSI X9.19 retail MAC), TDES TAK, padding method 1
	MethodAESCMAC = "aes-cmac" // ISO 9797-1 algorithm 5 (CMAC), AES-128 TAK
)

// x919Padding is the ISO 9797-1 padding method of X9.19 MACs: zeros to a full block, as ANSI X9.19
// defines it (CMAC pads by its own rule).
const x919Padding = 1

// HSM is what key management asks of the switch's HSM (the in-process *hsm.HSM, or a
// service.Client of `poswitch hsm serve`): generate working keys, export them under the terminal's
// master key, and MAC.
type HSM interface {
	GenerateKey(ctx context.Context, spec hsm.KeySpec) (hsm.KeyBlock, hsm.KCV, error)
	ExportKey(ctx context.Context, kek, key hsm.KeyBlock) (string, hsm.KCV, error)
	hsm.MACer
}

// Terminal is one terminal's key settings from the configuration.
type Terminal struct {
	ID  string
	TMK hsm.KeyBlock // master key under the LMK (K0/K1, AES: it wraps TR-31 key blocks); "" for none
	// MAC is MethodX919, MethodAESCMAC, or "" for a terminal that does not MAC.
	MAC string
	// PINFormat is the format its PIN pad sends: ISO 4 needs an AES TPK, the others a TDES one.
	PINFormat hsm.PINFormat
}

// Manager rolls terminals' working keys and checks and makes their MACs.
type Manager struct {
	hsm       HSM
	store     *Store
	terminals map[string]Terminal
}

// NewManager manages the keys of the given terminals (those with a TMK or a MAC method).
func NewManager(h HSM, store *Store, terminals []Terminal) *Manager {
	m := &Manager{hsm: h, store: store, terminals: make(map[string]Terminal, len(terminals))}
	for _, t := range terminals {
		m.terminals[t.ID] = t
	}
	return m
}

// Terminal returns the key settings of a managed terminal.
func (m *Manager) Terminal(tid string) (Terminal, bool) {
	t, ok := m.terminals[tid]
	return t, ok
}

// Store is where the manager keeps the keys.
func (m *Manager) Store() *Store { return m.store }

// WorkingKeys is field 62 of a sign-on answer: the TPK and TAK as TR-31 key blocks under the TMK,
// each followed by its check value, separated by '|' (docs/dialects.md).
type WorkingKeys struct {
	TPK, TAK       string // TR-31 key blocks under the TMK
	TPKKCV, TAKKCV hsm.KCV
}

func (w WorkingKeys) String() string {
	return strings.Join([]string{w.TPK, string(w.TPKKCV), w.TAK, string(w.TAKKCV)}, "|")
}

// ParseWorkingKeys reads field 62 of a sign-on answer.
func ParseWorkingKeys(s string) (WorkingKeys, error) {
	p := strings.Split(s, "|")
	if len(p) != 4 || p[0] == "" || p[2] == "" || len(p[1]) != 6 || len(p[3]) != 6 {
		return WorkingKeys{}, fmt.Errorf("working keys: want <TPK>|<KCV>|<TAK>|<KCV>, got %d parts", len(p))
	}
	return WorkingKeys{TPK: p[0], TPKKCV: hsm.KCV(p[1]), TAK: p[2], TAKKCV: hsm.KCV(p[3])}, nil
}

// ErrNoTMK is returned for a sign-on from a terminal without a master key.
var ErrNoTMK = errors.New("the terminal has no master key")

// RollKeys gives the terminal fresh working keys: the HSM generates a TPK and a TAK, exports both
// under the TMK, and the switch keeps them (under its LMK) before the terminal hears of them, so
// the terminal never holds keys the switch does not. code is field 70 (001 sign-on, 101 key change).
func (m *Manager) RollKeys(ctx context.Context, tid, code string) (WorkingKeys, error) {
	t, ok := m.terminals[tid]
	if !ok || t.TMK == "" {
		return WorkingKeys{}, fmt.Errorf("rolling the keys of terminal %s: %w", tid, ErrNoTMK)
	}
	tpkSpec := hsm.KeySpec{Usage: hsm.UsagePIN, Algorithm: hsm.TDES, Length: 16}
	if t.PINFormat == hsm.ISO4 {
		tpkSpec.Algorithm = hsm.AES
	}
	takSpec := hsm.KeySpec{Usage: hsm.UsageMACAlg3, Algorithm: hsm.TDES, Length: 16}
	if t.MAC == MethodAESCMAC {
		takSpec = hsm.KeySpec{Usage: hsm.UsageMACCMAC, Algorithm: hsm.AES, Length: 16}
	}
	var k Keys
	var w WorkingKeys
	for _, key := range []struct {
		name           string
		spec           hsm.KeySpec
		lmk            *hsm.KeyBlock
		kcv, exportKCV *hsm.KCV
		exported       *string
	}{
		{"TPK", tpkSpec, &k.TPK, &k.TPKKCV, &w.TPKKCV, &w.TPK},
		{"TAK", takSpec, &k.TAK, &k.TAKKCV, &w.TAKKCV, &w.TAK},
	} {
		kb, kcv, err := m.hsm.GenerateKey(ctx, key.spec)
		if err != nil {
			return WorkingKeys{}, fmt.Errorf("rolling the keys of terminal %s: generating the %s: %w", tid, key.name, err)
		}
		wrapped, exportKCV, err := m.hsm.ExportKey(ctx, t.TMK, kb)
		if err != nil {
			return WorkingKeys{}, fmt.Errorf("rolling the keys of terminal %s: exporting the %s under the TMK: %w", tid, key.name, err)
		}
		if exportKCV != kcv {
			return WorkingKeys{}, fmt.Errorf("rolling the keys of terminal %s: the %s's check value changed on export", tid, key.name)
		}
		*key.lmk, *key.kcv, *key.exportKCV, *key.exported = kb, kcv, kcv, wrapped
	}
	if _, err := m.store.Roll(ctx, tid, k, code); err != nil {
		return WorkingKeys{}, err
	}
	return w, nil
}

// CurrentTPK is the PIN key the terminal received at its last sign-on; found is false before one.
func (m *Manager) CurrentTPK(ctx context.Context, tid string) (hsm.KeyBlock, bool, error) {
	if _, ok := m.terminals[tid]; !ok {
		return "", false, nil
	}
	k, found, err := m.store.Current(ctx, tid)
	return k.TPK, found, err
}

// VerifyRequest checks the MAC of a request the terminal sent (msg unpacked from body). It returns
// nil, or an error wrapping ErrNoTAK, ErrMACMissing or ErrMACMismatch (answer 63), or another
// error when the keys or the HSM could not be reached.
func (m *Manager) VerifyRequest(ctx context.Context, tid string, msg *iso8583.Message, body []byte) error {
	k, found, err := m.store.Current(ctx, tid)
	if err != nil {
		return err
	}
	if !found {
		return ErrNoTAK
	}
	mab, mac, err := MACBlock(msg, body)
	if err != nil {
		return err
	}
	err = m.hsm.VerifyMAC(ctx, hsm.VerifyMAC{Key: k.TAK, Padding: x919Padding, Data: mab, MAC: mac})
	if errors.Is(err, hsm.ErrVerificationFailed) {
		// Another node may have rolled the keys since this one cached them.
		fresh, found, rerr := m.store.Reload(ctx, tid)
		if rerr != nil {
			return rerr
		}
		if !found || fresh.Generation == k.Generation {
			return ErrMACMismatch
		}
		err = m.hsm.VerifyMAC(ctx, hsm.VerifyMAC{Key: fresh.TAK, Padding: x919Padding, Data: mab, MAC: mac})
	}
	switch {
	case errors.Is(err, hsm.ErrVerificationFailed):
		return ErrMACMismatch
	case err != nil:
		return fmt.Errorf("verifying the MAC of terminal %s: %w", tid, err)
	}
	return nil
}

// MACAnswer puts the MAC of an answer in its field 64 (or 128) under the terminal's current TAK
// and returns the packed answer. A terminal without a TAK gets ErrNoTAK (its answer goes unMACed).
func (m *Manager) MACAnswer(ctx context.Context, tid string, resp *iso8583.Message) ([]byte, error) {
	k, found, err := m.store.Current(ctx, tid)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNoTAK
	}
	packed, id, wireLen, err := withMACPlaceholder(resp)
	if err != nil {
		return nil, fmt.Errorf("MACing the answer to terminal %s: %w", tid, err)
	}
	mac, err := m.hsm.GenerateMAC(ctx, hsm.GenerateMAC{Key: k.TAK, Padding: x919Padding,
		Data: packed[:len(packed)-wireLen], Length: MACLength})
	if err != nil {
		return nil, fmt.Errorf("MACing the answer to terminal %s: %w", tid, err)
	}
	return sealMAC(resp, packed, id, mac)
}
