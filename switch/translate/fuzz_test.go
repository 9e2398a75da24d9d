package translate

import (
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/specs"
)

// FuzzTerminalMessage feeds arbitrary frame bodies to every terminal dialect along the path the
// switch takes: unpack, translate to a transaction, and build the answer (a format-error answer when
// unpacking or translating fails). Nothing may panic, and every answer must pack.
func FuzzTerminalMessage(f *testing.F) {
	for _, name := range []string{"iso87a", "iso87a-bb", "iso87b"} {
		d, _ := specs.DialectByName(name)
		m := iso8583.NewMessage(d.Spec)
		m.MTI("0200")
		for id, v := range purchaseFields {
			_ = m.Field(id, v)
		}
		_ = m.BinaryField(52, []byte{1, 2, 3, 4, 5, 6, 7, 8})
		_ = m.Field(62, "FFFF9876543210E00001")
		if b, err := m.Pack(); err == nil {
			f.Add(uint8(len(name)), b)
		}
	}
	f.Add(uint8(0), []byte("0800"))
	f.Add(uint8(1), []byte{0x02, 0x00, 0xff})
	dialects := []*iso8583.MessageSpec{specs.ISO87A, specs.ISO87ABinaryBitmap, specs.ISO87B}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		spec := dialects[int(which)%len(dialects)]
		req := iso8583.NewMessage(spec)
		if err := req.Unpack(body); err != nil {
			fe := UnpackFailure(err)
			if _, err := FormatErrorResponse(req, fe.Field).Pack(); err != nil {
				t.Fatalf("format-error answer does not pack: %v", err)
			}
			return
		}
		tx, err := Request(req, time.Now())
		if err != nil {
			if _, err := FormatErrorResponse(req, 0).Pack(); err != nil {
				t.Fatalf("format-error answer does not pack: %v", err)
			}
			return
		}
		tx.Response = "00"
		tx.AuthCode = "ABC123"
		tx.RRN = "000000000001"
		resp, err := Response(req, tx)
		if err != nil {
			return // a request whose echoed fields cannot be copied is dropped, not a crash
		}
		if _, err := resp.Pack(); err != nil {
			DropUnpackableEchoes(resp)
			if _, err := resp.Pack(); err != nil {
				t.Fatalf("answer does not pack even without its unpackable echoes: %v", err)
			}
		}
	})
}
