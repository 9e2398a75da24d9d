package service

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/poswitch/poswitch/hsm"
)

// errField is a request field that is missing, short or badly formed: error code 15.
var errField = errors.New("invalid request field")

// fieldError carries the payShield code a field problem answers with (15 unless more precise).
type fieldError struct {
	code string
	msg  string
}

func (e *fieldError) Error() string { return e.msg }

// fields reads a command's fields left to right. The first problem sticks: later reads return zero
// values, and the handler checks err once before acting.
type fields struct {
	b   []byte
	pos int
	err error
}

func (f *fields) fail(code, format string, args ...any) {
	if f.err == nil {
		f.err = &fieldError{code: code, msg: fmt.Sprintf(format, args...)}
	}
}

func (f *fields) remaining() int { return len(f.b) - f.pos }

// take returns the next n bytes.
func (f *fields) take(n int, name string) []byte {
	if f.err != nil {
		return nil
	}
	if n < 0 || f.remaining() < n {
		f.fail("15", "%s: %d characters needed, %d left", name, n, f.remaining())
		return nil
	}
	out := f.b[f.pos : f.pos+n]
	f.pos += n
	return out
}

// text returns the next n characters as a string.
func (f *fields) text(n int, name string) string { return string(f.take(n, name)) }

// digits returns n decimal digits.
func (f *fields) digits(n int, name string) string {
	b := f.take(n, name)
	for _, c := range b {
		if c < '0' || c > '9' {
			f.fail("15", "%s: not %d digits", name, n)
			return ""
		}
	}
	return string(b)
}

// number returns n decimal digits as an int.
func (f *fields) number(n int, name string) int {
	s := f.digits(n, name)
	v := 0
	for i := 0; i < len(s); i++ {
		v = v*10 + int(s[i]-'0')
	}
	return v
}

// hexBytes decodes n hex characters.
func (f *fields) hexBytes(n int, name string) []byte {
	b := f.take(n, name)
	if f.err != nil {
		return nil
	}
	if n%2 != 0 {
		f.fail("15", "%s: odd hex length", name)
		return nil
	}
	out := make([]byte, n/2)
	if _, err := hex.Decode(out, b); err != nil {
		f.fail("15", "%s: not hex", name)
		return nil
	}
	return out
}

// hexNumber reads n hex digits as a number (payShield length fields).
func (f *fields) hexNumber(n int, name string) int {
	b := f.take(n, name)
	v := 0
	for _, c := range b {
		d, ok := hexDigit(c)
		if !ok {
			f.fail("15", "%s: not hex", name)
			return 0
		}
		v = v<<4 | int(d)
	}
	return v
}

func hexDigit(c byte) (byte, bool) {
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

// expect consumes one literal character.
func (f *fields) expect(c byte, name string) {
	b := f.take(1, name)
	if f.err == nil && b[0] != c {
		f.fail("15", "%s: expected %q", name, c)
	}
}

// until returns the characters before the delimiter and consumes the delimiter; at most max
// characters are allowed before it.
func (f *fields) until(delim byte, max int, name string) string {
	if f.err != nil {
		return ""
	}
	for i := f.pos; i < len(f.b) && i <= f.pos+max; i++ {
		if f.b[i] == delim {
			s := string(f.b[f.pos:i])
			f.pos = i + 1
			return s
		}
	}
	f.fail("15", "%s: no %q delimiter within %d characters", name, delim, max)
	return ""
}

// maxKeyBlockChars bounds one key field: a TR-31 block with a few optional blocks.
const maxKeyBlockChars = 2048

// key reads a key field: 'S' followed by a TR-31 key block whose own length field (characters 2-5)
// says how long it is. payShield marks key-block-LMK keys with 'S' the same way.
func (f *fields) key(name string, prefixes string) hsm.KeyBlock {
	p := f.take(1, name)
	if f.err != nil {
		return ""
	}
	ok := false
	for i := 0; i < len(prefixes); i++ {
		if p[0] == prefixes[i] {
			ok = true
		}
	}
	if !ok {
		f.fail("15", "%s: key scheme %q, want one of %q", name, printable(p[0]), prefixes)
		return ""
	}
	if f.remaining() < 5 {
		f.fail("15", "%s: truncated key block", name)
		return ""
	}
	n := 0
	for _, c := range f.b[f.pos+1 : f.pos+5] {
		if c < '0' || c > '9' {
			f.fail("83", "%s: key block length is not 4 digits", name)
			return ""
		}
		n = n*10 + int(c-'0')
	}
	if n < 16 || n > maxKeyBlockChars {
		f.fail("83", "%s: key block length %d", name, n)
		return ""
	}
	return hsm.KeyBlock(f.take(n, name))
}

// done fails when characters are left over that no field accounts for.
func (f *fields) done() {
	if f.err == nil && f.remaining() != 0 {
		f.fail("15", "%d unexpected characters after the last field", f.remaining())
	}
}

func printable(c byte) string {
	if c < 0x20 || c > 0x7E {
		return "?"
	}
	return string([]byte{c})
}

// PIN block format codes as payShield numbers them.
const (
	formatISO0 = "01"
	formatISO1 = "05"
	formatISO3 = "47"
	formatISO4 = "48"
)

// pinFormat reads a 2-digit payShield PIN block format code.
func (f *fields) pinFormat(name string) hsm.PINFormat {
	s := f.digits(2, name)
	if f.err != nil {
		return 0
	}
	switch s {
	case formatISO0:
		return hsm.ISO0
	case formatISO1:
		return hsm.ISO1
	case formatISO3:
		return hsm.ISO3
	case formatISO4:
		return hsm.ISO4
	}
	f.fail("23", "%s: PIN block format %s not supported", name, s)
	return 0
}

func formatCode(p hsm.PINFormat) string {
	switch p {
	case hsm.ISO1:
		return formatISO1
	case hsm.ISO3:
		return formatISO3
	case hsm.ISO4:
		return formatISO4
	}
	return formatISO0
}

// pinBlock reads a PIN block of the size its format needs: 16 hex characters, or 32 for ISO 4.
func (f *fields) pinBlock(format hsm.PINFormat, name string) []byte {
	if format == hsm.ISO4 {
		return f.hexBytes(32, name)
	}
	return f.hexBytes(16, name)
}

// card reads the account-number field: 12 digits, or, when a format 48 (ISO 4) block is involved,
// a 2-digit length and the full PAN (ISO 4 binds the whole PAN, which 12 digits cannot give).
func (f *fields) card(fullPAN bool, name string) hsm.Card {
	if !fullPAN {
		return hsm.Card{AccountNumber: f.digits(12, name)}
	}
	n := f.number(2, name+" length")
	if f.err == nil && (n < 12 || n > 19) {
		f.fail("15", "%s: PAN length %d", name, n)
	}
	return hsm.Card{PAN: f.digits(n, name)}
}
