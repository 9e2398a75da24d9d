// Package translate turns ISO 8583 messages into the canonical txn.Transaction and back. The mapping is
// by ISO 8583:1987 field number, which every dialect in specs/ shares; dialects differ only in how a
// field is encoded, and moov's MessageSpec handles that. Adding a dialect therefore touches specs/ only.
package translate

import (
	"fmt"
	"strings"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/field"
)

// getString reads a field as text. moov's Numeric drops leading zeros, so fixed-length numerics are
// padded back to their declared length (STAN 000123 stays 000123).
func getString(m *iso8583.Message, id int) (string, bool, error) {
	f := m.GetField(id)
	if f == nil {
		return "", false, nil
	}
	s, err := f.String()
	if err != nil {
		return "", true, fmt.Errorf("field %d: %w", id, err)
	}
	if _, ok := f.(*field.Numeric); ok {
		spec := f.Spec()
		if spec.Pref != nil && strings.HasSuffix(spec.Pref.Inspect(), ".Fixed") && len(s) < spec.Length {
			s = strings.Repeat("0", spec.Length-len(s)) + s
		}
	}
	return s, true, nil
}

// getBytes reads a binary field.
func getBytes(m *iso8583.Message, id int) ([]byte, bool, error) {
	if m.GetField(id) == nil {
		return nil, false, nil
	}
	b, err := m.GetBytes(id)
	if err != nil {
		return nil, true, fmt.Errorf("field %d: %w", id, err)
	}
	return b, true, nil
}

// setString sets a field if the value is not empty; the spec decides the encoding.
func setString(m *iso8583.Message, id int, v string) error {
	if v == "" {
		return nil
	}
	if err := m.Field(id, v); err != nil {
		return fmt.Errorf("setting field %d: %w", id, err)
	}
	return nil
}

// setBytes sets a binary field if the value is not empty.
func setBytes(m *iso8583.Message, id int, v []byte) error {
	if len(v) == 0 {
		return nil
	}
	if err := m.BinaryField(id, v); err != nil {
		return fmt.Errorf("setting field %d: %w", id, err)
	}
	return nil
}

func isDigits(s string) bool {
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
