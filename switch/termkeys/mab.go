package termkeys

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/moov-io/iso8583"
)

// MACLength is the length in bytes of the MAC in field 64 or 128 (b 64): the leftmost 8 bytes of
// the X9.19 MAC or of the AES-CMAC.
const MACLength = 8

// Errors a request's MAC check ends with; each is answered 63.
var (
	ErrMACMissing  = errors.New("the message carries no MAC field")
	ErrMACMismatch = errors.New("the MAC does not verify")
	ErrNoTAK       = errors.New("the terminal has no MAC key yet (it has not signed on)")
)

// MACField is where a message's MAC goes: field 128 when the message has a secondary bitmap (any
// field above 64 is present), field 64 otherwise. Either is the last field on the wire.
func MACField(m *iso8583.Message) int {
	for id := range m.GetFields() {
		if id > 64 {
			return 128
		}
	}
	return 64
}

// MACBlock returns the bytes a received message's MAC covers and the MAC itself: the message as
// received (the body after the length prefix and TPDU: MTI, bitmaps, fields) up to, not including,
// the MAC field's value. The MAC field is fixed-length and last, so that is the body minus the
// field's wire form (16 hex characters in iso87a, 8 bytes in iso87a-bb and iso87b).
func MACBlock(m *iso8583.Message, body []byte) (mab, mac []byte, err error) {
	id := MACField(m)
	f := m.GetField(id)
	if f == nil {
		return nil, nil, ErrMACMissing
	}
	mac, err = f.Bytes()
	if err != nil || len(mac) != MACLength {
		return nil, nil, fmt.Errorf("field %d: %w", id, ErrMACMissing)
	}
	wire, err := f.Pack()
	if err != nil || !bytes.HasSuffix(body, wire) {
		// The field unpacked from body, so this is a spec whose MAC field is not fixed and last.
		return nil, nil, fmt.Errorf("field %d is not the last field of the message: %w", id, ErrMACMissing)
	}
	return body[:len(body)-len(wire)], mac, nil
}

// withMACPlaceholder puts a zero MAC in the message's MAC field and packs it; the MAC block is the
// packed message without the field's wire form, which sealMAC then overwrites.
func withMACPlaceholder(m *iso8583.Message) (packed []byte, id, wireLen int, err error) {
	id = MACField(m)
	if err := m.BinaryField(id, make([]byte, MACLength)); err != nil {
		return nil, 0, 0, fmt.Errorf("setting field %d: %w", id, err)
	}
	packed, err = m.Pack()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("packing: %w", err)
	}
	wire, err := m.GetField(id).Pack()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("packing field %d: %w", id, err)
	}
	return packed, id, len(wire), nil
}

// sealMAC writes mac into the MAC field of m and of its packed form.
func sealMAC(m *iso8583.Message, packed []byte, id int, mac []byte) ([]byte, error) {
	if err := m.BinaryField(id, mac); err != nil {
		return nil, fmt.Errorf("setting field %d: %w", id, err)
	}
	wire, err := m.GetField(id).Pack()
	if err != nil {
		return nil, fmt.Errorf("packing field %d: %w", id, err)
	}
	copy(packed[len(packed)-len(wire):], wire)
	return packed, nil
}
