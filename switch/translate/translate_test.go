package translate

import (
	"errors"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/txn"
)

func request(t *testing.T, spec *iso8583.MessageSpec, fields map[int]string) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(spec)
	m.MTI("0200")
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			t.Fatalf("field %d: %v", id, err)
		}
	}
	if err := m.BinaryField(52, []byte{0x04, 0x12, 0x61, 0xAA, 0xAA, 0xED, 0xCB, 0xA9}); err != nil {
		t.Fatal(err)
	}
	return m
}

var purchaseFields = map[int]string{
	2: "4761739001010010", 3: "000000", 4: "000000012345", 7: "1124194100", 11: "000042",
	12: "194100", 13: "1124", 22: "051", 25: "00", 41: "T0000001", 42: "M00000000000001", 49: "156",
}

// Every dialect maps to the same canonical transaction and back: the mapping is by field number.
func TestEveryDialectTranslatesThePurchaseTheSameWay(t *testing.T) {
	for _, name := range []string{"iso87a", "iso87a-bb", "iso87b"} {
		t.Run(name, func(t *testing.T) {
			d, err := specs.DialectByName(name)
			if err != nil {
				t.Fatal(err)
			}
			// Over the wire and back, as the listener sees it.
			packed, err := request(t, d.Spec, purchaseFields).Pack()
			if err != nil {
				t.Fatal(err)
			}
			req := iso8583.NewMessage(d.Spec)
			if err := req.Unpack(packed); err != nil {
				t.Fatal(err)
			}
			tx, err := Request(req, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if tx.Type != txn.TypePurchase || tx.Amount != 12345 || tx.STAN != "000042" || tx.PAN != "4761739001010010" ||
				tx.TerminalID != "T0000001" || tx.Currency != "156" || len(tx.PINBlock) != 8 || tx.EntryMode != "051" {
				t.Fatalf("translated %+v", tx)
			}
			tx.Response, tx.AuthCode, tx.RRN = "00", "A1B2C3", "432919000001"
			resp, err := Response(req, tx)
			if err != nil {
				t.Fatal(err)
			}
			if mti, _ := resp.GetMTI(); mti != "0210" {
				t.Errorf("MTI %s", mti)
			}
			for id, want := range map[int]string{11: "000042", 39: "00", 38: "A1B2C3", 37: "432919000001", 41: "T0000001", 4: "000000012345"} {
				if got, _ := resp.GetString(id); got != want {
					t.Errorf("answer field %d = %q, want %q", id, got, want)
				}
			}
			if resp.GetField(52) != nil {
				t.Error("answer echoes the PIN block")
			}
			if _, err := resp.Pack(); err != nil {
				t.Fatalf("answer does not pack: %v", err)
			}
		})
	}
}

func TestRequestFormatErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(map[int]string)
		field int
	}{
		{"missing STAN", func(f map[int]string) { delete(f, 11) }, 11},
		{"missing terminal", func(f map[int]string) { delete(f, 41) }, 41},
		{"missing amount", func(f map[int]string) { delete(f, 4) }, 4},
		{"missing currency", func(f map[int]string) { delete(f, 49) }, 49},
		{"short transmission time", func(f map[int]string) { f[7] = "11241941" }, 7},
		{"unknown processing code", func(f map[int]string) { f[3] = "990000" }, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fields := map[int]string{}
			for k, v := range purchaseFields {
				fields[k] = v
			}
			c.edit(fields)
			_, err := Request(request(t, specs.ISO87A, fields), time.Now())
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("got %v, want a format error on field %d", err, c.field)
			}
		})
	}
}

func TestFormatErrorAnswerEchoesOnlyFieldsReadBeforeTheBadOne(t *testing.T) {
	m := request(t, specs.ISO87A, purchaseFields)
	resp := FormatErrorResponse(m, 7)
	if got, _ := resp.GetString(39); got != txn.RCFormatError {
		t.Fatalf("39 = %q", got)
	}
	if mti, _ := resp.GetMTI(); mti != "0210" {
		t.Fatalf("MTI = %q", mti)
	}
	if resp.GetField(4) == nil || resp.GetField(11) != nil {
		t.Fatal("echoed fields from the bad one on")
	}
	if _, err := resp.Pack(); err != nil {
		t.Fatal(err)
	}
}

func TestTrack2GivesPANAndExpiry(t *testing.T) {
	fields := map[int]string{}
	for k, v := range purchaseFields {
		fields[k] = v
	}
	delete(fields, 2)
	fields[35] = "4761739001010010=29121011234567890"
	tx, err := Request(request(t, specs.ISO87A, fields), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if tx.PAN != "4761739001010010" || tx.Expiry != "2912" {
		t.Fatalf("pan %s expiry %s", txn.Mask(tx.PAN), tx.Expiry)
	}
}

func TestMaskKeepsSixAndFour(t *testing.T) {
	if got := txn.Mask("4761739001010010"); got != "476173******0010" {
		t.Fatal(got)
	}
	if got := txn.Mask("123"); got != "****" {
		t.Fatal(got)
	}
}

func TestResponseMTIIsAlwaysAValidMTI(t *testing.T) {
	for req, want := range map[string]string{"0200": "0210", "0201": "0210", "0220": "0230", "0421": "0430",
		"0800": "0810", "0100": "0110", "0090": "0010", "0210": "0210", "0299": "0210"} {
		if got, err := ResponseMTI(req); err != nil || got != want {
			t.Errorf("ResponseMTI(%s) = %s, %v; want %s", req, got, err, want)
		}
	}
}
