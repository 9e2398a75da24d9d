package terminalsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
)

// The terminal's side of message authentication (docs/dialects.md, "MAC"). A terminal with a MAC
// method MACs every request but network management (08xx) in field 64, or in field 128 when the
// message has a secondary bitmap, and checks the switch's MAC on each answer. The MAC covers the
// message as sent, from the MTI up to, not including, the MAC field's value; it is the leftmost 8
// bytes of the X9.19 MAC (padding method 1) or of the AES-CMAC under the TAK.

// macLength is the MAC field's length in bytes (b 64).
const macLength = 8

// macPadding is the ISO 9797-1 padding method of X9.19 MACs (CMAC ignores it).
const macPadding = 1

// ErrAnswerMAC is returned with an answer whose MAC is missing or does not verify.
var ErrAnswerMAC = errors.New("the answer's MAC does not verify")

// macFieldOf is 128 when the message has a secondary bitmap, else 64.
func macFieldOf(m *iso8583.Message) int {
	for id := range m.GetFields() {
		if id > 64 {
			return 128
		}
	}
	return 64
}

// MACs tells whether the terminal MACs messages of this MTI: it has a MAC method and the message
// is not network management.
func (k *TerminalKeys) MACs(mti string) bool {
	return k != nil && k.MAC != "" && !strings.HasPrefix(mti, "08")
}

// MACRequest puts the MAC of m under the current TAK into its field 64 (or 128) and returns the
// packed message, ready to send.
func (k *TerminalKeys) MACRequest(ctx context.Context, m *iso8583.Message) ([]byte, error) {
	_, tak := k.working()
	if tak == "" {
		return nil, ErrNotSignedOn
	}
	id := macFieldOf(m)
	if err := m.BinaryField(id, make([]byte, macLength)); err != nil {
		return nil, fmt.Errorf("MAC field %d: %w", id, err)
	}
	packed, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing request: %w", err)
	}
	placeholder, err := m.GetField(id).Pack()
	if err != nil {
		return nil, fmt.Errorf("MAC field %d: %w", id, err)
	}
	mac, err := k.HSM.GenerateMAC(ctx, hsm.GenerateMAC{Key: tak, Padding: macPadding,
		Data: packed[:len(packed)-len(placeholder)], Length: macLength})
	if err != nil {
		return nil, fmt.Errorf("MACing request: %w", err)
	}
	if err := m.BinaryField(id, mac); err != nil {
		return nil, fmt.Errorf("MAC field %d: %w", id, err)
	}
	wire, err := m.GetField(id).Pack()
	if err != nil {
		return nil, fmt.Errorf("MAC field %d: %w", id, err)
	}
	copy(packed[len(packed)-len(wire):], wire)
	return packed, nil
}

// VerifyAnswer checks the MAC of an answer m unpacked from body under the current TAK.
func (k *TerminalKeys) VerifyAnswer(ctx context.Context, m *iso8583.Message, body []byte) error {
	_, tak := k.working()
	if tak == "" {
		return ErrNotSignedOn
	}
	id := macFieldOf(m)
	f := m.GetField(id)
	if f == nil {
		return fmt.Errorf("no field %d: %w", id, ErrAnswerMAC)
	}
	mac, err := f.Bytes()
	if err != nil {
		return fmt.Errorf("field %d: %w", id, ErrAnswerMAC)
	}
	wire, err := f.Pack()
	if err != nil || !bytes.HasSuffix(body, wire) {
		return fmt.Errorf("field %d is not last: %w", id, ErrAnswerMAC)
	}
	err = k.HSM.VerifyMAC(ctx, hsm.VerifyMAC{Key: tak, Padding: macPadding, Data: body[:len(body)-len(wire)], MAC: mac})
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrAnswerMAC)
	}
	return nil
}
