package hsm

import (
	"context"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/dukpt"
	"github.com/poswitch/poswitch/hsm/internal/tdes"
)

// TranslateDUKPT asks for a PIN block from a DUKPT PIN pad to be re-enciphered under a ZPK.
type TranslateDUKPT struct {
	// BDK is the base derivation key (usage B0, mode X): TDES for ANSI X9.24-1 devices, AES-128/192/256
	// for X9.24-3 devices.
	BDK KeyBlock
	// KSN is the key serial number the PIN pad sent: 10 bytes (TDES) or 12 bytes (AES).
	KSN []byte
	// SourceFormat is the PIN pad's format. With an AES BDK, ISO 4 uses an AES working key and ISO
	// 0/1/3 a 2TDEA working key (X9.24-3 allows both).
	SourceFormat PINFormat
	PINBlock     []byte
	// WorkingKeyLength is the AES working key length in bytes for ISO 4 under an AES BDK: 16
	// (default), 24 or 32.
	WorkingKeyLength int
	DestKey          KeyBlock // P0 (ZPK), mode B or E
	DestFormat       PINFormat
	Card             Card
	MaxPINLength     int // zero means 12
}

// TranslatePINFromDUKPT derives the PIN pad's transaction PIN key from the BDK and KSN, deciphers
// the PIN block, and returns it under the destination ZPK (G0). KSNs whose counter is zero or has
// too many one-bits are refused with ErrInvalidKSN.
func (h *HSM) TranslatePINFromDUKPT(ctx context.Context, req TranslateDUKPT) ([]byte, error) {
	t, err := h.TranslatePINBlockFromDUKPT(ctx, req)
	return t.PINBlock, err
}

// TranslatePINBlockFromDUKPT is TranslatePINFromDUKPT that also reports the PIN length.
func (h *HSM) TranslatePINBlockFromDUKPT(ctx context.Context, req TranslateDUKPT) (Translated, error) {
	bdk, err := h.need(req.BDK, "BDK", []KeyUsage{UsageBDK}, modesDerive, "")
	if err != nil {
		return Translated{}, fmt.Errorf("translating DUKPT PIN: %w", err)
	}
	dst, err := h.need(req.DestKey, "destination PIN key", []KeyUsage{UsagePIN}, modesEncrypt, "")
	if err != nil {
		return Translated{}, fmt.Errorf("translating DUKPT PIN: %w", err)
	}
	src, err := h.dukptPINKey(bdk, req.KSN, req.SourceFormat, req.WorkingKeyLength)
	if err != nil {
		return Translated{}, fmt.Errorf("translating DUKPT PIN: %w", err)
	}
	return h.translate(src, req.SourceFormat, req.PINBlock, dst, req.DestFormat, req.Card, req.MaxPINLength)
}

// dukptPINKey derives the transaction's PIN working key as a loadedKey (not cached: it changes with
// every KSN).
func (h *HSM) dukptPINKey(bdk *loadedKey, ksn []byte, format PINFormat, workingKeyLength int) (*loadedKey, error) {
	var (
		clearKey []byte
		alg      = TDES
	)
	switch {
	case bdk.tdesBDK != nil:
		if err := dukpt.CheckTDESKSN(ksn); err != nil {
			return nil, public(err)
		}
		k, err := bdk.tdesBDK.PINKey(ksn)
		if err != nil {
			return nil, public(err)
		}
		clearKey = k[:]
	case bdk.aesBDK != nil:
		if err := dukpt.CheckAESKSN(ksn); err != nil {
			return nil, public(err)
		}
		kt := dukpt.KeyTDES2
		if format == ISO4 {
			alg = AES
			if workingKeyLength == 0 {
				workingKeyLength = 16
			}
			var err error
			if kt, err = dukpt.AESKeyType(workingKeyLength); err != nil {
				return nil, public(err)
			}
		}
		k, err := bdk.aesBDK.WorkingKey(ksn, dukpt.AESPINEncryption, kt)
		if err != nil {
			return nil, public(err)
		}
		clearKey = k
	default:
		return nil, fmt.Errorf("BDK algorithm %c: %w", bdk.alg, ErrKeyAlgorithm)
	}
	defer clear(clearKey)
	k := &loadedKey{usage: UsagePIN, alg: alg, mode: ModeDecrypt}
	var err error
	if alg == TDES {
		k.block, err = tdes.NewCipher(clearKey)
	} else {
		k.block, err = newAES(clearKey)
	}
	if err != nil {
		return nil, public(err)
	}
	return k, nil
}

// DUKPTPINPad is what a DUKPT PIN pad does: encipher a clear PIN under the transaction key derived
// from the BDK and KSN. For the terminal simulator and tests; the switch never calls it.
type DUKPTPINPad struct {
	BDK              KeyBlock
	KSN              []byte
	Format           PINFormat
	WorkingKeyLength int
	PIN              string
	Card             Card
}

// EncryptPINDUKPT returns the PIN block a DUKPT PIN pad would send for req.
func (h *HSM) EncryptPINDUKPT(ctx context.Context, req DUKPTPINPad) ([]byte, error) {
	bdk, err := h.need(req.BDK, "BDK", []KeyUsage{UsageBDK}, modesDerive, "")
	if err != nil {
		return nil, fmt.Errorf("enciphering DUKPT PIN: %w", err)
	}
	k, err := h.dukptPINKey(bdk, req.KSN, req.Format, req.WorkingKeyLength)
	if err != nil {
		return nil, fmt.Errorf("enciphering DUKPT PIN: %w", err)
	}
	return h.encryptPIN(k.block, req.Format, req.PIN, req.Card)
}
