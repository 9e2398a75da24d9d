package specs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"
	moovErrors "github.com/moov-io/iso8583/errors"
)

// The expected bytes in these tests are written out field by field from the ISO 8583:1987 data
// element table and the jPOS packagers' field classes, not produced by packing.

func h(s string) string { return hex.EncodeToString([]byte(s)) } // ASCII text as hex

// purchase0200 is an 0200 with fields 2, 3, 4, 7, 11, 22, 25, 41, 42, 49, 52.
func purchase0200(t *testing.T, spec *iso8583.MessageSpec) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(spec)
	m.MTI("0200")
	set := map[int]string{
		2: "4761739001010010", 3: "000000", 4: "000000001000", 7: "0614123045", 11: "000123",
		22: "051", 25: "00", 41: "TERM0001", 42: "MERCHANT0000001", 49: "840",
	}
	for id, v := range set {
		if err := m.Field(id, v); err != nil {
			t.Fatalf("setting field %d: %v", id, err)
		}
	}
	if err := m.BinaryField(52, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}); err != nil {
		t.Fatalf("setting field 52: %v", err)
	}
	return m
}

// Bitmap of fields 2,3,4,7 | 11 | 22 | 25 | - | 41,42 | 49,52 | -.
const purchaseBitmap = "7220048000C09000"

var purchaseWire = map[string]string{
	"iso87a": h("0200") + h(purchaseBitmap) +
		h("16") + h("4761739001010010") + // 2 LLNUM: ASCII length, ASCII digits
		h("000000") + // 3 n6
		h("000000001000") + // 4 n12
		h("0614123045") + // 7 n10
		h("000123") + // 11 n6
		h("051") + // 22 n3
		h("00") + // 25 n2
		h("TERM0001") + // 41 ans8
		h("MERCHANT0000001") + // 42 ans15
		h("840") + // 49 an3
		h("0123456789ABCDEF"), // 52 b8 as 16 hex characters
	"iso87a-bb": h("0200") + strings.ToLower(purchaseBitmap) + // bitmap: 8 raw bytes
		h("16") + h("4761739001010010") +
		h("000000") + h("000000001000") + h("0614123045") + h("000123") + h("051") + h("00") +
		h("TERM0001") + h("MERCHANT0000001") + h("840") +
		"0123456789abcdef", // 52 b8 raw
	"iso87b": "0200" + strings.ToLower(purchaseBitmap) +
		"16" + "4761739001010010" + // 2: BCD length 16, 8 bytes BCD
		"000000" + // 3 n6: 3 bytes
		"000000001000" + // 4 n12: 6 bytes
		"0614123045" + // 7 n10: 5 bytes
		"000123" + // 11 n6: 3 bytes
		"0051" + // 22 n3: left-padded to 2 bytes
		"00" + // 25 n2: 1 byte
		h("TERM0001") + h("MERCHANT0000001") + h("840") + // 41, 42, 49 stay ASCII
		"0123456789abcdef", // 52 b8 raw
}

func TestPurchasePacksToTheStandardBytes(t *testing.T) {
	for _, name := range []string{"iso87a", "iso87a-bb", "iso87b"} {
		t.Run(name, func(t *testing.T) {
			d, err := DialectByName(name)
			if err != nil {
				t.Fatal(err)
			}
			want := purchaseWire[name]
			packed, err := purchase0200(t, d.Spec).Pack()
			if err != nil {
				t.Fatalf("pack: %v", err)
			}
			if got := hex.EncodeToString(packed); got != want {
				t.Fatalf("packed\n got %s\nwant %s", got, want)
			}

			// Unpack the hand-written bytes and read every field back.
			raw, _ := hex.DecodeString(want)
			m := iso8583.NewMessage(d.Spec)
			if err := m.Unpack(raw); err != nil {
				t.Fatalf("unpack: %v", err)
			}
			for id, v := range map[int]string{0: "0200", 2: "4761739001010010", 3: "000000", 4: "000000001000",
				7: "0614123045", 11: "000123", 22: "051", 25: "00", 41: "TERM0001", 42: "MERCHANT0000001", 49: "840"} {
				got, err := m.GetString(id)
				if err != nil || got != v {
					t.Errorf("field %d = %q (%v), want %q", id, got, err, v)
				}
			}
			pin, err := m.GetBytes(52)
			if err != nil || !bytes.Equal(pin, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}) {
				t.Errorf("field 52 = %X (%v)", pin, err)
			}
		})
	}
}

// An 0800 echo (70 = 301) needs the secondary bitmap: bit 1 set in the primary, bit 70 in the second.
func TestNetworkManagementUsesSecondaryBitmap(t *testing.T) {
	const bitmaps = "8220000000000000" + "0400000000000000"
	want := map[string]string{
		"iso87a":      h("0800") + h(bitmaps) + h("0614123045") + h("000001") + h("301"),
		"iso87a-bb":   h("0800") + strings.ToLower(bitmaps) + h("0614123045") + h("000001") + h("301"),
		"issuer-link": h("0800") + strings.ToLower(bitmaps) + h("0614123045") + h("000001") + h("301"),
		"iso87b":      "0800" + strings.ToLower(bitmaps) + "0614123045" + "000001" + "0301",
	}
	for name, wantHex := range want {
		t.Run(name, func(t *testing.T) {
			d, _ := DialectByName(name)
			m := iso8583.NewMessage(d.Spec)
			m.MTI("0800")
			for id, v := range map[int]string{7: "0614123045", 11: "000001", 70: "301"} {
				if err := m.Field(id, v); err != nil {
					t.Fatal(err)
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
			if v, _ := back.GetString(70); v != "301" {
				t.Fatalf("field 70 = %q", v)
			}
		})
	}
}

// A chip reversal exercises the classes the purchase does not: a 19-digit PAN (odd, so BCD pads a
// nibble), track 2 with its separator, x+n amount, EMV field 55 (LLL binary), n42 field 90.
func TestChipReversalPacksToTheStandardBytes(t *testing.T) {
	const (
		pan    = "6226090000000000018"
		track2 = "6226090000000000018=2712201"
	)
	emv := []byte{0x9F, 0x26, 0x02, 0xAB, 0xCD, 0x95, 0x01, 0x00} // 9F26 (ARQC, shortened) and 95 (TVR)
	// Bitmap: 2 | - | - | 28 | 35 | - | 55 | -, secondary bit 1; secondary: 90 (byte 4, bit 2).
	const bitmaps = "C000001020000200" + "0000004000000000"
	want := map[string]string{
		"iso87a": h("0400") + h(bitmaps) +
			h("19") + h(pan) + // 2
			h("D00000100") + // 28 x+n8
			h("27") + h(track2) + // 35 z..37
			h("008") + h("9F2602ABCD950100") + // 55: LLL counts bytes, value as hex characters
			h("020000012306141230450000001234560000000000"), // 90 n42
		"iso87b": "0400" + strings.ToLower(bitmaps) +
			"19" + "62260900000000000180" + // 2: 19 digits, right-padded nibble
			hex.EncodeToString([]byte("D")) + "00000100" + // 28: sign ASCII, 8 digits BCD
			"27" + "6226090000000000018d27122010" + // 35: '=' is nibble D, right-padded
			"0008" + "9f2602abcd950100" + // 55: BCD LLL (2 bytes), raw TLV
			"020000012306141230450000001234560000000000", // 90: 21 bytes BCD
	}
	for name, wantHex := range want {
		t.Run(name, func(t *testing.T) {
			d, _ := DialectByName(name)
			m := iso8583.NewMessage(d.Spec)
			m.MTI("0400")
			for id, v := range map[int]string{2: pan, 28: "D00000100", 35: track2,
				90: "020000012306141230450000001234560000000000"} {
				if err := m.Field(id, v); err != nil {
					t.Fatalf("field %d: %v", id, err)
				}
			}
			if err := m.BinaryField(55, emv); err != nil {
				t.Fatal(err)
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
			for id, v := range map[int]string{2: pan, 28: "D00000100", 35: track2,
				90: "020000012306141230450000001234560000000000"} {
				if got, _ := back.GetString(id); got != v {
					t.Errorf("field %d = %q, want %q", id, got, v)
				}
			}
			if got, _ := back.GetBytes(55); !bytes.Equal(got, emv) {
				t.Errorf("field 55 = %X", got)
			}
		})
	}
}

func TestNonNumericAmountFailsUnpackNamingTheField(t *testing.T) {
	for _, name := range []string{"iso87a", "iso87a-bb", "issuer-link"} {
		t.Run(name, func(t *testing.T) {
			d, _ := DialectByName(name)
			wireName := name
			if name == "issuer-link" {
				wireName = "iso87a-bb" // the issuer link encodes fields as iso87a-bb does
			}
			wire, _ := hex.DecodeString(purchaseWire[wireName])
			// Field 4 follows MTI, bitmap, 2 and 3; corrupt its fifth digit.
			bitmapLen := 8
			if name == "iso87a" {
				bitmapLen = 16
			}
			off := 4 + bitmapLen + 2 + 16 + 6 + 4
			wire[off] = 'X'
			m := iso8583.NewMessage(d.Spec)
			err := m.Unpack(wire)
			var ue *moovErrors.UnpackError
			if !errors.As(err, &ue) || ue.FieldID != "4" {
				t.Fatalf("unpack error = %v, want an UnpackError for field 4", err)
			}
			if strings.Contains(err.Error(), "4761739001010010") {
				t.Fatalf("error quotes the PAN: %v", err)
			}
		})
	}
}

func TestBadLengthPrefixInFieldFailsUnpack(t *testing.T) {
	wire, _ := hex.DecodeString(purchaseWire["iso87a"])
	copy(wire[4+16:], "2X") // field 2's LL prefix
	err := iso8583.NewMessage(ISO87A).Unpack(wire)
	var ue *moovErrors.UnpackError
	if !errors.As(err, &ue) || ue.FieldID != "2" {
		t.Fatalf("unpack error = %v, want an UnpackError for field 2", err)
	}
}

func TestWrongFixedLengthFailsPackNamingTheField(t *testing.T) {
	m := iso8583.NewMessage(ISO87B)
	m.MTI("0200")
	if err := m.Field(4, "1000"); err != nil {
		t.Fatal(err)
	}
	_, err := m.Pack()
	if err == nil || !strings.Contains(err.Error(), "field 4") {
		t.Fatalf("pack error = %v, want one naming field 4", err)
	}
}

func TestDialectByNameRejectsUnknownNamesListingTheValidOnes(t *testing.T) {
	_, err := DialectByName("iso93")
	if err == nil {
		t.Fatal("no error for iso93")
	}
	for _, n := range []string{"iso87a", "iso87a-bb", "iso87b", "issuer-link"} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %s", err, n)
		}
	}
	if got := strings.Join(DialectNames(), ","); got != "iso87a,iso87a-bb,iso87b,issuer-link" {
		t.Errorf("DialectNames() = %s", got)
	}
}

func TestEveryDialectCoversFields0To128ExceptTertiaryBitmapBit(t *testing.T) {
	for _, name := range DialectNames() {
		d, _ := DialectByName(name)
		for id := 0; id <= 128; id++ {
			_, ok := d.Spec.Fields[id]
			if ok == (id == 65) {
				t.Errorf("%s: field %d defined = %v", name, id, ok)
			}
		}
	}
}
