package specs

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"
)

// wireCase is one message written out by hand per dialect from the ISO 8583:1987 field table and
// the jPOS packagers' field classes (as in dialect_test.go), packed and unpacked both ways.
type wireCase struct {
	mti    string
	fields map[int]string
	want   map[string]string // dialect → hex
}

func (c wireCase) run(t *testing.T) {
	t.Helper()
	for name, wantHex := range c.want {
		t.Run(name, func(t *testing.T) {
			d, err := DialectByName(name)
			if err != nil {
				t.Fatal(err)
			}
			m := iso8583.NewMessage(d.Spec)
			m.MTI(c.mti)
			for id, v := range c.fields {
				if err := m.Field(id, v); err != nil {
					t.Fatalf("field %d: %v", id, err)
				}
			}
			packed, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(packed); got != wantHex {
				t.Fatalf("packed\n got %s\nwant %s", got, wantHex)
			}
			raw, _ := hex.DecodeString(wantHex)
			back := iso8583.NewMessage(d.Spec)
			if err := back.Unpack(raw); err != nil {
				t.Fatal(err)
			}
			if mti, _ := back.GetMTI(); mti != c.mti {
				t.Errorf("MTI %s", mti)
			}
			for id, v := range c.fields {
				if got, _ := back.GetString(id); got != v {
					t.Errorf("field %d = %q, want %q", id, got, v)
				}
			}
		})
	}
}

// A 0500 batch settlement carries its totals in the secondary bitmap's fields: counts n10 (74-77),
// amounts n16 (86-89) and the net x+n16 (97).
func TestBatchSettlementPacksToTheStandardBytes(t *testing.T) {
	// Primary: 1 (secondary), 3, 7 | 11 | – | – | – | 41, 42 | 49 | –.
	// Secondary: – | 74, 75, 76, 77 | 86, 87, 88 | 89 | 97 | – | – | –.
	const bitmaps = "A220000000C08000" + "0078078080000000"
	fields := map[int]string{3: "920000", 7: "0614230000", 11: "000045", 41: "TERM0001", 42: "MERCHANT0000001", 49: "156",
		74: "0000000001", 75: "0000000000", 76: "0000000003", 77: "0000000001",
		86: "0000000000001000", 87: "0000000000000000", 88: "0000000000012500", 89: "0000000000002500",
		97: "D0000000000014000"}
	ascii := h("920000") + h("0614230000") + h("000045") + h("TERM0001") + h("MERCHANT0000001") + h("156") +
		h("0000000001") + h("0000000000") + h("0000000003") + h("0000000001") +
		h("0000000000001000") + h("0000000000000000") + h("0000000000012500") + h("0000000000002500") +
		h("D0000000000014000")
	wireCase{mti: "0500", fields: fields, want: map[string]string{
		"iso87a":    h("0500") + h(bitmaps) + ascii,
		"iso87a-bb": h("0500") + strings.ToLower(bitmaps) + ascii,
		"iso87b": "0500" + strings.ToLower(bitmaps) + "920000" + "0614230000" + "000045" + // BCD: 3, 5, 3 bytes
			h("TERM0001") + h("MERCHANT0000001") + h("156") +
			"0000000001" + "0000000000" + "0000000003" + "0000000001" + // 74-77 n10: 5 bytes each
			"0000000000001000" + "0000000000000000" + "0000000000012500" + "0000000000002500" + // 86-89 n16: 8 bytes
			h("D") + "0000000000014000", // 97: sign as ASCII, 16 digits BCD
	}}.run(t)
}

// A balance inquiry's answer carries the balance in field 54 (LLLVAR): account type 10, amount
// type 02 (available), currency 156, C, 12 digits.
func TestBalanceAnswerCarriesAdditionalAmounts(t *testing.T) {
	// Primary: 3 | 11 | – | – | 39 | 41, 42 | 54 | –.
	const bitmap = "2020000002C00400"
	const balance = "1002156C000000012345"
	fields := map[int]string{3: "310000", 11: "000046", 39: "00", 41: "TERM0001", 42: "MERCHANT0000001", 54: balance}
	ascii := h("310000") + h("000046") + h("00") + h("TERM0001") + h("MERCHANT0000001")
	wireCase{mti: "0110", fields: fields, want: map[string]string{
		"iso87a":    h("0110") + h(bitmap) + ascii + h("020") + h(balance),
		"iso87a-bb": h("0110") + strings.ToLower(bitmap) + ascii + h("020") + h(balance),
		"iso87b": "0110" + strings.ToLower(bitmap) + "310000" + "000046" + h("00") + h("TERM0001") + h("MERCHANT0000001") +
			"0020" + h(balance), // LLL as 2 bytes BCD, the value ASCII
	}}.run(t)
}

// A 0320 batch upload and an 0800 key change use the fields of their classes: 90 (n42) and 38
// (an6) in the upload, 70 = 101 in the key change.
func TestUploadAndKeyChangePackToTheStandardBytes(t *testing.T) {
	// 0320 primary: 1, 3, 4, 7 | 11 | – | – | 37, 38 | 41, 42 | 49 | –; secondary: 90.
	const uploadBitmaps = "B22000000CC08000" + "0000004000000000"
	const f90 = "020000004206141230450000000000100000000000"
	up := map[int]string{3: "000000", 4: "000000001000", 7: "0614235900", 11: "000047", 37: "516512000042", 38: "A1B2C3",
		41: "TERM0001", 42: "MERCHANT0000001", 49: "156", 90: f90}
	ascii := h("000000") + h("000000001000") + h("0614235900") + h("000047") + h("516512000042") + h("A1B2C3") +
		h("TERM0001") + h("MERCHANT0000001") + h("156")
	wireCase{mti: "0320", fields: up, want: map[string]string{
		"iso87a":    h("0320") + h(uploadBitmaps) + ascii + h(f90),
		"iso87a-bb": h("0320") + strings.ToLower(uploadBitmaps) + ascii + h(f90),
		"iso87b": "0320" + strings.ToLower(uploadBitmaps) + "000000" + "000000001000" + "0614235900" + "000047" +
			h("516512000042") + h("A1B2C3") + h("TERM0001") + h("MERCHANT0000001") + h("156") + f90, // 90: 21 bytes BCD
	}}.run(t)

	const keyBitmaps = "8220000000000000" + "0400000000000000"
	wireCase{mti: "0800", fields: map[int]string{7: "0614120000", 11: "000048", 70: "101"}, want: map[string]string{
		"iso87a": h("0800") + h(keyBitmaps) + h("0614120000") + h("000048") + h("101"),
		"iso87b": "0800" + strings.ToLower(keyBitmaps) + "0614120000" + "000048" + "0101",
	}}.run(t)
}
