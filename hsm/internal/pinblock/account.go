package pinblock

import (
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

// PAN lengths accepted. ISO/IEC 7812 allows 8–19 digits; PIN blocks bind to 12 digits before the
// check digit, so shorter card numbers are refused rather than silently zero-padded.
const (
	MinPANLength     = 12
	MaxPANLength     = 19
	AccountNumberLen = 12
)

// Account is the card number a PIN block is bound to, either a full PAN or the 12-digit account-number
// field of payShield commands (the 12 rightmost PAN digits excluding the check digit). Format 4 needs
// the full PAN. The zero Account means "no PAN", which formats 1 and 2 accept.
type Account struct {
	n           uint8
	accountOnly bool
	d           [MaxPANLength]byte // ASCII digits
}

// ParsePAN parses a full PAN of 12–19 digits.
func ParsePAN(pan string) (Account, error) {
	var a Account
	if len(pan) < MinPANLength || len(pan) > MaxPANLength {
		return a, fmt.Errorf("PAN of %d digits: %w", len(pan), cryptoerr.ErrPAN)
	}
	if !allDigits(pan) {
		return a, fmt.Errorf("PAN has a non-digit: %w", cryptoerr.ErrPAN)
	}
	a.n = uint8(copy(a.d[:], pan))
	return a, nil
}

// ParseAccountNumber parses the 12-digit account-number field (rightmost 12 PAN digits excluding the
// check digit). Formats 0 and 3, PVV and IBM 3624 work with it; format 4 does not.
func ParseAccountNumber(acct string) (Account, error) {
	var a Account
	if len(acct) != AccountNumberLen || !allDigits(acct) {
		return a, fmt.Errorf("account number must be 12 digits: %w", cryptoerr.ErrPAN)
	}
	a.n = uint8(copy(a.d[:], acct))
	a.accountOnly = true
	return a, nil
}

// IsZero reports whether no PAN was given.
func (a Account) IsZero() bool { return a.n == 0 }

// IsFullPAN reports whether a holds a full PAN (not just the 12-digit account number).
func (a Account) IsFullPAN() bool { return a.n > 0 && !a.accountOnly }

// AccountNumber returns the 12 rightmost digits excluding the check digit, as ASCII (all zero
// bytes for the zero Account).
func (a Account) AccountNumber() [AccountNumberLen]byte {
	var out [AccountNumberLen]byte
	if a.n == 0 {
		return out
	}
	if a.accountOnly {
		copy(out[:], a.d[:AccountNumberLen])
		return out
	}
	// A PAN of exactly 12 digits has only 11 before its check digit: right-justify them over zeros.
	body := a.d[:a.n-1]
	if len(body) > AccountNumberLen {
		body = body[len(body)-AccountNumberLen:]
	}
	for i := range out {
		out[i] = '0'
	}
	copy(out[AccountNumberLen-len(body):], body)
	return out
}

// PAN returns the full PAN digits; empty when a holds only an account number.
func (a Account) PAN() string {
	if a.accountOnly {
		return ""
	}
	return string(a.d[:a.n])
}

// String masks all but the first 6 and last 4 digits of a PAN, as logs must.
func (a Account) String() string {
	if a.n == 0 {
		return "Account()"
	}
	if a.accountOnly {
		return "Account(************)"
	}
	masked := make([]byte, a.n)
	for i := range masked {
		if i < 6 || i >= int(a.n)-4 {
			masked[i] = a.d[i]
		} else {
			masked[i] = '*'
		}
	}
	return "Account(" + string(masked) + ")"
}

// GoString masks the same way.
func (a Account) GoString() string { return a.String() }

// panField is the format 0/3 PAN block: 0000 followed by the 12-digit account number, packed.
func (a Account) panField() [8]byte {
	var f [8]byte
	acct := a.AccountNumber()
	for i := 0; i < 6; i++ {
		f[2+i] = (acct[2*i]-'0')<<4 | (acct[2*i+1] - '0')
	}
	return f
}

// panField4 is the ISO 9564-1:2017 format 4 plain-text PAN field: M (PAN length − 12, 0 if shorter),
// the PAN (right-justified over zeros when shorter than 12 digits), then zeros to 32 nibbles.
func (a Account) panField4() [16]byte {
	var f [16]byte
	var nib [32]byte
	if a.n > 12 {
		nib[0] = a.n - 12
	}
	// A PAN shorter than 12 digits is right-justified over zeros (ISO 9564-1:2017 9.4.2.2).
	start := 1
	if a.n < 12 {
		start = 1 + 12 - int(a.n)
	}
	for i := 0; i < int(a.n); i++ {
		nib[start+i] = a.d[i] - '0'
	}
	for i := 0; i < 16; i++ {
		f[i] = nib[2*i]<<4 | nib[2*i+1]
	}
	return f
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
