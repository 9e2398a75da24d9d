// Package keycheck computes key check values (KCV), the short fingerprints operators compare to
// confirm a key arrived intact without revealing it.
package keycheck

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/mac"
	"github.com/poswitch/poswitch/hsm/internal/tdes"
)

// Len is the KCV length in bytes (6 hex digits), the length payShield and AWS show.
const Len = 3

// TDES is the leftmost 3 bytes of TDES(key)[0000000000000000] for an 8-, 16- or 24-byte key
// (ANSI X9.24-1).
func TDES(key []byte) ([]byte, error) {
	c, err := tdes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("TDES check value: %w", err)
	}
	var b [8]byte
	c.Encrypt(b[:], b[:])
	return b[:Len:Len], nil
}

// AES is the leftmost 3 bytes of AES-CMAC(key)[16 zero bytes], the AES check value of ANSI X9.24-1
// (2017) and TR-31 that payShield and AWS Payment Cryptography use.
func AES(key []byte) ([]byte, error) {
	c, err := newAES(key)
	if err != nil {
		return nil, err
	}
	var zero [16]byte
	m, err := mac.CMAC(c, zero[:])
	if err != nil {
		return nil, err
	}
	return m[:Len:Len], nil
}

// AESEncryptZeros is the leftmost 3 bytes of AES(key)[16 zero bytes], the older check value some
// tools still print.
func AESEncryptZeros(key []byte) ([]byte, error) {
	c, err := newAES(key)
	if err != nil {
		return nil, err
	}
	var b [16]byte
	c.Encrypt(b[:], b[:])
	return b[:Len:Len], nil
}

func newAES(key []byte) (cipher.Block, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("AES check value: key of %d bytes: %w", len(key), cryptoerr.ErrKeyLength)
	}
	return aes.NewCipher(key)
}
