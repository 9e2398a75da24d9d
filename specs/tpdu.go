package specs

import (
	"fmt"
)

// TPDU is the 5-byte transport protocol data unit that China UnionPay-style terminals put between
// the length prefix and the ISO 8583 message: ID 0x60, destination address (2), source address (2).
type TPDU [5]byte

// TPDUID is the first byte of a TPDU as terminals send it.
const TPDUID = 0x60

// TPDULength is the size of a TPDU in bytes.
const TPDULength = len(TPDU{})

// SplitTPDU takes the TPDU off the front of a frame body and returns it with the ISO 8583 message.
func SplitTPDU(body []byte) (TPDU, []byte, error) {
	var t TPDU
	if len(body) < TPDULength {
		return t, nil, fmt.Errorf("frame of %d bytes is too short for a %d-byte TPDU", len(body), TPDULength)
	}
	copy(t[:], body)
	if t[0] != TPDUID {
		return t, nil, fmt.Errorf("TPDU ID is 0x%02X, want 0x%02X", t[0], TPDUID)
	}
	return t, body[TPDULength:], nil
}

// Destination is the address the terminal sent to (the NII of the host).
func (t TPDU) Destination() uint16 { return uint16(t[1])<<8 | uint16(t[2]) }

// Source is the address of the sender.
func (t TPDU) Source() uint16 { return uint16(t[3])<<8 | uint16(t[4]) }

// Reply is the TPDU of the response: destination and source swapped.
func (t TPDU) Reply() TPDU {
	return TPDU{t[0], t[3], t[4], t[1], t[2]}
}

// NewTPDU builds a TPDU from its addresses.
func NewTPDU(destination, source uint16) TPDU {
	return TPDU{TPDUID, byte(destination >> 8), byte(destination), byte(source >> 8), byte(source)}
}

func (t TPDU) String() string { return fmt.Sprintf("%02X%04X%04X", t[0], t.Destination(), t.Source()) }
