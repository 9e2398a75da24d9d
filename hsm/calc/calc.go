// Package calc is the clear-key "lab calculator" behind `poswitch crypto`: every HSM primitive with
// keys, PIN blocks and data given as clear hex strings and results returned as uppercase hex.
//
// It is for test and lab use only. Keys passed here are in the clear, in process memory, shell history
// and terminal scroll-back; it must never be used with live (production) keys, PINs or card data. The
// HSM proper (package hsm) keeps keys wrapped under the LMK and is what the switch uses.
//
// Errors wrap the cryptoerr sentinels and name the argument at fault ("key: …", "ksn: …"); like the
// primitives, they never echo key, PIN or PIN block values.
package calc

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/tdes"
)

// maxHexInput bounds every hex argument (MAC and ARQC data included): a calculator needs no more.
const maxHexInput = 8192

// parseHex decodes a hex argument, accepting upper or lower case and ignoring spaces.
func parseHex(name, s string) ([]byte, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if len(s) > 2*maxHexInput {
		return nil, fmt.Errorf("%s: longer than %d bytes: %w", name, maxHexInput, cryptoerr.ErrInvalidInput)
	}
	if len(s)%2 == 1 {
		return nil, fmt.Errorf("%s: odd number of hex digits: %w", name, cryptoerr.ErrInvalidInput)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: not hex: %w", name, cryptoerr.ErrInvalidInput)
	}
	return b, nil
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// tdesKey parses a 16- or 24-byte (or single-length 8-byte) TDES key.
func tdesKey(name, s string) (cipher.Block, error) {
	k, err := parseHex(name, s)
	if err != nil {
		return nil, err
	}
	c, err := tdes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// aesKey parses a 16-, 24- or 32-byte AES key.
func aesKey(name, s string) (cipher.Block, error) {
	k, err := parseHex(name, s)
	if err != nil {
		return nil, err
	}
	switch len(k) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("%s: AES key of %d bytes (want 16, 24 or 32): %w", name, len(k), cryptoerr.ErrKeyLength)
	}
	return aes.NewCipher(k)
}

// ErrVerifyFailed is returned by the Verify functions on a mismatch.
var ErrVerifyFailed = cryptoerr.ErrVerifyFailed
