package txn

import (
	"fmt"
	"strings"
)

// OriginalData is field 90, ISO 8583:1987 original data elements (n42): how the transaction a
// reversal, void, completion or refund acts on was sent. Reversals name their original by it.
type OriginalData struct {
	MTI              string // 4 digits
	STAN             string // 6 digits, field 11 of the original
	TransmissionTime string // 10 digits, field 7 of the original (MMDDhhmmss)
	AcquirerID       string // up to 11 digits, field 32 of the original (zero-filled on the wire)
	ForwardingID     string // up to 11 digits, field 33 of the original (zero-filled on the wire)
}

// OriginalDataLength is the length of field 90 in digits.
const OriginalDataLength = 42

// ParseOriginalData reads field 90. The acquirer and forwarding IDs keep their leading zeros.
func ParseOriginalData(s string) (OriginalData, error) {
	if len(s) != OriginalDataLength || !digits(s) {
		return OriginalData{}, fmt.Errorf("original data elements must be %d digits", OriginalDataLength)
	}
	o := OriginalData{MTI: s[0:4], STAN: s[4:10], TransmissionTime: s[10:20], AcquirerID: s[20:31], ForwardingID: s[31:42]}
	if o.MTI[0] != '0' {
		return OriginalData{}, fmt.Errorf("original MTI %s is not ISO 8583:1987", o.MTI)
	}
	return o, nil
}

// String is field 90 as sent: 42 digits, IDs right-justified and zero-filled. Non-digits and
// overlong parts are a programming error of the caller and yield "" rather than a malformed field.
func (o OriginalData) String() string {
	pad := func(s string, n int) (string, bool) {
		if len(s) > n || (s != "" && !digits(s)) {
			return "", false
		}
		return strings.Repeat("0", n-len(s)) + s, true
	}
	if len(o.MTI) != 4 || len(o.STAN) != 6 || len(o.TransmissionTime) != 10 || !digits(o.MTI+o.STAN+o.TransmissionTime) {
		return ""
	}
	acq, ok1 := pad(o.AcquirerID, 11)
	fwd, ok2 := pad(o.ForwardingID, 11)
	if !ok1 || !ok2 {
		return ""
	}
	return o.MTI + o.STAN + o.TransmissionTime + acq + fwd
}

// Original is field 90 parsed; ok is false when the request has none or it is malformed.
func (t *Transaction) Original() (OriginalData, bool) {
	if t.OriginalData == "" {
		return OriginalData{}, false
	}
	o, err := ParseOriginalData(t.OriginalData)
	return o, err == nil
}

// OriginalKey is the identity (see Key) of the transaction field 90 names, "" without a valid
// field 90. The acquirer part is this switch's own (t.AcquirerID, stamped by identify) whatever
// field 90 says, and the terminal is the requesting one: a terminal can only name its own
// transactions.
func (t *Transaction) OriginalKey() string {
	o, ok := t.Original()
	if !ok {
		return ""
	}
	return IdentityKey(t.AcquirerID, t.TerminalID, o.STAN, o.TransmissionTime, MTIClass(o.MTI))
}

// ClassMTI is the request MTI of an identity's MTI class: "20" → "0200", "10" → "0100".
func ClassMTI(class string) string {
	if len(class) != 2 {
		return ""
	}
	return "0" + class + "0"
}

// Advice tells whether the request is an advice (0120, 0220, 0420 and their repeats): the
// terminal has already acted and tells the host, which acknowledges.
func (t *Transaction) Advice() bool { return len(t.MTI) == 4 && t.MTI[2] == '2' }

// Repeat tells whether the request is a repeat (0201, 0221, 0401, 0421 …) of one the terminal sent
// before without getting an answer.
func (t *Transaction) Repeat() bool { return len(t.MTI) == 4 && (t.MTI[3] == '1' || t.MTI[3] == '3') }

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
