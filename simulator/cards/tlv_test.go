package cards

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestTLVRoundTripsTagsAndLengths(t *testing.T) {
	long := bytes.Repeat([]byte{0xAB}, 200)
	longer := bytes.Repeat([]byte{0xCD}, 300)
	objs := []TLV{
		{Tag: 0x95, Value: []byte{0x80, 0, 0, 0x80, 0}},
		{Tag: 0x9F26, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Tag: 0xDF8101, Value: []byte{0x42}}, // three-byte tag
		{Tag: 0x9F10, Value: long},           // 0x81 length
		{Tag: 0x71, Value: longer},           // 0x82 length, constructed tag
		{Tag: 0x8A, Value: []byte{}},
	}
	enc, err := EncodeTLV(objs...)
	if err != nil {
		t.Fatal(err)
	}
	wantStart := "95058000008000" + "9f26080102030405060708" + "df81010142" + "9f1081c8"
	if got := hex.EncodeToString(enc[:len(wantStart)/2]); got != wantStart {
		t.Fatalf("encoding starts %s, want %s", got, wantStart)
	}
	i := bytes.Index(enc, []byte{0x71, 0x82, 0x01, 0x2C})
	if i < 0 {
		t.Fatal("300-byte value not encoded with 82 012C")
	}
	got, err := DecodeTLV(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(objs) {
		t.Fatalf("%d objects back, want %d", len(got), len(objs))
	}
	for k := range objs {
		if got[k].Tag != objs[k].Tag || !bytes.Equal(got[k].Value, objs[k].Value) {
			t.Fatalf("object %d: %X %x, want %X %x", k, got[k].Tag, got[k].Value, objs[k].Tag, objs[k].Value)
		}
	}
	if !got[4].Constructed() || got[1].Constructed() {
		t.Fatal("constructed bit misread")
	}
	if v, ok := FindTLV(got, 0xDF8101); !ok || v[0] != 0x42 {
		t.Fatal("FindTLV missed the three-byte tag")
	}
}

func TestTLVDecodeSkipsPaddingAndRefusesMalformed(t *testing.T) {
	objs, err := DecodeTLV([]byte{0x00, 0x9C, 0x01, 0x00, 0x00, 0x00})
	if err != nil || len(objs) != 1 || objs[0].Tag != 0x9C {
		t.Fatalf("padding: %v %v", objs, err)
	}
	for name, b := range map[string][]byte{
		"value truncated":          {0x9F, 0x26, 0x08, 1, 2, 3},
		"length missing":           {0x9F, 0x26},
		"tag truncated":            {0x9F},
		"tag longer than 3 bytes":  {0x9F, 0x81, 0x81, 0x01, 0x00},
		"indefinite length":        {0x70, 0x80, 0x00, 0x00},
		"three length bytes":       {0x9F, 0x26, 0x83, 0x00, 0x00, 0x08},
		"long length truncated":    {0x9F, 0x26, 0x82, 0x01},
		"long length beyond value": {0x9F, 0x26, 0x81, 0xFF, 0x01},
	} {
		if _, err := DecodeTLV(b); !errors.Is(err, ErrTLV) {
			t.Errorf("%s: error %v, want ErrTLV", name, err)
		}
	}
	for name, tag := range map[string]uint32{"zero": 0, "9F without follow-up": 0x1F, "two-byte tag with short first byte": 0x9526,
		"continuation bit on the last byte": 0x9F81, "four bytes": 0x9F818101} {
		if _, err := EncodeTLV(TLV{Tag: tag}); !errors.Is(err, ErrTLV) {
			t.Errorf("%s: error %v, want ErrTLV", name, err)
		}
	}
}

func TestCryptogramDataNeedsEveryObjectAtItsSize(t *testing.T) {
	objs := []TLV{
		{TagAmount, BCD("000000001000")}, {TagAmountOther, BCD("000000000000")}, {TagCountry, BCD("0156")},
		{TagTVR, make([]byte, 5)}, {TagCurrency, BCD("0156")}, {TagTxnDate, BCD("260102")}, {TagTxnType, []byte{0}},
		{TagUN, []byte{1, 2, 3, 4}}, {TagAIP, []byte{0x19, 0x80}}, {TagATC, []byte{0, 7}},
		{TagIAD, []byte{0x06, DKI01, CVN01, 0x03, 0xA0, 0x00, 0x00}},
	}
	data, err := CryptogramData(objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 6+6+2+5+2+3+1+4+2+2+4 {
		t.Fatalf("%d bytes of cryptogram data", len(data))
	}
	if !bytes.HasSuffix(data, []byte{0x00, 0x07, 0x03, 0xA0, 0x00, 0x00}) {
		t.Fatalf("data ends %x: want the ATC then the CVR", data[len(data)-6:])
	}
	bad := append([]TLV(nil), objs...)
	bad[9] = TLV{TagATC, []byte{7}}
	if _, err := CryptogramData(bad); err == nil {
		t.Fatal("a 1-byte ATC was accepted")
	}
	other := append([]TLV(nil), objs...)
	other[10] = TLV{TagIAD, []byte{0x06, DKI01, 0x12, 0x03, 0xA0, 0x00, 0x00}}
	if _, err := CryptogramData(other); err == nil {
		t.Fatal("another cryptogram version was accepted")
	}
	if UnBCD(BCD("0156")) != "0156" || UnBCD(BCD("5")) != "05" {
		t.Fatal("BCD does not round-trip")
	}
}
