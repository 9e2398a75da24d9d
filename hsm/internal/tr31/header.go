// Package tr31 wraps and unwraps keys as ANSI X9.143 / ASC TR-31 key blocks, version D (AES key
// block protection key, CMAC key derivation, CBC encryption with the MAC as IV).
//
// Errors never carry key material: only header fields and lengths.
package tr31

import (
	"errors"
	"fmt"
	"strconv"
)

// Bounds from the standard: the length field is four decimal digits and the optional block count
// two.
const (
	headerLength      = 16
	maxKeyBlockLength = 9992
	maxOptionalBlocks = 99
)

// ErrMalformed is wrapped by every parsing error so callers can map it to a "bad input" answer.
var ErrMalformed = errors.New("malformed key block")

// ErrAuthentication means the key block's MAC does not verify under the protection key: it was
// altered, or it was made under another key.
var ErrAuthentication = errors.New("key block authentication failed")

// Header is the clear part of a key block: what the key is and what it may do.
type Header struct {
	Version       byte   // 'D' is the only version this package wraps or unwraps
	Usage         string // two characters: "P0", "B0", "K0", …
	Algorithm     byte   // 'A' AES, 'T' TDES, 'D' DES, 'H' HMAC, 'R' RSA, 'E' ECC
	ModeOfUse     byte   // 'B' both, 'C' MAC both, 'D' decrypt, 'E' encrypt, 'G' generate, 'N', 'V' verify, 'X' derive …
	KeyVersion    string // two characters, "00" when unused
	Exportability byte   // 'E' exportable under a KEK, 'N' not exportable, 'S' sensitive
	Blocks        []OptionalBlock
}

// OptionalBlock is one header extension, e.g. {"KS", "<initial KSN>"}. Pad blocks ("PB") are added
// and removed by this package.
type OptionalBlock struct {
	ID   string
	Data string
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func isAlnum(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

func isPrintable(c byte) bool { return c >= 0x20 && c <= 0x7E }

// Validate checks each field against the characters the standard allows.
func (h Header) Validate() error {
	if h.Version != 'D' {
		return malformed("version %q not supported (only D)", printableByte(h.Version))
	}
	if len(h.Usage) != 2 || !isAlnum(h.Usage[0]) || !isAlnum(h.Usage[1]) {
		return malformed("key usage %q invalid", printable(h.Usage))
	}
	if !isAlnum(h.Algorithm) {
		return malformed("algorithm %q invalid", printableByte(h.Algorithm))
	}
	switch h.ModeOfUse {
	case 'B', 'C', 'D', 'E', 'G', 'N', 'S', 'T', 'V', 'X', 'Y':
	default:
		return malformed("mode of use %q invalid", printableByte(h.ModeOfUse))
	}
	if len(h.KeyVersion) != 2 || !isAlnum(h.KeyVersion[0]) || !isAlnum(h.KeyVersion[1]) {
		return malformed("key version %q invalid", printable(h.KeyVersion))
	}
	switch h.Exportability {
	case 'E', 'N', 'S':
	default:
		return malformed("exportability %q invalid", printableByte(h.Exportability))
	}
	if len(h.Blocks) > maxOptionalBlocks-1 { // one slot is kept for the pad block
		return malformed("%d optional blocks, at most %d", len(h.Blocks), maxOptionalBlocks-1)
	}
	for _, b := range h.Blocks {
		if len(b.ID) != 2 || !isAlnum(b.ID[0]) || !isAlnum(b.ID[1]) {
			return malformed("optional block id %q invalid", printable(b.ID))
		}
		if b.ID == "PB" {
			return malformed("pad block is added by the wrapper")
		}
		for i := 0; i < len(b.Data); i++ {
			if !isPrintable(b.Data[i]) {
				return malformed("optional block %s data is not printable ASCII", b.ID)
			}
		}
	}
	return nil
}

// Block returns the data of the optional block with the given id.
func (h Header) Block(id string) (string, bool) {
	for _, b := range h.Blocks {
		if b.ID == id {
			return b.Data, true
		}
	}
	return "", false
}

// encode renders the header with the given total key block length, adding a pad block so that the
// header is a whole number of AES blocks (version D requires it).
func (h Header) encode(totalLength int) []byte {
	buf := make([]byte, 0, 64)
	buf = append(buf, h.Version)
	buf = append(buf, fmt.Sprintf("%04d", totalLength)...)
	buf = append(buf, h.Usage...)
	buf = append(buf, h.Algorithm, h.ModeOfUse)
	buf = append(buf, h.KeyVersion...)
	buf = append(buf, h.Exportability)
	n := len(h.Blocks)
	opt := encodeBlocks(h.Blocks)
	pad := padBlockLength(headerLength + len(opt))
	if pad > 0 {
		n++
	}
	buf = append(buf, fmt.Sprintf("%02d", n)...)
	buf = append(buf, "00"...)
	buf = append(buf, opt...)
	if pad > 0 {
		buf = append(buf, "PB"...)
		buf = append(buf, fmt.Sprintf("%02X", pad)...)
		for i := 4; i < pad; i++ {
			buf = append(buf, '0')
		}
	}
	return buf
}

// headerSize is the encoded header length, pad block included.
func (h Header) headerSize() int {
	opt := len(encodeBlocks(h.Blocks))
	return headerLength + opt + padBlockLength(headerLength+opt)
}

// padBlockLength is the length of the PB block needed after n header bytes; a pad block is at
// least 4 characters, so the remainder is taken up to the next multiple of 16 that leaves room.
func padBlockLength(n int) int {
	if n == headerLength || n%16 == 0 {
		return 0
	}
	pad := 16 - n%16
	if pad < 4 {
		pad += 16
	}
	return pad
}

func encodeBlocks(blocks []OptionalBlock) []byte {
	var buf []byte
	for _, b := range blocks {
		buf = append(buf, b.ID...)
		l := 4 + len(b.Data)
		if l <= 0xFF {
			buf = append(buf, fmt.Sprintf("%02X", l)...)
		} else {
			// Extended length: "00", the length of the length in bytes (02: four hex
			// characters), then the length, which counts the 10 characters of id and length fields.
			buf = append(buf, fmt.Sprintf("0002%04X", 10+len(b.Data))...)
		}
		buf = append(buf, b.Data...)
	}
	return buf
}

// ParseHeader reads the header at the start of a key block and returns it with its encoded length
// (pad block included) and the total key block length the header states. The pad block is dropped.
func ParseHeader(kb string) (Header, int, int, error) {
	var h Header
	if len(kb) < headerLength {
		return h, 0, 0, malformed("%d characters, a header needs %d", len(kb), headerLength)
	}
	h.Version = kb[0]
	if h.Version != 'D' {
		return h, 0, 0, malformed("version %q not supported (only D)", printableByte(h.Version))
	}
	total, err := decimal(kb[1:5])
	if err != nil {
		return h, 0, 0, malformed("length field %q is not 4 digits", printable(kb[1:5]))
	}
	h.Usage = kb[5:7]
	h.Algorithm = kb[7]
	h.ModeOfUse = kb[8]
	h.KeyVersion = kb[9:11]
	h.Exportability = kb[11]
	count, err := decimal(kb[12:14])
	if err != nil {
		return h, 0, 0, malformed("optional block count %q is not 2 digits", printable(kb[12:14]))
	}
	if kb[14:16] != "00" {
		return h, 0, 0, malformed("reserved field %q is not 00", printable(kb[14:16]))
	}
	pos := headerLength
	for i := 0; i < count; i++ {
		if len(kb) < pos+4 {
			return h, 0, 0, malformed("optional block %d truncated", i+1)
		}
		id := kb[pos : pos+2]
		l, err := hexNumber(kb[pos+2 : pos+4])
		if err != nil {
			return h, 0, 0, malformed("optional block %q length is not hex", printable(id))
		}
		dataStart := pos + 4
		if l == 0 {
			// Extended length.
			if len(kb) < pos+6 {
				return h, 0, 0, malformed("optional block %q truncated", printable(id))
			}
			// Extended length: the length of the length in bytes, then the length in hex.
			ll, err := hexNumber(kb[pos+4 : pos+6])
			if err != nil || ll == 0 || ll > 2 {
				return h, 0, 0, malformed("optional block %q length of length invalid", printable(id))
			}
			if len(kb) < pos+6+2*ll {
				return h, 0, 0, malformed("optional block %q truncated", printable(id))
			}
			l, err = hexNumber(kb[pos+6 : pos+6+2*ll])
			if err != nil {
				return h, 0, 0, malformed("optional block %q length is not hex", printable(id))
			}
			dataStart = pos + 6 + 2*ll
		}
		if l < dataStart-pos || pos+l > len(kb) || pos+l > maxKeyBlockLength {
			return h, 0, 0, malformed("optional block %q length %d invalid", printable(id), l)
		}
		data := kb[dataStart : pos+l]
		for j := 0; j < len(data); j++ {
			if !isPrintable(data[j]) {
				return h, 0, 0, malformed("optional block %q data is not printable ASCII", printable(id))
			}
		}
		if id != "PB" {
			h.Blocks = append(h.Blocks, OptionalBlock{ID: id, Data: data})
		}
		pos += l
	}
	if err := h.Validate(); err != nil {
		return h, 0, 0, err
	}
	return h, pos, total, nil
}

func decimal(s string) (int, error) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

func hexNumber(s string) (int, error) {
	n := 0
	for i := 0; i < len(s); i++ {
		v, ok := hexValue(s[i])
		if !ok {
			return 0, strconv.ErrSyntax
		}
		n = n<<4 | int(v)
	}
	return n, nil
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

// printable keeps error strings readable and free of control bytes from hostile input.
func printable(s string) string {
	if len(s) > 16 {
		s = s[:16]
	}
	b := []byte(s)
	for i, c := range b {
		if !isPrintable(c) {
			b[i] = '?'
		}
	}
	return string(b)
}

func printableByte(c byte) string { return printable(string([]byte{c})) }
