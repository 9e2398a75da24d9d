package hsm

import (
	"context"
	"fmt"
	"io"

	"github.com/poswitch/poswitch/hsm/internal/tr31"
)

// GenerateKey makes a random key as spec says and returns it under the LMK with its check value.
// TDES keys get odd parity.
func (h *HSM) GenerateKey(ctx context.Context, spec KeySpec) (KeyBlock, KCV, error) {
	hdr, err := spec.header()
	if err != nil {
		return "", "", fmt.Errorf("generating key: %w", err)
	}
	clearKey := make([]byte, spec.length())
	defer clear(clearKey)
	if _, err := io.ReadFull(h.random, clearKey); err != nil {
		return "", "", fmt.Errorf("generating key: drawing random: %w", ErrInternal)
	}
	if spec.Algorithm == TDES {
		setOddParity(clearKey)
	}
	return h.store(hdr, clearKey)
}

// ImportClearKey stores a key given in clear, as a key-ceremony import from components would. It
// exists for test set-up and the simulators (a terminal-sim's TPK, an issuer's PVK); production keys
// arrive by ImportKey under a KEK.
func (h *HSM) ImportClearKey(ctx context.Context, spec KeySpec, clearKey []byte) (KeyBlock, KCV, error) {
	spec.Length = len(clearKey)
	hdr, err := spec.header()
	if err != nil {
		return "", "", fmt.Errorf("importing clear key: %w", err)
	}
	return h.store(hdr, clearKey)
}

func (h *HSM) store(hdr tr31.Header, clearKey []byte) (KeyBlock, KCV, error) {
	kb, err := h.lmk.WrapWithRandom(hdr, clearKey, h.random)
	if err != nil {
		return "", "", fmt.Errorf("wrapping key under LMK: %w", ErrInternal)
	}
	k, err := newLoadedKey(hdr, append([]byte(nil), clearKey...))
	if err != nil {
		return "", "", err
	}
	h.cache.put(KeyBlock(kb), k)
	return KeyBlock(kb), k.kcv, nil
}

// KeyCheckValue returns the check value of a stored key (BU).
func (h *HSM) KeyCheckValue(ctx context.Context, kb KeyBlock) (KCV, error) {
	k, err := h.key(kb)
	if err != nil {
		return "", fmt.Errorf("computing check value: %w", err)
	}
	return k.kcv, nil
}

// KeyInfo describes a stored key without revealing it.
type KeyInfo struct {
	Usage         KeyUsage
	Algorithm     KeyAlgorithm
	ModeOfUse     ModeOfUse
	Length        int // bytes
	Exportability byte
	KeyVersion    string
	KCV           KCV
}

// DescribeKey authenticates a key block under the LMK and returns its attributes.
func (h *HSM) DescribeKey(ctx context.Context, kb KeyBlock) (KeyInfo, error) {
	k, err := h.key(kb)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("describing key: %w", err)
	}
	return KeyInfo{Usage: k.usage, Algorithm: k.alg, ModeOfUse: k.mode, Length: len(k.clear), Exportability: k.export, KeyVersion: k.header.KeyVersion, KCV: k.kcv}, nil
}

// ImportKey takes a TR-31 key block wrapped under a KEK (usage K0 or K1, AES, mode B or D) and
// returns the same key under the LMK (A6). The imported header's usage, algorithm and mode are
// kept, and must be ones this HSM knows.
func (h *HSM) ImportKey(ctx context.Context, kek KeyBlock, wrapped string) (KeyBlock, KCV, error) {
	kk, err := h.need(kek, "KEK", []KeyUsage{UsageKEK, UsageKBPK}, modesUnwrap, "A")
	if err != nil {
		return "", "", fmt.Errorf("importing key: %w", err)
	}
	kbpk, err := kbpkFor(kk)
	if err != nil {
		return "", "", fmt.Errorf("importing key: %w", err)
	}
	hdr, clearKey, err := kbpk.Unwrap(wrapped)
	if err != nil {
		return "", "", fmt.Errorf("importing key: %w", keyBlockError(err))
	}
	defer clear(clearKey)
	spec := KeySpec{Usage: KeyUsage(hdr.Usage), Algorithm: KeyAlgorithm(hdr.Algorithm), Length: len(clearKey), ModeOfUse: ModeOfUse(hdr.ModeOfUse), NotExportable: hdr.Exportability != 'E', KeyVersion: hdr.KeyVersion}
	lmkHdr, err := spec.header()
	if err != nil {
		return "", "", fmt.Errorf("importing key: %w", err)
	}
	lmkHdr.Exportability = hdr.Exportability
	lmkHdr.Blocks = hdr.Blocks
	return h.store(lmkHdr, clearKey)
}

// ExportKey returns a stored key as a TR-31 key block under a KEK (A8) with its check value. The
// key must be exportable ('E'); the KEK must be an AES K0 or K1 key of mode B or E.
func (h *HSM) ExportKey(ctx context.Context, kek, key KeyBlock) (string, KCV, error) {
	kk, err := h.need(kek, "KEK", []KeyUsage{UsageKEK, UsageKBPK}, modesWrap, "A")
	if err != nil {
		return "", "", fmt.Errorf("exporting key: %w", err)
	}
	k, err := h.key(key)
	if err != nil {
		return "", "", fmt.Errorf("exporting key: %w", err)
	}
	if k.export != 'E' {
		return "", "", fmt.Errorf("exporting key: %w", ErrKeyExport)
	}
	kbpk, err := kbpkFor(kk)
	if err != nil {
		return "", "", fmt.Errorf("exporting key: %w", err)
	}
	out, err := kbpk.WrapWithRandom(k.header, k.clear, h.random)
	if err != nil {
		return "", "", fmt.Errorf("exporting key: wrapping: %w", ErrInternal)
	}
	return out, k.kcv, nil
}

// setOddParity sets the low bit of each byte so that every byte has an odd number of one bits, as
// DES keys conventionally do.
func setOddParity(k []byte) {
	for i, b := range k {
		b &^= 1
		ones := 0
		for x := b; x != 0; x &= x - 1 {
			ones++
		}
		if ones%2 == 0 {
			b |= 1
		}
		k[i] = b
	}
}

// hasOddParity reports whether every byte of a DES key has odd parity.
func hasOddParity(k []byte) bool {
	for _, b := range k {
		ones := 0
		for x := b; x != 0; x &= x - 1 {
			ones++
		}
		if ones%2 == 0 {
			return false
		}
	}
	return true
}

// kbpkFor prepares a KEK as a TR-31 version D key block protection key.
func kbpkFor(k *loadedKey) (*tr31.KBPK, error) {
	kbpk, err := tr31.NewKBPK(k.clear)
	if err != nil {
		return nil, fmt.Errorf("KEK: %w", ErrKeyLength)
	}
	return kbpk, nil
}
