// Package pinblock encodes, decodes, enciphers and translates ISO 9564-1 PIN blocks: formats 0, 1, 2
// and 3 (8-byte, TDES) and format 4 (16-byte, AES, ISO 9564-1:2017).
//
// Hot-path functions take a prepared cipher.Block (the caller caches key schedules), write into a
// caller-supplied buffer and return only sentinel errors from package cryptoerr, wrapped with the
// step that failed; no error text ever holds a PIN, PIN block or PAN digit.
package pinblock

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

// Format is an ISO 9564-1 PIN block format number (the control nibble), not a payShield code.
type Format uint8

// The ISO 9564-1 formats this package knows.
const (
	Format0 Format = 0 // PIN ‖ F fill XOR PAN field (ANSI X9.8)
	Format1 Format = 1 // PIN ‖ random fill, no PAN
	Format2 Format = 2 // PIN ‖ F fill, no PAN (ICC offline PIN only)
	Format3 Format = 3 // PIN ‖ random A–F fill XOR PAN field
	Format4 Format = 4 // AES: enciphered twice around the PAN field
)

// Sizes of PIN blocks in bytes.
const (
	TDESBlockSize = 8
	AESBlockSize  = 16
)

// ParseFormat accepts an ISO format number 0–4.
func ParseFormat(n int) (Format, error) {
	if n < 0 || n > 4 {
		return 0, fmt.Errorf("ISO 9564 format %d: %w", n, cryptoerr.ErrPINBlockFormat)
	}
	return Format(n), nil
}

// BlockSize is 8 for formats 0–3, 16 for format 4 and 0 for an unknown format.
func (f Format) BlockSize() int {
	switch f {
	case Format0, Format1, Format2, Format3:
		return TDESBlockSize
	case Format4:
		return AESBlockSize
	}
	return 0
}

// NeedsPAN reports whether the format binds the PIN to the card number.
func (f Format) NeedsPAN() bool { return f == Format0 || f == Format3 || f == Format4 }

func (f Format) String() string { return fmt.Sprintf("ISO-%d", uint8(f)) }

// Encode writes the clear PIN block of pin in format f into dst, which must be exactly f.BlockSize()
// long. For formats 0–3 that is the block that gets enciphered. For format 4 it is the plain-text PIN
// field only (the PAN field enters during encipherment, see Encrypt). rnd supplies the random fill of
// formats 1, 3 and 4; nil means crypto/rand.
func Encode(dst []byte, f Format, pin PIN, acct Account, rnd io.Reader) error {
	if err := checkArgs(dst, f, pin, acct); err != nil {
		return err
	}
	var nib [32]byte
	nib[0] = byte(f)
	nib[1] = pin.n
	copy(nib[2:], pin.d[:pin.n])
	fillFrom := 2 + int(pin.n)
	switch f {
	case Format0, Format2:
		for i := fillFrom; i < 16; i++ {
			nib[i] = 0xF
		}
	case Format1:
		var r [16]byte
		if err := readRandom(rnd, r[:]); err != nil {
			return err
		}
		for i := fillFrom; i < 16; i++ {
			nib[i] = r[i] & 0xF
		}
	case Format3:
		if err := randomHexLetters(rnd, nib[fillFrom:16]); err != nil {
			return err
		}
	case Format4:
		for i := fillFrom; i < 16; i++ {
			nib[i] = 0xA
		}
		var r [8]byte
		if err := readRandom(rnd, r[:]); err != nil {
			return err
		}
		for i, b := range r {
			nib[16+2*i] = b >> 4
			nib[17+2*i] = b & 0xF
		}
	}
	n := f.BlockSize()
	for i := 0; i < n; i++ {
		dst[i] = nib[2*i]<<4 | nib[2*i+1]
	}
	if f == Format0 || f == Format3 {
		pf := acct.panField()
		for i := range pf {
			dst[i] ^= pf[i]
		}
	}
	return nil
}

// Decode recovers the PIN from a clear PIN block of format f (for format 4, the plain-text PIN field).
// It checks the control nibble, the PIN length (4–12), that PIN digits are decimal and that the fill
// is what the format prescribes: F for formats 0 and 2, A–F for format 3, A for format 4.
func Decode(f Format, block []byte, acct Account) (PIN, error) {
	n := f.BlockSize()
	if n == 0 {
		return PIN{}, fmt.Errorf("decoding %s PIN block: %w", f, cryptoerr.ErrPINBlockFormat)
	}
	if len(block) != n {
		return PIN{}, fmt.Errorf("decoding %s PIN block of %d bytes: %w", f, len(block), cryptoerr.ErrInvalidInput)
	}
	if f.NeedsPAN() && f != Format4 && acct.IsZero() {
		return PIN{}, fmt.Errorf("decoding %s PIN block without a PAN: %w", f, cryptoerr.ErrPAN)
	}
	var b [8]byte
	copy(b[:], block[:8])
	if f == Format0 || f == Format3 {
		pf := acct.panField()
		for i := range b {
			b[i] ^= pf[i]
		}
	}
	var nib [16]byte
	for i := 0; i < 8; i++ {
		nib[2*i] = b[i] >> 4
		nib[2*i+1] = b[i] & 0xF
	}
	defer clear(nib[:])
	if nib[0] != byte(f) {
		return PIN{}, fmt.Errorf("decoding %s PIN block: control field: %w", f, cryptoerr.ErrPINBlock)
	}
	pinLen := int(nib[1])
	if pinLen < MinPINLength || pinLen > MaxPINLength {
		return PIN{}, fmt.Errorf("decoding %s PIN block: %w", f, cryptoerr.ErrPINLength)
	}
	for i := 2; i < 2+pinLen; i++ {
		if nib[i] > 9 {
			return PIN{}, fmt.Errorf("decoding %s PIN block: PIN digit: %w", f, cryptoerr.ErrPINBlock)
		}
	}
	for i := 2 + pinLen; i < 16; i++ {
		ok := true
		switch f {
		case Format0, Format2:
			ok = nib[i] == 0xF
		case Format3:
			ok = nib[i] >= 0xA
		case Format4:
			ok = nib[i] == 0xA
		}
		if !ok {
			return PIN{}, fmt.Errorf("decoding %s PIN block: fill: %w", f, cryptoerr.ErrPINBlock)
		}
	}
	return pinFromDigits(nib[2 : 2+pinLen]), nil
}

// Encrypt encodes pin in format f and enciphers it under key into dst (len f.BlockSize()). Formats 0–3
// need a TDES key (8-byte block), format 4 an AES key: E(E(PIN field) XOR PAN field).
func Encrypt(dst []byte, key cipher.Block, f Format, pin PIN, acct Account, rnd io.Reader) error {
	if err := checkKey(key, f); err != nil {
		return err
	}
	if err := Encode(dst, f, pin, acct, rnd); err != nil {
		return err
	}
	key.Encrypt(dst, dst)
	if f == Format4 {
		pf := acct.panField4()
		for i := range pf {
			dst[i] ^= pf[i]
		}
		key.Encrypt(dst, dst)
	}
	return nil
}

// Decrypt deciphers block under key and decodes it as format f.
func Decrypt(key cipher.Block, f Format, block []byte, acct Account) (PIN, error) {
	if err := checkKey(key, f); err != nil {
		return PIN{}, err
	}
	n := f.BlockSize()
	if len(block) != n {
		return PIN{}, fmt.Errorf("deciphering %s PIN block of %d bytes: %w", f, len(block), cryptoerr.ErrInvalidInput)
	}
	if f == Format4 && !acct.IsFullPAN() {
		return PIN{}, fmt.Errorf("deciphering %s PIN block needs the full PAN: %w", f, cryptoerr.ErrPAN)
	}
	var clearBlock [AESBlockSize]byte
	defer clear(clearBlock[:])
	key.Decrypt(clearBlock[:n], block)
	if f == Format4 {
		pf := acct.panField4()
		for i := range pf {
			clearBlock[i] ^= pf[i]
		}
		key.Decrypt(clearBlock[:n], clearBlock[:n])
	}
	return Decode(f, clearBlock[:n], acct)
}

// Translate deciphers block (format fromFormat under from) and re-enciphers the PIN in toFormat under
// to, writing toFormat.BlockSize() bytes into dst. The clear PIN never leaves this call. It is the
// TPK→ZPK, ZPK→ZPK and (with a derived key as from) DUKPT→ZPK translation.
func Translate(dst []byte, from cipher.Block, fromFormat Format, block []byte, to cipher.Block, toFormat Format, acct Account, rnd io.Reader) error {
	pin, err := Decrypt(from, fromFormat, block, acct)
	if err != nil {
		return err
	}
	defer pin.Wipe()
	return Encrypt(dst, to, toFormat, pin, acct, rnd)
}

func checkKey(key cipher.Block, f Format) error {
	n := f.BlockSize()
	if n == 0 {
		return fmt.Errorf("%s: %w", f, cryptoerr.ErrPINBlockFormat)
	}
	if key == nil {
		return fmt.Errorf("%s PIN block: no key: %w", f, cryptoerr.ErrKeyLength)
	}
	if key.BlockSize() != n {
		return fmt.Errorf("%s PIN block needs a cipher with %d-byte blocks: %w", f, n, cryptoerr.ErrPINBlockFormat)
	}
	return nil
}

func checkArgs(dst []byte, f Format, pin PIN, acct Account) error {
	n := f.BlockSize()
	if n == 0 {
		return fmt.Errorf("encoding %s PIN block: %w", f, cryptoerr.ErrPINBlockFormat)
	}
	if len(dst) != n {
		return fmt.Errorf("encoding %s PIN block into %d bytes: %w", f, len(dst), cryptoerr.ErrInvalidInput)
	}
	if !pin.Valid() {
		return fmt.Errorf("encoding %s PIN block: %w", f, cryptoerr.ErrPINLength)
	}
	switch {
	case f == Format4 && !acct.IsFullPAN():
		return fmt.Errorf("encoding %s PIN block needs the full PAN: %w", f, cryptoerr.ErrPAN)
	case f.NeedsPAN() && acct.IsZero():
		return fmt.Errorf("encoding %s PIN block without a PAN: %w", f, cryptoerr.ErrPAN)
	}
	return nil
}

func readRandom(rnd io.Reader, b []byte) error {
	if rnd == nil {
		rand.Read(b) // never fails (Go ≥ 1.24 crashes the program rather than return short)
		return nil
	}
	if _, err := io.ReadFull(rnd, b); err != nil {
		return fmt.Errorf("reading random PIN block fill: %w", err)
	}
	return nil
}

// randomHexLetters fills nibs with uniformly random values A–F (rejection sampling, no modulo bias).
func randomHexLetters(rnd io.Reader, nibs []byte) error {
	var r [16]byte
	filled := 0
	for attempt := 0; filled < len(nibs); attempt++ {
		if attempt == 64 {
			return fmt.Errorf("random source gives no usable fill: %w", cryptoerr.ErrInvalidInput)
		}
		if err := readRandom(rnd, r[:]); err != nil {
			return err
		}
		for _, b := range r {
			if b >= 252 || filled == len(nibs) {
				continue
			}
			nibs[filled] = 0xA + b%6
			filled++
		}
	}
	return nil
}
