package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// panSealLabel separates the PAN sealing key from every other use of the LMK.
const panSealLabel = "poswitch PAN data key v1"

// sealedPANVersion is the first byte of a sealed PAN, so the format can change without guessing.
const sealedPANVersion = 1

// maxPANDigits bounds what SealPAN accepts (ISO/IEC 7812: at most 19 digits).
const maxPANDigits = 19

// ErrSealedPAN is a sealed PAN that does not open: wrong LMK, altered bytes or a foreign format.
var ErrSealedPAN = errors.New("sealed PAN does not open under this HSM's data key")

// derivePANSealKey derives the data key that seals PANs at rest from the LMK; like the digest key it
// is never stored or shown.
func derivePANSealKey(lmk []byte) []byte {
	m := hmac.New(sha256.New, lmk)
	m.Write([]byte(panSealLabel))
	return m.Sum(nil)
}

// SealPAN encrypts a PAN under the HSM's PAN data key (AES-256-GCM, random nonce), for the few
// places that must keep a card number at rest and give it back later — a stand-in advice waiting
// in the store-and-forward queue must carry field 2 to the issuer. The database only ever holds the
// sealed bytes: version (1) | nonce (12) | ciphertext and tag.
func (h *HSM) SealPAN(pan string) ([]byte, error) {
	if len(pan) == 0 || len(pan) > maxPANDigits {
		return nil, fmt.Errorf("sealing a PAN: length %d outside 1-%d", len(pan), maxPANDigits)
	}
	for i := 0; i < len(pan); i++ {
		if pan[i] < '0' || pan[i] > '9' {
			return nil, errors.New("sealing a PAN: not all digits")
		}
	}
	aead, err := h.panAEAD()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(pan)+aead.Overhead())
	out[0] = sealedPANVersion
	if _, err := io.ReadFull(h.random, out[1:]); err != nil {
		return nil, fmt.Errorf("sealing a PAN: nonce: %w", err)
	}
	return aead.Seal(out, out[1:], []byte(pan), []byte{sealedPANVersion}), nil
}

// OpenPAN gives back the PAN SealPAN sealed under the same LMK.
func (h *HSM) OpenPAN(sealed []byte) (string, error) {
	aead, err := h.panAEAD()
	if err != nil {
		return "", err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() || sealed[0] != sealedPANVersion {
		return "", ErrSealedPAN
	}
	nonce := sealed[1 : 1+aead.NonceSize()]
	pan, err := aead.Open(nil, nonce, sealed[1+aead.NonceSize():], []byte{sealedPANVersion})
	if err != nil {
		return "", ErrSealedPAN
	}
	return string(pan), nil
}

func (h *HSM) panAEAD() (cipher.AEAD, error) {
	block, err := aes.NewCipher(h.panSealKey)
	if err != nil {
		return nil, fmt.Errorf("PAN data key: %w", err)
	}
	return cipher.NewGCM(block)
}
