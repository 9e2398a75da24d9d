package cards

import (
	"errors"
	"fmt"
)

// BER-TLV (ISO/IEC 8825-1 as EMV Book 3 Annex B profiles it) for field 55: the card and the
// terminal write the ICC's data objects, the issuer reads them and answers with its own. Small on
// purpose: tags of up to 3 bytes, definite lengths of up to 2 length bytes (65,535), primitive values
// kept whole (a constructed object's value is its encoded children, DecodeTLV again to read them).
// No well-kept BER-TLV module is reachable on the module proxy from here (github.com/moov-io/bertlv
// is refused), and the subset EMV needs is this page.

// TLV is one data object: its tag as the big-endian number of its tag bytes (0x9F26, 0x5F2A, 0x95)
// and its value.
type TLV struct {
	Tag   uint32
	Value []byte
}

// Bounds of what DecodeTLV accepts and EncodeTLV writes.
const (
	maxTagBytes    = 3
	maxTLVValueLen = 0xFFFF // two length bytes (0x82 LL LL)
	maxTLVObjects  = 128    // field 55 is at most 255 bytes: no more than 127 one-byte-tag objects fit
)

// ErrTLV is wrapped by every encoding and decoding error.
var ErrTLV = errors.New("malformed BER-TLV")

// Constructed tells whether the tag says its value holds further data objects (bit 6 of the first
// tag byte).
func (o TLV) Constructed() bool { return firstTagByte(o.Tag)&0x20 != 0 }

func firstTagByte(tag uint32) byte {
	switch {
	case tag > 0xFFFF:
		return byte(tag >> 16)
	case tag > 0xFF:
		return byte(tag >> 8)
	default:
		return byte(tag)
	}
}

// tagBytes checks that tag is a well-formed BER tag and returns its bytes: a first byte whose low
// five bits are all set announces subsequent bytes, each with bit 8 set except the last.
func tagBytes(tag uint32) ([]byte, error) {
	var b []byte
	switch {
	case tag == 0 || tag > 0xFFFFFF:
		return nil, fmt.Errorf("tag %X: %w", tag, ErrTLV)
	case tag > 0xFFFF:
		b = []byte{byte(tag >> 16), byte(tag >> 8), byte(tag)}
	case tag > 0xFF:
		b = []byte{byte(tag >> 8), byte(tag)}
	default:
		b = []byte{byte(tag)}
	}
	multi := b[0]&0x1F == 0x1F
	if !multi && len(b) > 1 || multi && len(b) == 1 {
		return nil, fmt.Errorf("tag %X: first byte does not announce %d byte(s): %w", tag, len(b), ErrTLV)
	}
	for i := 1; i < len(b); i++ {
		last := i == len(b)-1
		if (b[i]&0x80 != 0) == last {
			return nil, fmt.Errorf("tag %X: byte %d has the wrong continuation bit: %w", tag, i+1, ErrTLV)
		}
	}
	return b, nil
}

// EncodeTLV writes the objects in order, lengths in the shortest definite form.
func EncodeTLV(objs ...TLV) ([]byte, error) {
	var out []byte
	for _, o := range objs {
		tb, err := tagBytes(o.Tag)
		if err != nil {
			return nil, err
		}
		n := len(o.Value)
		out = append(out, tb...)
		switch {
		case n < 0x80:
			out = append(out, byte(n))
		case n <= 0xFF:
			out = append(out, 0x81, byte(n))
		case n <= maxTLVValueLen:
			out = append(out, 0x82, byte(n>>8), byte(n))
		default:
			return nil, fmt.Errorf("tag %X: value of %d bytes exceeds %d: %w", o.Tag, n, maxTLVValueLen, ErrTLV)
		}
		out = append(out, o.Value...)
	}
	return out, nil
}

// DecodeTLV reads the data objects of b at one level. Padding bytes 00 between objects (EMV Book 3
// B.1) are skipped. Values are copies, never aliases of b.
func DecodeTLV(b []byte) ([]TLV, error) {
	var objs []TLV
	for i := 0; i < len(b); {
		if b[i] == 0x00 {
			i++
			continue
		}
		if len(objs) == maxTLVObjects {
			return nil, fmt.Errorf("more than %d data objects: %w", maxTLVObjects, ErrTLV)
		}
		start := i
		tag := uint32(b[i])
		i++
		if tag&0x1F == 0x1F {
			for {
				if i >= len(b) {
					return nil, fmt.Errorf("tag at offset %d truncated: %w", start, ErrTLV)
				}
				if i-start == maxTagBytes {
					return nil, fmt.Errorf("tag at offset %d longer than %d bytes: %w", start, maxTagBytes, ErrTLV)
				}
				tag = tag<<8 | uint32(b[i])
				i++
				if b[i-1]&0x80 == 0 {
					break
				}
			}
		}
		if i >= len(b) {
			return nil, fmt.Errorf("tag %X: length missing: %w", tag, ErrTLV)
		}
		n := int(b[i])
		i++
		if n&0x80 != 0 {
			k := n & 0x7F
			if k == 0 || k > 2 {
				return nil, fmt.Errorf("tag %X: length of %d bytes (want 1 or 2; no indefinite form): %w", tag, k, ErrTLV)
			}
			if i+k > len(b) {
				return nil, fmt.Errorf("tag %X: length truncated: %w", tag, ErrTLV)
			}
			n = 0
			for _, c := range b[i : i+k] {
				n = n<<8 | int(c)
			}
			i += k
		}
		if n > len(b)-i {
			return nil, fmt.Errorf("tag %X: value of %d bytes, %d left: %w", tag, n, len(b)-i, ErrTLV)
		}
		objs = append(objs, TLV{Tag: tag, Value: append([]byte(nil), b[i:i+n]...)})
		i += n
	}
	return objs, nil
}

// FindTLV returns the value of the first object with tag.
func FindTLV(objs []TLV, tag uint32) ([]byte, bool) {
	for _, o := range objs {
		if o.Tag == tag {
			return o.Value, true
		}
	}
	return nil, false
}
