package pinblock

import (
	"crypto/subtle"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

// PIN lengths ISO 9564 allows.
const (
	MinPINLength = 4
	MaxPINLength = 12
)

// PIN is a clear PIN of 4–12 decimal digits held in a fixed array, so that the hot path does not
// allocate and a stray %v prints no digit. The zero PIN is invalid.
type PIN struct {
	n uint8
	d [MaxPINLength]byte // digit values 0–9, not ASCII
}

// NewPIN parses 4–12 ASCII digits.
func NewPIN(digits string) (PIN, error) {
	var p PIN
	if len(digits) < MinPINLength || len(digits) > MaxPINLength {
		return p, fmt.Errorf("PIN of %d digits: %w", len(digits), cryptoerr.ErrPINLength)
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return PIN{}, fmt.Errorf("PIN has a non-digit: %w", cryptoerr.ErrInvalidInput)
		}
		p.d[i] = c - '0'
	}
	p.n = uint8(len(digits))
	return p, nil
}

// pinFromDigits builds a PIN from digit values the caller has already checked.
func pinFromDigits(d []byte) PIN {
	var p PIN
	p.n = uint8(copy(p.d[:], d))
	return p
}

// Len is the number of digits (0 for the zero PIN).
func (p PIN) Len() int { return int(p.n) }

// Valid reports whether p holds 4–12 digits.
func (p PIN) Valid() bool { return p.n >= MinPINLength && p.n <= MaxPINLength }

// Digit returns the value (0–9) of the i-th digit, counting from 0 on the left.
func (p PIN) Digit(i int) byte { return p.d[i] }

// Reveal returns the PIN digits as ASCII. Only commands that must hand a clear PIN to a trusted caller
// (lab calculator, tests) use it; never log the result.
func (p PIN) Reveal() string {
	var b [MaxPINLength]byte
	for i := 0; i < int(p.n); i++ {
		b[i] = '0' + p.d[i]
	}
	return string(b[:p.n])
}

// String hides the digits so that a PIN printed by mistake leaks only its length.
func (p PIN) String() string { return fmt.Sprintf("PIN(%d digits)", p.n) }

// GoString hides the digits from %#v too.
func (p PIN) GoString() string { return p.String() }

// Equal compares two PINs in constant time for a given length.
func (p PIN) Equal(q PIN) bool {
	return subtle.ConstantTimeCompare(p.d[:], q.d[:])&subtle.ConstantTimeByteEq(p.n, q.n) == 1
}

// Wipe zeroes the digits.
func (p *PIN) Wipe() { *p = PIN{} }

// PINFromValues builds a PIN from digit values 0–9 (not ASCII), as PIN generation produces them,
// without a detour through a string that could not be wiped.
func PINFromValues(d []byte) (PIN, error) {
	if len(d) < MinPINLength || len(d) > MaxPINLength {
		return PIN{}, fmt.Errorf("PIN of %d digits: %w", len(d), cryptoerr.ErrPINLength)
	}
	for _, v := range d {
		if v > 9 {
			return PIN{}, fmt.Errorf("PIN has a non-digit: %w", cryptoerr.ErrInvalidInput)
		}
	}
	return pinFromDigits(d), nil
}
