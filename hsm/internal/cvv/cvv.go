// Package cvv generates and verifies card verification values: CVV/CVC on the magnetic stripe, CVV2
// printed on the card (service code 000) and iCVV on the chip's track-2 equivalent (service code 999).
//
// The algorithm: PAN ‖ expiry (YYMM) ‖ service code, right-padded with zeros to 32 nibbles, split in
// blocks A and B; DES_KA(A) XOR B, then TDES_KA‖KB; decimalise (digits, then letters A–F as 0–5); the
// first three digits are the CVV.
package cvv

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/tdes"
)

// Service codes that turn the CVV algorithm into CVV2 and iCVV.
const (
	ServiceCodeCVV2 = "000"
	ServiceCodeICVV = "999"
	// Length of a CVV in digits.
	Length = 3
)

// Key is a prepared CVK pair (KA ‖ KB, 16 bytes).
type Key struct {
	a  cipher.Block // single DES KA
	ab cipher.Block // TDES KA‖KB
}

// NewKey prepares a 16-byte CVK pair.
func NewKey(cvk []byte) (*Key, error) {
	if len(cvk) != 16 {
		return nil, fmt.Errorf("CVK of %d bytes: %w", len(cvk), cryptoerr.ErrKeyLength)
	}
	a, err := des.NewCipher(cvk[:8])
	if err != nil {
		return nil, err
	}
	ab, err := tdes.NewCipher(cvk)
	if err != nil {
		return nil, err
	}
	return &Key{a: a, ab: ab}, nil
}

// Generate returns the 3-digit CVV of pan (12–19 digits), expiry YYMM and a 3-digit service code.
func (k *Key) Generate(pan, expiryYYMM, serviceCode string) (string, error) {
	var out [Length]byte
	if err := k.compute(pan, expiryYYMM, serviceCode, &out); err != nil {
		return "", err
	}
	return string(out[:]), nil
}

// Verify recomputes the CVV and compares it with cvv in constant time.
func (k *Key) Verify(pan, expiryYYMM, serviceCode, cvv string) error {
	if len(cvv) != Length {
		return fmt.Errorf("CVV of %d digits: %w", len(cvv), cryptoerr.ErrInvalidInput)
	}
	var got [Length]byte
	if err := k.compute(pan, expiryYYMM, serviceCode, &got); err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(got[:], []byte(cvv)) != 1 {
		return cryptoerr.ErrVerifyFailed
	}
	return nil
}

func (k *Key) compute(pan, expiry, serviceCode string, out *[Length]byte) error {
	if k == nil || k.a == nil {
		return fmt.Errorf("CVV: no key: %w", cryptoerr.ErrKeyLength)
	}
	if len(pan) < 12 || len(pan) > 19 || !digits(pan) {
		return fmt.Errorf("CVV: PAN of %d characters: %w", len(pan), cryptoerr.ErrPAN)
	}
	// The month is not range-checked: issuers compute CVV2 over MMYY as printed, and the public test
	// vectors use dates such as 3333.
	if len(expiry) != 4 || !digits(expiry) {
		return fmt.Errorf("CVV: expiry must be YYMM: %w", cryptoerr.ErrInvalidInput)
	}
	if len(serviceCode) != 3 || !digits(serviceCode) {
		return fmt.Errorf("CVV: service code must be 3 digits: %w", cryptoerr.ErrInvalidInput)
	}
	var nib [32]byte
	n := copy(nib[:], pan)
	n += copy(nib[n:], expiry)
	copy(nib[n:], serviceCode)
	var a, b [8]byte
	for i := 0; i < 8; i++ {
		a[i] = val(nib[2*i])<<4 | val(nib[2*i+1])
		b[i] = val(nib[16+2*i])<<4 | val(nib[17+2*i])
	}
	k.a.Encrypt(a[:], a[:])
	subtle.XORBytes(a[:], a[:], b[:])
	k.ab.Encrypt(a[:], a[:])
	got := 0
	for pass := 0; pass < 2 && got < Length; pass++ {
		for i := 0; i < 16 && got < Length; i++ {
			v := a[i/2] >> 4
			if i%2 == 1 {
				v = a[i/2] & 0xF
			}
			if pass == 0 && v <= 9 {
				out[got] = '0' + v
				got++
			} else if pass == 1 && v > 9 {
				out[got] = '0' + v - 10
				got++
			}
		}
	}
	return nil
}

// val maps an ASCII digit to its value and the zero padding byte to 0.
func val(c byte) byte {
	if c == 0 {
		return 0
	}
	return c - '0'
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
