package calc

import (
	"fmt"
	"strings"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/mac"
)

// MAC algorithms the calculator accepts.
const (
	MACX919 = "x919" // ISO 9797-1 algorithm 3, retail MAC, 16-byte TDES key
	MACX99  = "x99"  // ISO 9797-1 algorithm 1 with single DES (ANSI X9.9)
	MACAlg1 = "alg1" // ISO 9797-1 algorithm 1 with a TDES key (8, 16 or 24 bytes)
	MACCMAC = "cmac" // AES-CMAC (RFC 4493), 16-, 24- or 32-byte key
)

// MAC computes a MAC over data (hex) and returns its leftmost length bytes (0 = full block).
// padding is the ISO 9797-1 method 0–3 (0 = none); CMAC ignores it.
func MAC(alg, key, data string, padding, length int) (string, error) {
	m, err := computeMAC(alg, key, data, padding)
	if err != nil {
		return "", err
	}
	if length == 0 {
		length = len(m)
	}
	if length < mac.MinMACLength || length > len(m) {
		return "", fmt.Errorf("length: %d bytes (want %d–%d): %w", length, mac.MinMACLength, len(m), cryptoerr.ErrInvalidInput)
	}
	return upperHex(m[:length]), nil
}

// VerifyMAC recomputes the MAC and compares it with given (hex, 4 bytes or more, leftmost bytes).
func VerifyMAC(alg, key, data string, padding int, given string) error {
	m, err := computeMAC(alg, key, data, padding)
	if err != nil {
		return err
	}
	g, err := parseHex("mac", given)
	if err != nil {
		return err
	}
	return mac.Verify(m, g)
}

func computeMAC(alg, key, data string, padding int) ([]byte, error) {
	d, err := parseHex("data", data)
	if err != nil {
		return nil, err
	}
	p, err := mac.ParsePadding(padding)
	if err != nil {
		return nil, fmt.Errorf("padding: %w", err)
	}
	switch strings.ToLower(alg) {
	case MACX919:
		raw, err := parseHex("key", key)
		if err != nil {
			return nil, err
		}
		l, r, err := mac.RetailKeys(raw)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		return mac.Alg3(l, r, d, p)
	case MACX99, MACAlg1:
		raw, err := parseHex("key", key)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(alg, MACX99) && len(raw) != 8 {
			return nil, fmt.Errorf("key: X9.9 needs an 8-byte DES key, got %d bytes: %w", len(raw), cryptoerr.ErrKeyLength)
		}
		k, err := tdesKey("key", key)
		if err != nil {
			return nil, err
		}
		return mac.Alg1(k, d, p)
	case MACCMAC:
		k, err := aesKey("key", key)
		if err != nil {
			return nil, err
		}
		return mac.CMAC(k, d)
	}
	return nil, fmt.Errorf("alg %q (want x919, x99, alg1 or cmac): %w", alg, cryptoerr.ErrInvalidInput)
}
