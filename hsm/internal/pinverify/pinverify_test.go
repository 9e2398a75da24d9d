package pinverify

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/pinblock"
	"github.com/poswitch/poswitch/hsm/internal/tdes"
)

const testPVK = "0123456789ABCDEFFEDCBA9876543210"

func key(t testing.TB, h string) cipher.Block {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tdes.NewCipher(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pin(t testing.TB, s string) pinblock.PIN {
	t.Helper()
	p, err := pinblock.NewPIN(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func table(t testing.TB, s string) DecimalizationTable {
	t.Helper()
	d, err := ParseDecimalizationTable(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestIBM3624MatchesPsec(t *testing.T) {
	// knovichikhin/psec tests/test_pin.py test_generate_ibm3624_pin / test_generate_ibm3624_offset:
	// PVK 0123456789ABCDEFFEDCBA9876543210, table 1234567890123456, PAN 1122334455667788. The
	// validation data is the PAN slice psec takes (offset, length), padded with the pad character.
	pvk := key(t, testPVK)
	tests := []struct {
		validation string
		pad        byte
		offset     string
		pin        string
	}{
		{"1122334455667788", 'F', "0000", "4524"},
		{"1122334455667788", 'f', "0000", "4524"},
		{"1122334455667788", 'F', "1111", "5635"},
		{"1122334455667788", 'F', "6586", "0000"},
		{"1122334455667788", 'F', "7697", "1111"},
		{"1122334455667788", 'F', "7710", "1234"},
		{"11223344556677", 'F', "0000", "5518"},
		{"11223344556677", 'f', "0000", "5518"},
		{"12233445566778", '1', "0000", "3675"},
		{"22334455667788", '1', "0000", "5550"},
	}
	for _, tc := range tests {
		t.Run(tc.validation+"/"+tc.offset, func(t *testing.T) {
			p := IBM3624{Table: table(t, "1234567890123456"), ValidationData: tc.validation, Pad: tc.pad, CheckLength: 4}
			got, err := p.PINFromOffset(pvk, tc.offset)
			if err != nil {
				t.Fatal(err)
			}
			if got.Reveal() != tc.pin {
				t.Errorf("PIN = %s, want %s", got.Reveal(), tc.pin)
			}
			off, err := p.Offset(pvk, pin(t, tc.pin))
			if err != nil {
				t.Fatal(err)
			}
			if off != tc.offset {
				t.Errorf("offset = %s, want %s", off, tc.offset)
			}
			if err := p.VerifyOffset(pvk, pin(t, tc.pin), tc.offset); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

func TestIBM3624NaturalPINMatchesNotes(t *testing.T) {
	// shared/reference/hsm-notes.md: natural PIN 4524, PIN 1234 has offset 7710.
	p := IBM3624{Table: table(t, "1234567890123456"), ValidationData: "1122334455667788", Pad: 'F', CheckLength: 4}
	nat, err := p.NaturalPIN(key(t, testPVK))
	if err != nil {
		t.Fatal(err)
	}
	if nat.Reveal() != "4524" {
		t.Errorf("natural PIN = %s", nat.Reveal())
	}
}

func TestIBM3624WrongPINFails(t *testing.T) {
	pvk := key(t, testPVK)
	p := IBM3624{Table: table(t, "0123456789012345"), ValidationData: "4111111111", Pad: 'F', CheckLength: 4}
	off, err := p.Offset(pvk, pin(t, "1234"))
	if err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{"1235", "0234", "4321", "9999"} {
		if err := p.VerifyOffset(pvk, pin(t, wrong), off); !errors.Is(err, cryptoerr.ErrVerifyFailed) {
			t.Errorf("PIN %s: err = %v", wrong, err)
		}
	}
	// A longer PIN whose first CheckLength digits match verifies, as IBM 3624 checks only those.
	if err := p.VerifyOffset(pvk, pin(t, "123456"), off); err != nil {
		t.Errorf("longer PIN: %v", err)
	}
}

func TestIBM3624RejectsBadParameters(t *testing.T) {
	pvk := key(t, testPVK)
	good := IBM3624{Table: table(t, "1234567890123456"), ValidationData: "1122334455667788", Pad: 'F', CheckLength: 4}
	for _, s := range []string{"123456789012345", "12345678901234567", "123456789012345A"} {
		if _, err := ParseDecimalizationTable(s); !errors.Is(err, cryptoerr.ErrDecimalizationTable) || !errors.Is(err, cryptoerr.ErrInvalidInput) {
			t.Errorf("table %q: %v", s, err)
		}
	}
	bad := map[string]IBM3624{}
	p := good
	p.CheckLength = 3
	bad["check length 3"] = p
	p = good
	p.CheckLength = 13
	bad["check length 13"] = p
	p = good
	p.ValidationData = ""
	bad["no validation data"] = p
	p = good
	p.ValidationData = "11223344556677889"
	bad["17 digits of validation data"] = p
	p = good
	p.ValidationData = "11223344G"
	bad["non-hex validation data"] = p
	p = good
	p.Pad = 'X'
	bad["pad X"] = p
	for name, p := range bad {
		if _, err := p.Offset(pvk, pin(t, "1234")); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	for _, off := range []string{"123", "12345", "12A4"} {
		if err := good.VerifyOffset(pvk, pin(t, "1234"), off); !errors.Is(err, cryptoerr.ErrInvalidInput) {
			t.Errorf("offset %q: %v", off, err)
		}
	}
	if _, err := good.NaturalPIN(nil); !errors.Is(err, cryptoerr.ErrKeyLength) {
		t.Errorf("nil PVK: %v", err)
	}
}

func TestVisaPVVMatchesPsec(t *testing.T) {
	// knovichikhin/psec tests/test_pin.py test_generate_visa_pvv (first row also in hsm-notes.md) and
	// the generate_visa_pvv docstring (PVKI 3).
	pvk := key(t, testPVK)
	tests := []struct {
		pvki int
		pin  string
		pan  string
		pvv  string
	}{
		{1, "4524", "1122334455667788", "8523"},
		{2, "1912", "1122334455667788", "3244"},
		{1, "0570", "1122334455667718", "3144"},
		{1, "8299", "1122334455667708", "4422"},
		{3, "4524", "1122334455667788", "4021"},
	}
	for _, tc := range tests {
		t.Run(tc.pvv, func(t *testing.T) {
			acct, err := pinblock.ParsePAN(tc.pan)
			if err != nil {
				t.Fatal(err)
			}
			got, err := PVV(pvk, acct, tc.pvki, pin(t, tc.pin))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.pvv {
				t.Errorf("PVV = %s, want %s", got, tc.pvv)
			}
			if err := VerifyPVV(pvk, acct, tc.pvki, pin(t, tc.pin), tc.pvv); err != nil {
				t.Errorf("verify: %v", err)
			}
			// The account-number field (12 digits before the check digit) gives the same PVV.
			an := acct.AccountNumber()
			acct12, _ := pinblock.ParseAccountNumber(string(an[:]))
			if got12, _ := PVV(pvk, acct12, tc.pvki, pin(t, tc.pin)); got12 != tc.pvv {
				t.Errorf("PVV from account number = %s", got12)
			}
		})
	}
}

func TestVisaPVVRejectsWrongPINAndBadInput(t *testing.T) {
	pvk := key(t, testPVK)
	acct, _ := pinblock.ParsePAN("1122334455667788")
	if err := VerifyPVV(pvk, acct, 1, pin(t, "4525"), "8523"); !errors.Is(err, cryptoerr.ErrVerifyFailed) {
		t.Errorf("wrong PIN: %v", err)
	}
	if err := VerifyPVV(pvk, acct, 1, pin(t, "4524"), "852"); !errors.Is(err, cryptoerr.ErrInvalidInput) {
		t.Errorf("3-digit PVV: %v", err)
	}
	if _, err := PVV(pvk, acct, 10, pin(t, "4524")); !errors.Is(err, cryptoerr.ErrInvalidInput) {
		t.Errorf("PVKI 10: %v", err)
	}
	if _, err := PVV(pvk, pinblock.Account{}, 1, pin(t, "4524")); !errors.Is(err, cryptoerr.ErrPAN) {
		t.Errorf("no PAN: %v", err)
	}
	if _, err := PVV(pvk, acct, 1, pinblock.PIN{}); !errors.Is(err, cryptoerr.ErrPINLength) {
		t.Errorf("zero PIN: %v", err)
	}
}

func TestGenerateThenVerifyWithRandomKeysAndPINs(t *testing.T) {
	r := mrand.New(mrand.NewPCG(5, 6))
	for i := 0; i < 300; i++ {
		raw := make([]byte, 16)
		rand.Read(raw)
		pvk := key(t, hex.EncodeToString(raw))
		n := 4 + r.IntN(9)
		var sb strings.Builder
		for j := 0; j < n; j++ {
			sb.WriteByte('0' + byte(r.IntN(10)))
		}
		p := pin(t, sb.String())
		var tbl strings.Builder
		for j := 0; j < 16; j++ {
			tbl.WriteByte('0' + byte(r.IntN(10)))
		}
		ibm := IBM3624{Table: table(t, tbl.String()), ValidationData: "4000123456", Pad: 'F', CheckLength: n}
		off, err := ibm.Offset(pvk, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := ibm.VerifyOffset(pvk, p, off); err != nil {
			t.Fatalf("offset of its own PIN does not verify: %v", err)
		}
		back, err := ibm.PINFromOffset(pvk, off)
		if err != nil || !back.Equal(p) {
			t.Fatalf("PIN from offset differs: %v", err)
		}
		acct, _ := pinblock.ParsePAN("40001234567890" + sb.String()[:2])
		pvv, err := PVV(pvk, acct, r.IntN(7), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range pvv {
			if c < '0' || c > '9' {
				t.Fatalf("PVV %q not decimal", pvv)
			}
		}
	}
}
