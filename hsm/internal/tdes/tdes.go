// Package tdes prepares Triple DES key schedules from 8-, 16- or 24-byte keys and handles DES key
// parity, which crypto/des leaves to the caller.
package tdes

import (
	"crypto/cipher"
	"crypto/des"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

// NewCipher returns a TDES block cipher for a single- (8), double- (16) or triple-length (24) key.
// A single-length key is plain DES (K1=K2=K3); a double-length key is K1‖K2‖K1. Parity is not checked:
// the payment world ignores it when computing, and CheckParity exists for the places that must refuse.
func NewCipher(key []byte) (cipher.Block, error) {
	var k [24]byte
	switch len(key) {
	case 8:
		return des.NewCipher(key)
	case 16:
		copy(k[:16], key)
		copy(k[16:], key[:8])
	case 24:
		copy(k[:], key)
	default:
		return nil, fmt.Errorf("TDES key of %d bytes: %w", len(key), cryptoerr.ErrKeyLength)
	}
	return des.NewTripleDESCipher(k[:])
}

// NewDoubleLength returns a TDES cipher and insists on a 16-byte key, the length DUKPT, EMV and CVV
// keys must have.
func NewDoubleLength(key []byte) (cipher.Block, error) {
	if len(key) != 16 {
		return nil, fmt.Errorf("double-length TDES key of %d bytes: %w", len(key), cryptoerr.ErrKeyLength)
	}
	return NewCipher(key)
}

// AdjustParity sets the low bit of every byte so that each byte has odd parity, as DES keys should.
func AdjustParity(key []byte) {
	for i, b := range key {
		b &^= 1
		if onesParityEven(b) {
			b |= 1
		}
		key[i] = b
	}
}

// HasOddParity reports whether every byte of key has odd parity.
func HasOddParity(key []byte) bool {
	for _, b := range key {
		if onesParityEven(b) {
			return false
		}
	}
	return true
}

// CheckParity returns ErrKeyParity when key does not have odd parity.
func CheckParity(key []byte) error {
	if !HasOddParity(key) {
		return cryptoerr.ErrKeyParity
	}
	return nil
}

func onesParityEven(b byte) bool {
	b ^= b >> 4
	b ^= b >> 2
	b ^= b >> 1
	return b&1 == 0
}
