// Package pinverify generates and verifies PINs the way issuers check them: the IBM 3624 method
// (natural PIN and offset) and the Visa PIN verification value (PVV).
//
// Keys come as prepared cipher.Block values (TDES, 8-byte blocks). Mismatches return
// cryptoerr.ErrVerifyFailed; malformed parameters return cryptoerr.ErrInvalidInput, ErrPINLength or
// ErrPAN. No error text holds a PIN, offset or PVV.
package pinverify

import (
	"crypto/cipher"
	"crypto/subtle"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/pinblock"
)

// DecimalizationTable maps each hex digit 0–F of an enciphered value to a decimal digit.
type DecimalizationTable [16]byte

// ParseDecimalizationTable accepts 16 decimal digits, e.g. "0123456789012345".
func ParseDecimalizationTable(s string) (DecimalizationTable, error) {
	var t DecimalizationTable
	if len(s) != 16 {
		return t, fmt.Errorf("decimalisation table of %d digits: %w", len(s), cryptoerr.ErrDecimalizationTable)
	}
	for i := 0; i < 16; i++ {
		if s[i] < '0' || s[i] > '9' {
			return t, fmt.Errorf("decimalisation table has a non-digit: %w", cryptoerr.ErrDecimalizationTable)
		}
		t[i] = s[i] - '0'
	}
	return t, nil
}

// IBM3624 holds the parameters of the IBM 3624 PIN method that are fixed per card range.
type IBM3624 struct {
	Table DecimalizationTable
	// ValidationData is 1–16 hex digits, usually taken from the PAN; it is padded on the right with
	// Pad to 16 digits before encipherment.
	ValidationData string
	// Pad is the hex digit ('0'–'9', 'A'–'F') that pads ValidationData; payShield commands call the
	// padded value "user-defined data" with 'N' marking PAN digits.
	Pad byte
	// CheckLength is how many leftmost PIN digits are checked (4–12); offsets have this many digits.
	CheckLength int
}

// NaturalPIN enciphers the padded validation data under pvk and decimalises the leftmost CheckLength
// digits: the PIN a card with offset 0000 has.
func (p IBM3624) NaturalPIN(pvk cipher.Block) (pinblock.PIN, error) {
	var d [pinblock.MaxPINLength]byte
	if err := p.natural(pvk, &d); err != nil {
		return pinblock.PIN{}, err
	}
	return pinblock.PINFromValues(d[:p.CheckLength])
}

// Offset is the IBM 3624 offset of pin: (PIN digit − natural digit) mod 10 over the leftmost
// CheckLength digits, as ASCII digits.
func (p IBM3624) Offset(pvk cipher.Block, pin pinblock.PIN) (string, error) {
	var nat [pinblock.MaxPINLength]byte
	if err := p.natural(pvk, &nat); err != nil {
		return "", err
	}
	if pin.Len() < p.CheckLength {
		return "", fmt.Errorf("PIN shorter than the check length: %w", cryptoerr.ErrPINLength)
	}
	out := make([]byte, p.CheckLength)
	for i := range out {
		out[i] = '0' + (pin.Digit(i)+10-nat[i])%10
	}
	return string(out), nil
}

// PINFromOffset is the PIN a card with this offset has: natural PIN + offset digit-wise mod 10.
func (p IBM3624) PINFromOffset(pvk cipher.Block, offset string) (pinblock.PIN, error) {
	var nat [pinblock.MaxPINLength]byte
	if err := p.natural(pvk, &nat); err != nil {
		return pinblock.PIN{}, err
	}
	if err := p.checkOffset(offset); err != nil {
		return pinblock.PIN{}, err
	}
	var d [pinblock.MaxPINLength]byte
	for i := 0; i < p.CheckLength; i++ {
		d[i] = (nat[i] + offset[i] - '0') % 10
	}
	return pinblock.PINFromValues(d[:p.CheckLength])
}

// VerifyOffset checks pin against the stored offset; only the leftmost CheckLength PIN digits count.
func (p IBM3624) VerifyOffset(pvk cipher.Block, pin pinblock.PIN, offset string) error {
	var nat [pinblock.MaxPINLength]byte
	if err := p.natural(pvk, &nat); err != nil {
		return err
	}
	if err := p.checkOffset(offset); err != nil {
		return err
	}
	if pin.Len() < p.CheckLength {
		return cryptoerr.ErrVerifyFailed
	}
	diff := 0
	for i := 0; i < p.CheckLength; i++ {
		want := (nat[i] + offset[i] - '0') % 10
		diff |= int(want ^ pin.Digit(i))
	}
	if subtle.ConstantTimeEq(int32(diff), 0) != 1 {
		return cryptoerr.ErrVerifyFailed
	}
	return nil
}

func (p IBM3624) checkOffset(offset string) error {
	if len(offset) != p.CheckLength {
		return fmt.Errorf("IBM 3624 offset of %d digits, check length %d: %w", len(offset), p.CheckLength, cryptoerr.ErrInvalidInput)
	}
	for i := 0; i < len(offset); i++ {
		if offset[i] < '0' || offset[i] > '9' {
			return fmt.Errorf("IBM 3624 offset has a non-digit: %w", cryptoerr.ErrInvalidInput)
		}
	}
	return nil
}

// natural writes the decimalised digits of the enciphered validation data (values 0–9).
func (p IBM3624) natural(pvk cipher.Block, out *[pinblock.MaxPINLength]byte) error {
	if pvk == nil || pvk.BlockSize() != 8 {
		return fmt.Errorf("IBM 3624 needs a DES/TDES PVK: %w", cryptoerr.ErrKeyLength)
	}
	if p.CheckLength < pinblock.MinPINLength || p.CheckLength > pinblock.MaxPINLength {
		return fmt.Errorf("IBM 3624 check length %d: %w", p.CheckLength, cryptoerr.ErrPINLength)
	}
	if len(p.ValidationData) < 1 || len(p.ValidationData) > 16 {
		return fmt.Errorf("IBM 3624 validation data of %d digits: %w", len(p.ValidationData), cryptoerr.ErrInvalidInput)
	}
	pad, ok := hexValue(p.Pad)
	if !ok {
		return fmt.Errorf("IBM 3624 pad character: %w", cryptoerr.ErrInvalidInput)
	}
	var nib [16]byte
	for i := range nib {
		nib[i] = pad
	}
	for i := 0; i < len(p.ValidationData); i++ {
		v, ok := hexValue(p.ValidationData[i])
		if !ok {
			return fmt.Errorf("IBM 3624 validation data is not hex: %w", cryptoerr.ErrInvalidInput)
		}
		nib[i] = v
	}
	var block [8]byte
	for i := range block {
		block[i] = nib[2*i]<<4 | nib[2*i+1]
	}
	pvk.Encrypt(block[:], block[:])
	for i := 0; i < p.CheckLength; i++ {
		n := block[i/2] >> 4
		if i%2 == 1 {
			n = block[i/2] & 0xF
		}
		out[i] = p.Table[n]
	}
	return nil
}

// PVV is the 4-digit Visa PIN verification value of the leftmost 4 PIN digits: encipher the
// transformed security parameter (11 rightmost PAN digits excluding the check digit ‖ PVKI ‖ 4 PIN
// digits) under the PVK pair, then take its decimal digits left to right, then its letters A–F as 0–5.
// pvk must be a double-length TDES cipher (PVK A ‖ PVK B).
func PVV(pvk cipher.Block, acct pinblock.Account, pvki int, pin pinblock.PIN) (string, error) {
	var pvv [4]byte
	if err := pvvDigits(pvk, acct, pvki, pin, &pvv); err != nil {
		return "", err
	}
	return string(pvv[:]), nil
}

// VerifyPVV recomputes the PVV of pin and compares it with the stored one in constant time.
func VerifyPVV(pvk cipher.Block, acct pinblock.Account, pvki int, pin pinblock.PIN, pvv string) error {
	if len(pvv) != 4 {
		return fmt.Errorf("PVV of %d digits: %w", len(pvv), cryptoerr.ErrInvalidInput)
	}
	var got [4]byte
	if err := pvvDigits(pvk, acct, pvki, pin, &got); err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(got[:], []byte(pvv)) != 1 {
		return cryptoerr.ErrVerifyFailed
	}
	return nil
}

func pvvDigits(pvk cipher.Block, acct pinblock.Account, pvki int, pin pinblock.PIN, out *[4]byte) error {
	if pvk == nil || pvk.BlockSize() != 8 {
		return fmt.Errorf("PVV needs a TDES PVK: %w", cryptoerr.ErrKeyLength)
	}
	if acct.IsZero() {
		return fmt.Errorf("PVV needs the PAN: %w", cryptoerr.ErrPAN)
	}
	if pvki < 0 || pvki > 9 {
		return fmt.Errorf("PVKI %d: %w", pvki, cryptoerr.ErrInvalidInput)
	}
	if !pin.Valid() {
		return fmt.Errorf("PVV: %w", cryptoerr.ErrPINLength)
	}
	an := acct.AccountNumber()
	var tsp [16]byte
	for i := 0; i < 11; i++ {
		tsp[i] = an[1+i] - '0'
	}
	tsp[11] = byte(pvki)
	for i := 0; i < 4; i++ {
		tsp[12+i] = pin.Digit(i)
	}
	var block [8]byte
	for i := range block {
		block[i] = tsp[2*i]<<4 | tsp[2*i+1]
	}
	clear(tsp[:])
	pvk.Encrypt(block[:], block[:])
	defer clear(block[:])
	n := 0
	for pass := 0; pass < 2 && n < 4; pass++ {
		for i := 0; i < 16 && n < 4; i++ {
			v := block[i/2] >> 4
			if i%2 == 1 {
				v = block[i/2] & 0xF
			}
			if pass == 0 && v <= 9 {
				out[n] = '0' + v
				n++
			} else if pass == 1 && v > 9 {
				out[n] = '0' + v - 10
				n++
			}
		}
	}
	return nil
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
