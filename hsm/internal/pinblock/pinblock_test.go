package pinblock

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPIN(t testing.TB, s string) PIN {
	t.Helper()
	p, err := NewPIN(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPAN(t testing.TB, s string) Account {
	t.Helper()
	a, err := ParsePAN(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tdesKey(t testing.TB, h string) cipher.Block {
	t.Helper()
	k := unhex(t, h)
	if len(k) == 16 {
		k = append(k, k[:8]...)
	}
	b, err := des.NewTripleDESCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func aesKey(t testing.TB, h string) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(unhex(t, h))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixedFill is a random source that returns the same bytes on every read, so that vectors with
// published random fill can be reproduced.
type fixedFill []byte

func (f fixedFill) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = f[i%len(f)]
	}
	return len(p), nil
}

func TestClearBlocksMatchPublishedVectors(t *testing.T) {
	tests := []struct {
		source string
		format Format
		pin    string
		pan    string
		block  string
	}{
		// knovichikhin/psec tests/test_pinblock.py test_encode_pinblock_iso_0 / test_decode_pinblock_iso_0
		{"psec", Format0, "1234", "5555555551234567", "041261AAAAEDCBA9"},
		{"psec", Format0, "123456789", "5555555551234567", "091261032D8DCBA9"},
		{"psec", Format0, "1234567890", "5555555551234567", "0A1261032D82CBA9"},
		{"psec", Format0, "123456789012", "5555555551234567", "0C1261032D8226A9"},
		// knovichikhin/psec psec/pinblock.py encode_pinblock_iso_0 docstring
		{"psec docstring", Format0, "1234", "5544332211009966", "041277CDDEEFF669"},
		// theminesec softpos example PinBlockUtilUnitTest (17-digit PAN)
		{"theminesec", Format0, "123456", "43219876543210987", "0612AC20ABCDEF67"},
		// knovichikhin/psec tests/test_pinblock.py test_encode_pinblock_iso_2
		{"psec", Format2, "1234", "", "241234FFFFFFFFFF"},
		{"psec", Format2, "123456789", "", "29123456789FFFFF"},
		{"psec", Format2, "1234567890", "", "2A1234567890FFFF"},
		{"psec", Format2, "123456789012", "", "2C123456789012FF"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.source, tc.format, tc.block), func(t *testing.T) {
			var acct Account
			if tc.pan != "" {
				acct = mustPAN(t, tc.pan)
			}
			got := make([]byte, tc.format.BlockSize())
			if err := Encode(got, tc.format, mustPIN(t, tc.pin), acct, nil); err != nil {
				t.Fatal(err)
			}
			if h := strings.ToUpper(hex.EncodeToString(got)); h != tc.block {
				t.Errorf("encode = %s, want %s", h, tc.block)
			}
			pin, err := Decode(tc.format, unhex(t, tc.block), acct)
			if err != nil {
				t.Fatal(err)
			}
			if pin.Reveal() != tc.pin {
				t.Errorf("decode = %s, want %s", pin.Reveal(), tc.pin)
			}
		})
	}
}

func TestFormat0AgreesWithAccountNumberField(t *testing.T) {
	// The payShield account-number field of PAN 5555555551234567 is 555555123456.
	acct, err := ParseAccountNumber("555555123456")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	if err := Encode(got, Format0, mustPIN(t, "1234"), acct, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, unhex(t, "041261AAAAEDCBA9")) {
		t.Errorf("got %X", got)
	}
}

func TestDecodeRejectsMalformedBlocks(t *testing.T) {
	pan := "5555555551234567"
	tests := []struct {
		name   string
		format Format
		block  string
		want   error
	}{
		// knovichikhin/psec tests/test_pinblock.py test_decode_pinblock_iso_0_exception
		{"format 0 control nibble 2", Format0, "241261AAAAEDCBA9", cryptoerr.ErrPINBlock},
		{"format 0 short block", Format0, "041261AAAAEDCB", cryptoerr.ErrInvalidInput},
		{"format 0 length 15", Format0, "0F1261AAAAEDCBA9", cryptoerr.ErrPINLength},
		{"format 0 length 2", Format0, "021261AAAAEDCBA9", cryptoerr.ErrPINLength},
		{"format 0 fill not F", Format0, "041261AAAAEDCBAA", cryptoerr.ErrPINBlock},
		{"format 0 PIN digit F", Format0, "051261AAAAEDCBA9", cryptoerr.ErrPINBlock},
		// knovichikhin/psec tests/test_pinblock.py test_decode_pinblock_iso_2_exception
		{"format 2 control nibble 0", Format2, "041234FFFFFFFFFF", cryptoerr.ErrPINBlock},
		{"format 2 short block", Format2, "29123456789FFF", cryptoerr.ErrInvalidInput},
		{"format 2 length 15", Format2, "2F123456789012FF", cryptoerr.ErrPINLength},
		{"format 2 length 2", Format2, "22123456789012FF", cryptoerr.ErrPINLength},
		{"format 2 fill C", Format2, "2C123456789012CF", cryptoerr.ErrPINBlock},
		{"format 2 PIN digit F", Format2, "2C12345678901FFF", cryptoerr.ErrPINBlock},
		// Format 3 fill must be A–F: 0x9 after the PIN (PAN field XOR applied below).
		{"format 3 fill digit 9", Format3, "341234A9BCDEFABC", cryptoerr.ErrPINBlock},
		{"format 4 fill not A", Format4, "441234ABAAAAAAAA0000000000000000", cryptoerr.ErrPINBlock},
		{"format 4 length 13", Format4, "4D1234567890123A0000000000000000", cryptoerr.ErrPINLength},
		{"unknown format 5", Format(5), "041261AAAAEDCBA9", cryptoerr.ErrPINBlockFormat},
	}
	acct := mustPAN(t, pan)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			block := unhex(t, tc.block)
			if tc.format == Format3 {
				// The table gives the clear PIN field; bind it to the PAN as an encoder would.
				pf := acct.panField()
				for i := range block {
					block[i] ^= pf[i]
				}
			}
			_, err := Decode(tc.format, block, acct)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.block) || strings.Contains(err.Error(), pan) {
				t.Errorf("error text leaks the block or PAN: %q", err)
			}
		})
	}
}

func TestFormat4MatchesX924_3Supplement(t *testing.T) {
	// ANSI X9.24-3-2017 supplement, "Calculation of AES PIN Block Format 4" (reproduced in
	// openemv/pinblock test/pinblock_format4_test.c and in shared/reference/hsm-notes.md; the same
	// key, fill and result appear in joinforage's PinBlockIso4Test): PIN key from AES DUKPT BDK
	// FEDCBA9876543210F1F1F1F1F1F1F1F1, KSN 123456789012345600000001.
	key := aesKey(t, "AF8CB133A78F8DC2D1359F18527593FB")
	acct := mustPAN(t, "4111111111111111")
	pin := mustPIN(t, "1234")

	field := make([]byte, 16)
	if err := Encode(field, Format4, pin, acct, fixedFill(unhex(t, "2F69ADDE2E9E7ACE"))); err != nil {
		t.Fatal(err)
	}
	if want := "441234AAAAAAAAAA2F69ADDE2E9E7ACE"; strings.ToUpper(hex.EncodeToString(field)) != want {
		t.Errorf("PIN field = %X, want %s", field, want)
	}
	if pf := acct.panField4(); !bytes.Equal(pf[:], unhex(t, "44111111111111111000000000000000")) {
		t.Errorf("PAN field = %X", pf)
	}
	block := make([]byte, 16)
	if err := Encrypt(block, key, Format4, pin, acct, fixedFill(unhex(t, "2F69ADDE2E9E7ACE"))); err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "A912150391AB65A67E52883D81CE2D15"); !bytes.Equal(block, want) {
		t.Errorf("enciphered = %X, want %X", block, want)
	}
	got, err := Decrypt(key, Format4, block, acct)
	if err != nil || !got.Equal(pin) {
		t.Fatalf("decrypt = %v, %v", got, err)
	}
}

func TestFormat4PANFieldOfOtherLengths(t *testing.T) {
	// openemv/pinblock test/pinblock_format4_test.c "hand made example" (15-digit PAN).
	acct := mustPAN(t, "411111111111111")
	if pf := acct.panField4(); !bytes.Equal(pf[:], unhex(t, "34111111111111110000000000000000")) {
		t.Errorf("PAN field = %X", pf)
	}
	// 19-digit PAN: M = 7.
	acct = mustPAN(t, "1234567890123456789")
	if pf := acct.panField4(); !bytes.Equal(pf[:], unhex(t, "71234567890123456789000000000000")) {
		t.Errorf("PAN field = %X", pf)
	}
}

func TestFormat0UnderDUKPTKeyMatchesX924_1(t *testing.T) {
	// shared/reference/hsm-notes.md, from the ANSI X9.24-1 sample: PIN key of BDK
	// 0123456789ABCDEFFEDCBA9876543210 at KSN FFFF9876543210E00001.
	key := tdesKey(t, "042666B49184CF5C68DE9628D0397B36")
	acct := mustPAN(t, "4012345678909")
	block := make([]byte, 8)
	if err := Encrypt(block, key, Format0, mustPIN(t, "1234"), acct, nil); err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "1B9C1845EB993A7A"); !bytes.Equal(block, want) {
		t.Errorf("got %X, want %X", block, want)
	}
}

func TestFormat3FillIsOnlyAtoF(t *testing.T) {
	acct := mustPAN(t, "4012345678909")
	for i := 0; i < 200; i++ {
		b := make([]byte, 8)
		if err := Encode(b, Format3, mustPIN(t, "12345"), acct, nil); err != nil {
			t.Fatal(err)
		}
		pf := acct.panField()
		for j := range b {
			b[j] ^= pf[j]
		}
		h := strings.ToUpper(hex.EncodeToString(b))
		if !strings.HasPrefix(h, "3512345") {
			t.Fatalf("block %s", h)
		}
		for _, c := range h[7:] {
			if c < 'A' || c > 'F' {
				t.Fatalf("fill %q outside A-F in %s", c, h)
			}
		}
	}
}

func TestRandomFillDiffersBetweenBlocks(t *testing.T) {
	acct := mustPAN(t, "4111111111111111")
	pin := mustPIN(t, "1234")
	for _, f := range []Format{Format1, Format3, Format4} {
		a, b := make([]byte, f.BlockSize()), make([]byte, f.BlockSize())
		if err := Encode(a, f, pin, acct, nil); err != nil {
			t.Fatal(err)
		}
		if err := Encode(b, f, pin, acct, nil); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, b) {
			t.Errorf("%s: two encodings are identical", f)
		}
	}
}

func TestEncodeRejectsBadArguments(t *testing.T) {
	pin := mustPIN(t, "1234")
	acct := mustPAN(t, "4111111111111111")
	acct12, _ := ParseAccountNumber("411111111111")
	tests := []struct {
		name string
		f    Format
		dst  int
		pin  PIN
		acct Account
		want error
	}{
		{"zero PIN", Format0, 8, PIN{}, acct, cryptoerr.ErrPINLength},
		{"format 0 without PAN", Format0, 8, pin, Account{}, cryptoerr.ErrPAN},
		{"format 3 without PAN", Format3, 8, pin, Account{}, cryptoerr.ErrPAN},
		{"format 4 with account number only", Format4, 16, pin, acct12, cryptoerr.ErrPAN},
		{"short buffer", Format0, 7, pin, acct, cryptoerr.ErrInvalidInput},
		{"format 4 in 8 bytes", Format4, 8, pin, acct, cryptoerr.ErrInvalidInput},
		{"unknown format", Format(9), 8, pin, acct, cryptoerr.ErrPINBlockFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Encode(make([]byte, tc.dst), tc.f, tc.pin, tc.acct, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestKeyMustFitFormat(t *testing.T) {
	acct := mustPAN(t, "4111111111111111")
	pin := mustPIN(t, "1234")
	tk := tdesKey(t, "0123456789ABCDEFFEDCBA9876543210")
	ak := aesKey(t, "0123456789ABCDEFFEDCBA9876543210")
	if err := Encrypt(make([]byte, 16), tk, Format4, pin, acct, nil); !errors.Is(err, cryptoerr.ErrPINBlockFormat) {
		t.Errorf("format 4 under TDES: %v", err)
	}
	if err := Encrypt(make([]byte, 8), ak, Format0, pin, acct, nil); !errors.Is(err, cryptoerr.ErrPINBlockFormat) {
		t.Errorf("format 0 under AES: %v", err)
	}
	if _, err := Decrypt(nil, Format0, make([]byte, 8), acct); !errors.Is(err, cryptoerr.ErrKeyLength) {
		t.Errorf("nil key: %v", err)
	}
}

func TestNewPINRejectsBadPINs(t *testing.T) {
	for _, s := range []string{"", "123", "1234567890123", "12a4", "12 4", "１２３４"} {
		if _, err := NewPIN(s); err == nil {
			t.Errorf("NewPIN(%q) accepted", s)
		}
	}
	for _, s := range []string{"0000", "123456789012"} {
		if _, err := NewPIN(s); err != nil {
			t.Errorf("NewPIN(%q): %v", s, err)
		}
	}
}

func TestPANParsing(t *testing.T) {
	for _, s := range []string{"", "12345678901", "12345678901234567890", "411111111111111A"} {
		if _, err := ParsePAN(s); !errors.Is(err, cryptoerr.ErrPAN) {
			t.Errorf("ParsePAN(%q) = %v", s, err)
		}
	}
	// A 12-digit PAN has 11 digits before its check digit: the account number is zero-padded.
	a := mustPAN(t, "123456789012")
	if an := a.AccountNumber(); string(an[:]) != "012345678901" {
		t.Errorf("account number = %s", an)
	}
	a = mustPAN(t, "4012345678909")
	if an := a.AccountNumber(); string(an[:]) != "401234567890" {
		t.Errorf("account number = %s", an)
	}
}

func TestPrintingHidesPINAndPAN(t *testing.T) {
	pin := mustPIN(t, "98765")
	acct := mustPAN(t, "4111119876543210")
	for _, s := range []string{fmt.Sprint(pin), fmt.Sprintf("%v %+v %#v", pin, pin, pin), fmt.Sprintf("%v %#v", acct, acct)} {
		if strings.Contains(s, "98765") || strings.Contains(s, "987654") {
			t.Errorf("printed %q", s)
		}
	}
}

// randomCase draws a PIN, a PAN, a format and matching keys.
func randomCase(t testing.TB, r *mrand.Rand) (PIN, Account, Format, cipher.Block) {
	n := MinPINLength + r.IntN(MaxPINLength-MinPINLength+1)
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(r.IntN(10))
	}
	pin, err := PINFromValues(d)
	if err != nil {
		t.Fatal(err)
	}
	pan := make([]byte, MinPANLength+r.IntN(MaxPANLength-MinPANLength+1))
	for i := range pan {
		pan[i] = '0' + byte(r.IntN(10))
	}
	acct := mustPAN(t, string(pan))
	f := Format(r.IntN(5))
	return pin, acct, f, randomKey(t, f)
}

func randomKey(t testing.TB, f Format) cipher.Block {
	if f == Format4 {
		k := make([]byte, 16)
		rand.Read(k)
		b, err := aes.NewCipher(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	k := make([]byte, 24)
	rand.Read(k)
	b, err := des.NewTripleDESCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncryptThenDecryptRoundTripsRandomPINs(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		pin, acct, f, key := randomCase(t, r)
		block := make([]byte, f.BlockSize())
		if err := Encrypt(block, key, f, pin, acct, nil); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, err := Decrypt(key, f, block, acct)
		if err != nil || !got.Equal(pin) {
			t.Fatalf("%s: round trip of %d-digit PIN: %v", f, pin.Len(), err)
		}
		// A different key must not give the same PIN back.
		if got, err := Decrypt(randomKey(t, f), f, block, acct); err == nil && got.Equal(pin) {
			t.Fatalf("%s: wrong key recovered the PIN", f)
		}
	}
}

func TestTranslateBetweenAllFormatsKeepsThePIN(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	for i := 0; i < 500; i++ {
		pin, acct, from, fromKey := randomCase(t, r)
		to := Format(r.IntN(5))
		toKey := randomKey(t, to)
		in := make([]byte, from.BlockSize())
		if err := Encrypt(in, fromKey, from, pin, acct, nil); err != nil {
			t.Fatal(err)
		}
		out := make([]byte, to.BlockSize())
		if err := Translate(out, fromKey, from, in, toKey, to, acct, nil); err != nil {
			t.Fatalf("%s→%s: %v", from, to, err)
		}
		got, err := Decrypt(toKey, to, out, acct)
		if err != nil || !got.Equal(pin) {
			t.Fatalf("%s→%s: PIN changed: %v", from, to, err)
		}
	}
}

func TestTranslateWithWrongPANFails(t *testing.T) {
	key := tdesKey(t, "0123456789ABCDEFFEDCBA9876543210")
	pin := mustPIN(t, "1234")
	in := make([]byte, 8)
	if err := Encrypt(in, key, Format0, pin, mustPAN(t, "4111111111111111"), nil); err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(key, Format0, in, mustPAN(t, "4111111111111129"))
	if err == nil && got.Equal(pin) {
		t.Fatal("format 0 block decoded to the same PIN under another PAN")
	}
}

func TestZeroValuesDoNotPanic(t *testing.T) {
	var a Account
	if an := a.AccountNumber(); an != [AccountNumberLen]byte{} {
		t.Errorf("zero account number = %q", an)
	}
	_ = a.String()
	_ = a.PAN()
	var p PIN
	_ = p.Reveal()
	if _, err := Decrypt(tdesKey(t, "0123456789ABCDEFFEDCBA9876543210"), Format0, make([]byte, 8), a); !errors.Is(err, cryptoerr.ErrPAN) {
		t.Errorf("format 0 without PAN: %v", err)
	}
}
