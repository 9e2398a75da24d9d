package terminalsim_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/png"
	"strings"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/specs"
)

func receiptMessage(t *testing.T, mti string, fields map[int]string) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(specs.ISO87A)
	m.MTI(mti)
	for id, v := range fields {
		if err := m.Field(id, v); err != nil {
			t.Fatalf("field %d: %v", id, err)
		}
	}
	return m
}

func TestReceiptFieldsAndSignatureRule(t *testing.T) {
	term := terminalsim.DefaultTerminals(1)[0]
	const pan = "6226090000000014"
	sale := func(entry, amount, currency string) map[int]string {
		return map[int]string{2: pan, 3: "000000", 4: amount, 11: "000123", 22: entry, 41: term.TID, 42: term.MID, 49: currency}
	}
	answer := func(rc string, extra map[int]string) map[int]string {
		f := map[int]string{37: "123456789012", 39: rc}
		if rc == "00" {
			f[38] = "A1B2C3"
		}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	cases := []struct {
		name       string
		mti        string
		req        map[int]string
		pin        bool
		resp       map[int]string
		wantType   string
		wantEntry  string
		wantAmount string
		noSig, sig bool
		wallet     string
		funding    string
		instal     int
	}{
		{name: "chip with PIN needs no signature", mti: "0200", req: sale("051", "000000012345", "156"), pin: true,
			resp: answer("00", nil), wantType: "SALE", wantEntry: "CHIP", wantAmount: "CNY 123.45", noSig: true},
		{name: "swiped without PIN needs a signature", mti: "0200", req: sale("901", "000000012345", "156"),
			resp: answer("00", nil), wantType: "SALE", wantEntry: "SWIPE", wantAmount: "CNY 123.45", sig: true},
		{name: "contactless at the no-CVM limit needs no signature", mti: "0200", req: sale("071", "000000100000", "156"),
			resp: answer("00", nil), wantType: "SALE", wantEntry: "CONTACTLESS", wantAmount: "CNY 1000.00", noSig: true},
		{name: "contactless above the no-CVM limit needs a signature", mti: "0200", req: sale("071", "000000100001", "156"),
			resp: answer("00", nil), wantType: "SALE", wantEntry: "CONTACTLESS", wantAmount: "CNY 1000.01", sig: true},
		{name: "contactless magstripe in a currency without a limit needs a signature", mti: "0200", req: sale("911", "000000000100", "392"),
			resp: answer("00", nil), wantType: "SALE", wantEntry: "CONTACTLESS", wantAmount: "JPY 100", sig: true},
		{name: "declined swipe needs no signature and prints none", mti: "0200", req: sale("901", "000000012345", "156"),
			resp: answer("51", nil), wantType: "SALE", wantEntry: "SWIPE", wantAmount: "CNY 123.45"},
		{name: "wallet payment code carries wallet and funding", mti: "0200", req: sale("031", "000000005000", "156"),
			resp: answer("00", map[int]string{63: "ALIPAY|HUABEI|03"}), wantType: "SALE", wantEntry: "QR",
			wantAmount: "CNY 50.00", noSig: true, wallet: "ALIPAY", funding: "HUABEI", instal: 3},
		{name: "KWD amounts have three decimals", mti: "0100", req: sale("801", "000000001234", "414"),
			resp: answer("00", nil), wantType: "PRE-AUTH", wantEntry: "FALLBACK", wantAmount: "KWD 1.234", sig: true},
		{name: "a refund moves no customer money: no CVM", mti: "0200",
			req:  map[int]string{2: pan, 3: "200000", 4: "000000000500", 11: "000124", 41: term.TID, 42: term.MID, 49: "156"},
			resp: answer("00", nil), wantType: "REFUND", wantAmount: "CNY 5.00"},
		{name: "a void moves no customer money: no CVM", mti: "0200",
			req:  map[int]string{2: pan, 3: "020000", 4: "000000000500", 11: "000125", 41: term.TID, 42: term.MID, 49: "156"},
			resp: answer("00", nil), wantType: "VOID", wantAmount: "CNY 5.00"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := receiptMessage(t, tc.mti, tc.req)
			if tc.pin {
				if err := req.BinaryField(52, []byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
					t.Fatal(err)
				}
			}
			resp := receiptMessage(t, tc.mti[:2]+"10", tc.resp)
			r := terminalsim.NewReceipt(term, req, resp)
			if r.Type != tc.wantType || r.EntryMode != tc.wantEntry {
				t.Errorf("type %q entry %q, want %q %q", r.Type, r.EntryMode, tc.wantType, tc.wantEntry)
			}
			if got := r.Currency + " " + r.FormattedAmount(); got != tc.wantAmount {
				t.Errorf("amount %q, want %q", got, tc.wantAmount)
			}
			if r.NoSignatureRequired != tc.noSig || r.SignatureRequired != tc.sig {
				t.Errorf("no signature %v signature %v, want %v %v", r.NoSignatureRequired, r.SignatureRequired, tc.noSig, tc.sig)
			}
			if r.Wallet != tc.wallet || r.Funding != tc.funding || r.Instalments != tc.instal {
				t.Errorf("wallet %q %q %d, want %q %q %d", r.Wallet, r.Funding, r.Instalments, tc.wallet, tc.funding, tc.instal)
			}
			if r.Card != "622609******0014" {
				t.Errorf("card %q, want the masked PAN", r.Card)
			}
			if r.Approved != (tc.resp[39] == "00") || r.ResponseCode != tc.resp[39] || r.RRN != "123456789012" {
				t.Errorf("approved %v code %q rrn %q", r.Approved, r.ResponseCode, r.RRN)
			}
			slip := r.String()
			if strings.Contains(slip, pan) {
				t.Fatalf("the slip shows the clear PAN:\n%s", slip)
			}
			if !strings.Contains(slip, tc.wantAmount) || !strings.Contains(slip, r.TerminalID) || !strings.Contains(slip, "POSWITCH TEST SHOP 001") {
				t.Errorf("slip lacks amount, terminal or merchant:\n%s", slip)
			}
			if got := strings.Contains(slip, "NO SIGNATURE REQUIRED"); got != (tc.noSig && r.Approved) {
				t.Errorf("slip prints NO SIGNATURE REQUIRED: %v, want %v:\n%s", got, tc.noSig && r.Approved, slip)
			}
			if got := strings.Contains(slip, "SIGNATURE: _"); got != tc.sig {
				t.Errorf("slip has a signature line: %v, want %v", got, tc.sig)
			}
		})
	}
}

// A swiped card's PAN comes from track 2; the receipt masks it as well.
func TestReceiptOfASwipeMasksTheTrackPAN(t *testing.T) {
	term := terminalsim.DefaultTerminals(1)[0]
	card := cards.MustLookup("4761730000000029") // magstripe-only: swiped
	req := terminalsim.NewPurchase(term, card, 2500, "", 1)
	resp := receiptMessage(t, "0210", map[int]string{37: "000000000001", 38: "XYZ123", 39: "00"})
	r := terminalsim.NewReceipt(term, req, resp)
	if r.Card != card.Masked() || r.EntryMode != "SWIPE" || !r.SignatureRequired || r.Currency != "USD" {
		t.Fatalf("receipt %+v", r)
	}
	if r.AuthCode != "XYZ123" || r.STAN != "000001" {
		t.Fatalf("auth %q stan %q", r.AuthCode, r.STAN)
	}
}

func TestReceiptWithoutAnAnswerIsNotApproved(t *testing.T) {
	term := terminalsim.DefaultTerminals(1)[0]
	req := terminalsim.NewPurchase(term, cards.MustLookup("4761730000000029"), 2500, "", 1)
	r := terminalsim.NewReceipt(term, req, nil)
	if r.Approved || r.SignatureRequired || r.ResponseCode != "" {
		t.Fatalf("receipt %+v", r)
	}
}

func TestSignatureImageIsAPNGAndTheSameForTheSameSeed(t *testing.T) {
	a, b, c := terminalsim.SignatureImage(7), terminalsim.SignatureImage(7), terminalsim.SignatureImage(8)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatalf("same seed same image: %v, other seed other image: %v", bytes.Equal(a, b), !bytes.Equal(a, c))
	}
	img, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	black := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r == 0 {
				black++
			}
		}
	}
	if black < 300 {
		t.Fatalf("only %d inked pixels: no strokes drawn", black)
	}
}

// The chunks of an upload reassemble to the image, each within field 62, numbered n of m.
func TestSignatureChunksReassembleToTheImage(t *testing.T) {
	term := terminalsim.DefaultTerminals(1)[0]
	orig := terminalsim.NewPurchase(term, cards.MustLookup("4761730000000029"), 2500, "", 1)
	img := append(terminalsim.SignatureImage(1), make([]byte, 5000)...) // several chunks
	msgs, err := terminalsim.NewSignatureChunks(term, orig, img, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 2 {
		t.Fatalf("%d chunks", len(msgs))
	}
	var got []byte
	for i, m := range msgs {
		f62 := field(t, m, 62)
		if len(f62) > 996 {
			t.Fatalf("chunk %d: field 62 of %d characters", i+1, len(f62))
		}
		b, err := base64.StdEncoding.DecodeString(f62)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
		if n, m := field(t, m, 71), field(t, m, 72); n != fmt.Sprintf("%04d", i+1) || m != fmt.Sprintf("%04d", len(msgs)) {
			t.Fatalf("chunk %d numbered %s of %s", i+1, n, m)
		}
		if field(t, m, 90) != terminalsim.OriginalData(orig) || field(t, m, 70) != "850" {
			t.Fatalf("chunk %d does not name its original", i+1)
		}
	}
	if !bytes.Equal(got, img) {
		t.Fatal("chunks do not reassemble to the image")
	}
	if _, err := terminalsim.NewSignatureChunks(term, orig, make([]byte, 256<<10+1), 1); err == nil {
		t.Fatal("an image over 256 KiB was chunked")
	}
}
