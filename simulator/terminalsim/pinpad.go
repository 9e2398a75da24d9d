package terminalsim

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"sync"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
)

// PINPad encrypts the cardholder's PIN the way a terminal's PIN pad does. Its keys live in its own
// HSM (a PIN pad is a small HSM); the clear PIN is handed to that HSM and goes nowhere else.
type PINPad interface {
	// PINBlock returns the encrypted PIN block and, for DUKPT pads, the KSN it was made under.
	PINBlock(ctx context.Context, pan, pin string) (block, ksn []byte, err error)
}

// TPKPad is a PIN pad with a terminal PIN key (master/session key management).
type TPKPad struct {
	HSM    *hsm.HSM
	TPK    hsm.KeyBlock
	Format hsm.PINFormat
}

func (p TPKPad) PINBlock(ctx context.Context, pan, pin string) ([]byte, []byte, error) {
	b, err := p.HSM.EncryptPIN(ctx, hsm.EncryptPIN{Key: p.TPK, Format: p.Format, PIN: pin, Card: hsm.Card{PAN: pan}})
	return b, nil, err
}

// DUKPTPad is a DUKPT PIN pad: every PIN block is made under a new key derived from the BDK and the
// next KSN. TDES pads (ANSI X9.24-1) use a 10-byte KSN with a 21-bit counter that skips values with
// more than 10 one-bits; AES pads (X9.24-3) a 12-byte KSN with a 32-bit counter, at most 16 one-bits.
type DUKPTPad struct {
	HSM    *hsm.HSM
	BDK    hsm.KeyBlock
	Format hsm.PINFormat
	// InitialKSN is the pad's KSN with the counter at zero: 10 bytes (TDES) or 12 (AES).
	InitialKSN []byte

	mu      sync.Mutex
	counter uint32
}

func (p *DUKPTPad) nextKSN() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ksn := append([]byte(nil), p.InitialKSN...)
	switch len(ksn) {
	case 10:
		for {
			p.counter++
			if p.counter >= 1<<21 {
				return nil, fmt.Errorf("DUKPT PIN pad: counter exhausted")
			}
			if bits.OnesCount32(p.counter) <= 10 {
				break
			}
		}
		v := binary.BigEndian.Uint32(ksn[6:]) &^ (1<<21 - 1)
		binary.BigEndian.PutUint32(ksn[6:], v|p.counter)
	case 12:
		for {
			p.counter++
			if p.counter == 0 {
				return nil, fmt.Errorf("DUKPT PIN pad: counter exhausted")
			}
			if bits.OnesCount32(p.counter) <= 16 {
				break
			}
		}
		binary.BigEndian.PutUint32(ksn[8:], p.counter)
	default:
		return nil, fmt.Errorf("DUKPT PIN pad: initial KSN of %d bytes, want 10 or 12", len(ksn))
	}
	return ksn, nil
}

func (p *DUKPTPad) PINBlock(ctx context.Context, pan, pin string) ([]byte, []byte, error) {
	ksn, err := p.nextKSN()
	if err != nil {
		return nil, nil, err
	}
	b, err := p.HSM.EncryptPINDUKPT(ctx, hsm.DUKPTPINPad{BDK: p.BDK, KSN: ksn, Format: p.Format, PIN: pin,
		Card: hsm.Card{PAN: pan}})
	return b, ksn, err
}

// WithPIN puts a PIN block (field 52) and, for DUKPT, the KSN (field 62, hex) on a request, and marks
// the entry mode as PIN-capable with a PIN entered (field 22, third digit 1).
func WithPIN(ctx context.Context, m *iso8583.Message, pad PINPad, pan, pin string) error {
	block, ksn, err := pad.PINBlock(ctx, pan, pin)
	if err != nil {
		return fmt.Errorf("PIN pad: %w", err)
	}
	if err := m.BinaryField(52, block); err != nil {
		return fmt.Errorf("setting field 52: %w", err)
	}
	if ksn != nil {
		if err := m.Field(62, hex.EncodeToString(ksn)); err != nil {
			return fmt.Errorf("setting field 62: %w", err)
		}
	}
	if mode, _ := m.GetString(22); len(mode) == 3 {
		_ = m.Field(22, mode[:2]+"1")
	}
	return nil
}
