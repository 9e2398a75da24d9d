package specs

import (
	"fmt"

	"github.com/moov-io/iso8583/encoding"
)

// The encoders below fill the few gaps between moov's encoders and the field classes of ISO 8583:1987
// as jPOS packs them. Their errors never quote the data (a field may hold a PAN or track 2), only the
// position of the offending character.

var (
	// digitsASCII is moov's ASCII encoder restricted to the digits 0-9, so that a non-numeric amount or
	// STAN fails at unpack with an error naming the field instead of reaching the switch.
	digitsASCII encoding.Encoder = digitsASCIIEncoder{}
	// amountASCII is the x+n class (fields 28-31, 97): 'C' or 'D' then digits, all ASCII (jPOS IFA_AMOUNT).
	amountASCII encoding.Encoder = amountASCIIEncoder{}
	// amountBCD is the x+n class in binary dialects: the sign as one ASCII byte, the digits packed BCD
	// (jPOS IFB_AMOUNT).
	amountBCD encoding.Encoder = amountBCDEncoder{}
	// track2BCD packs track 2 (digits and the '=' separator, nibble D) left-aligned, right-padded with a
	// zero nibble when odd (jPOS IFB_LLNUM with RIGHT_PADDED interpreter).
	track2BCD encoding.Encoder = track2BCDEncoder{}
	// track2ASCII accepts digits and the separator ('=' or 'D') of ISO 7813 track 2.
	track2ASCII encoding.Encoder = track2ASCIIEncoder{}
)

func checkDigits(b []byte) error {
	for i, c := range b {
		if c < '0' || c > '9' {
			return fmt.Errorf("non-digit at position %d", i+1)
		}
	}
	return nil
}

type digitsASCIIEncoder struct{}

func (digitsASCIIEncoder) Encode(src []byte) ([]byte, error) {
	if err := checkDigits(src); err != nil {
		return nil, err
	}
	return append([]byte(nil), src...), nil
}

func (digitsASCIIEncoder) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 0 {
		return nil, 0, fmt.Errorf("length should be positive, got %d", length)
	}
	if len(src) < length {
		return nil, 0, fmt.Errorf("not enough data to decode: expected %d bytes, got %d", length, len(src))
	}
	if err := checkDigits(src[:length]); err != nil {
		return nil, 0, err
	}
	return append([]byte(nil), src[:length]...), length, nil
}

func checkAmount(b []byte) error {
	if len(b) < 2 {
		return fmt.Errorf("amount needs a sign and at least one digit")
	}
	if b[0] != 'C' && b[0] != 'D' {
		return fmt.Errorf("amount sign must be C or D")
	}
	if err := checkDigits(b[1:]); err != nil {
		return err
	}
	return nil
}

type amountASCIIEncoder struct{}

func (amountASCIIEncoder) Encode(src []byte) ([]byte, error) {
	if err := checkAmount(src); err != nil {
		return nil, err
	}
	return append([]byte(nil), src...), nil
}

func (amountASCIIEncoder) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 0 || len(src) < length {
		return nil, 0, fmt.Errorf("not enough data to decode: expected %d bytes, got %d", length, len(src))
	}
	if err := checkAmount(src[:length]); err != nil {
		return nil, 0, err
	}
	return append([]byte(nil), src[:length]...), length, nil
}

type amountBCDEncoder struct{}

func (amountBCDEncoder) Encode(src []byte) ([]byte, error) {
	if err := checkAmount(src); err != nil {
		return nil, err
	}
	digits, err := encoding.BCD.Encode(src[1:])
	if err != nil {
		return nil, err
	}
	return append([]byte{src[0]}, digits...), nil
}

func (amountBCDEncoder) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 2 || len(src) < 1 {
		return nil, 0, fmt.Errorf("not enough data to decode amount")
	}
	digits, read, err := encoding.BCD.Decode(src[1:], length-1)
	if err != nil {
		return nil, 0, err
	}
	out := append([]byte{src[0]}, digits...)
	if err := checkAmount(out); err != nil {
		return nil, 0, err
	}
	return out, read + 1, nil
}

func checkTrack2(b []byte) error {
	for i, c := range b {
		if (c < '0' || c > '9') && c != '=' && c != 'D' {
			return fmt.Errorf("track 2 character not a digit or separator at position %d", i+1)
		}
	}
	return nil
}

type track2ASCIIEncoder struct{}

func (track2ASCIIEncoder) Encode(src []byte) ([]byte, error) {
	if err := checkTrack2(src); err != nil {
		return nil, err
	}
	return append([]byte(nil), src...), nil
}

func (track2ASCIIEncoder) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 0 || len(src) < length {
		return nil, 0, fmt.Errorf("not enough data to decode: expected %d bytes, got %d", length, len(src))
	}
	if err := checkTrack2(src[:length]); err != nil {
		return nil, 0, err
	}
	return append([]byte(nil), src[:length]...), length, nil
}

type track2BCDEncoder struct{}

func (track2BCDEncoder) Encode(src []byte) ([]byte, error) {
	if err := checkTrack2(src); err != nil {
		return nil, err
	}
	out := make([]byte, (len(src)+1)/2)
	for i, c := range src {
		n := c - '0'
		if c == '=' || c == 'D' {
			n = 0xD
		}
		if i%2 == 0 {
			out[i/2] = n << 4
		} else {
			out[i/2] |= n
		}
	}
	return out, nil
}

func (track2BCDEncoder) Decode(src []byte, length int) ([]byte, int, error) {
	if length < 0 {
		return nil, 0, fmt.Errorf("length should be positive, got %d", length)
	}
	read := (length + 1) / 2
	if len(src) < read {
		return nil, 0, fmt.Errorf("not enough data to decode: expected %d bytes, got %d", read, len(src))
	}
	out := make([]byte, length)
	for i := range length {
		n := src[i/2] >> 4
		if i%2 == 1 {
			n = src[i/2] & 0x0F
		}
		switch {
		case n <= 9:
			out[i] = '0' + n
		case n == 0xD:
			out[i] = '='
		default:
			return nil, 0, fmt.Errorf("track 2 nibble not a digit or separator at position %d", i+1)
		}
	}
	return out, read, nil
}
