package hsm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/des"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func importKey(t testing.TB, h *HSM, usage KeyUsage, alg KeyAlgorithm, mode ModeOfUse, clearHex string) KeyBlock {
	t.Helper()
	kb, _, err := h.ImportClearKey(context.Background(), KeySpec{Usage: usage, Algorithm: alg, ModeOfUse: mode}, unhex(t, clearHex))
	if err != nil {
		t.Fatalf("importing %s key: %v", usage, err)
	}
	return kb
}

func genKey(t testing.TB, h *HSM, usage KeyUsage, alg KeyAlgorithm) KeyBlock {
	t.Helper()
	kb, _, err := h.GenerateKey(context.Background(), KeySpec{Usage: usage, Algorithm: alg})
	if err != nil {
		t.Fatalf("generating %s key: %v", usage, err)
	}
	return kb
}

// TestEncryptPINFormat0MatchesPublishedBlock checks the clear format 0 block of the hsm-notes vector
// (PIN 1234, PAN 5555555551234567 → 041261AAAAEDCBA9, from the ISO 9564 worked example reproduced
// in psec tests/test_pinblock.py) by enciphering it under a known TPK and deciphering with crypto/des.
func TestEncryptPINFormat0MatchesPublishedBlock(t *testing.T) {
	h := NewDevelopment()
	const tpkHex = "0123456789ABCDEFFEDCBA9876543210"
	tpk := importKey(t, h, UsagePIN, TDES, ModeBoth, tpkHex)
	block, err := h.EncryptPIN(context.Background(), EncryptPIN{Key: tpk, Format: ISO0, PIN: "1234", Card: Card{PAN: "5555555551234567"}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := des.NewTripleDESCipher(append(unhex(t, tpkHex), unhex(t, tpkHex)[:8]...))
	clearBlock := make([]byte, 8)
	c.Decrypt(clearBlock, block)
	if got := strings.ToUpper(hex.EncodeToString(clearBlock)); got != "041261AAAAEDCBA9" {
		t.Fatalf("clear block = %s, want 041261AAAAEDCBA9", got)
	}
}

// TestTranslatePINThenVerifyRoundTrips translates between every pair of formats and key kinds, and
// checks the result by comparing with a block enciphered directly in the destination (deterministic
// formats) or by translating back to format 0 under a TDES key.
func TestTranslatePINThenVerifyRoundTrips(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	tdesTPK := genKey(t, h, UsagePIN, TDES)
	tdesZPK := genKey(t, h, UsagePIN, TDES)
	aesTPK := genKey(t, h, UsagePIN, AES)
	aesZPK := genKey(t, h, UsagePIN, AES)
	check := genKey(t, h, UsagePIN, TDES)
	card := Card{PAN: "4111111111111111"}
	keyFor := func(f PINFormat, tdes, aes KeyBlock) KeyBlock {
		if f == ISO4 {
			return aes
		}
		return tdes
	}
	for _, pin := range []string{"1234", "0000", "987654321012"} {
		for _, from := range []PINFormat{ISO0, ISO1, ISO3, ISO4} {
			for _, to := range []PINFormat{ISO0, ISO1, ISO3, ISO4} {
				src, dst := keyFor(from, tdesTPK, aesTPK), keyFor(to, tdesZPK, aesZPK)
				in, err := h.EncryptPIN(ctx, EncryptPIN{Key: src, Format: from, PIN: pin, Card: card})
				if err != nil {
					t.Fatal(err)
				}
				out, err := h.TranslatePIN(ctx, TranslatePIN{SourceKey: src, SourceFormat: from, PINBlock: in, DestKey: dst, DestFormat: to, Card: card})
				if err != nil {
					t.Fatalf("%v→%v: %v", from, to, err)
				}
				// Bring it back to format 0 under a third key and compare with a direct encipherment.
				back, err := h.TranslatePIN(ctx, TranslatePIN{SourceKey: dst, SourceFormat: to, PINBlock: out, DestKey: check, DestFormat: ISO0, Card: card})
				if err != nil {
					t.Fatalf("%v→%v back: %v", from, to, err)
				}
				want, _ := h.EncryptPIN(ctx, EncryptPIN{Key: check, Format: ISO0, PIN: pin, Card: card})
				if !bytes.Equal(back, want) {
					t.Fatalf("%v→%v: PIN changed in translation", from, to)
				}
			}
		}
	}
}

func TestTranslatePINRefusesKeysOfTheWrongUsageOrMode(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	tpk := genKey(t, h, UsagePIN, TDES)
	zpk := genKey(t, h, UsagePIN, TDES)
	cvk := genKey(t, h, UsageCVK, TDES)
	encryptOnly, _, err := h.GenerateKey(ctx, KeySpec{Usage: UsagePIN, Algorithm: TDES, ModeOfUse: ModeEncrypt})
	if err != nil {
		t.Fatal(err)
	}
	decryptOnly, _, err := h.GenerateKey(ctx, KeySpec{Usage: UsagePIN, Algorithm: TDES, ModeOfUse: ModeDecrypt})
	if err != nil {
		t.Fatal(err)
	}
	card := Card{PAN: "4111111111111111"}
	block, _ := h.EncryptPIN(ctx, EncryptPIN{Key: tpk, Format: ISO0, PIN: "1234", Card: card})
	blockEO, _ := h.EncryptPIN(ctx, EncryptPIN{Key: encryptOnly, Format: ISO0, PIN: "1234", Card: card})

	for _, tc := range []struct {
		name     string
		src, dst KeyBlock
		in       []byte
		want     error
	}{
		{"CVK as destination ZPK", tpk, cvk, block, ErrKeyUsage},
		{"CVK as source TPK", cvk, zpk, block, ErrKeyUsage},
		{"encrypt-only key as source", encryptOnly, zpk, blockEO, ErrKeyMode},
		{"decrypt-only key as destination", tpk, decryptOnly, block, ErrKeyMode},
		{"garbage key block", KeyBlock("D0016P0TB00E0000"), zpk, block, ErrKeyBlockFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.TranslatePIN(ctx, TranslatePIN{SourceKey: tc.src, SourceFormat: ISO0, PINBlock: tc.in, DestKey: tc.dst, DestFormat: ISO0, Card: card})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTranslatePINRefusesKeyBlockFromAnotherLMK(t *testing.T) {
	ctx := context.Background()
	h, other := NewDevelopment(), NewDevelopment()
	foreign := genKey(t, other, UsagePIN, TDES)
	zpk := genKey(t, h, UsagePIN, TDES)
	_, err := h.TranslatePIN(ctx, TranslatePIN{SourceKey: foreign, SourceFormat: ISO0, PINBlock: make([]byte, 8), DestKey: zpk, DestFormat: ISO0, Card: Card{PAN: "4111111111111111"}})
	if !errors.Is(err, ErrKeyBlockAuth) || Code(err) != "A4" {
		t.Fatalf("err = %v (code %s), want key block authentication failure", err, Code(err))
	}
}

func TestTranslatePINReportsBadPINBlocksWithTheirCodes(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	const tpkHex = "0123456789ABCDEFFEDCBA9876543210"
	tpk := importKey(t, h, UsagePIN, TDES, ModeBoth, tpkHex)
	zpk := genKey(t, h, UsagePIN, TDES)
	c, _ := des.NewTripleDESCipher(append(unhex(t, tpkHex), unhex(t, tpkHex)[:8]...))
	enc := func(clearHex string) []byte {
		b := make([]byte, 8)
		c.Encrypt(b, unhex(t, clearHex))
		return b
	}
	card := Card{AccountNumber: "555555123456"}
	for _, tc := range []struct {
		name  string
		block []byte
		code  string
	}{
		{"PIN of 3 digits", enc("031234FFFFFFFFFF"), "24"},
		{"wrong control nibble", enc("241234FFFFFFFFFF"), "20"},
		{"short block", []byte{1, 2, 3}, "15"},
	} {
		_, err := h.TranslatePIN(ctx, TranslatePIN{SourceKey: tpk, SourceFormat: ISO0, PINBlock: tc.block, DestKey: zpk, DestFormat: ISO0, Card: card})
		if Code(err) != tc.code {
			t.Errorf("%s: code %s (%v), want %s", tc.name, Code(err), err, tc.code)
		}
	}
	if _, err := h.TranslatePIN(ctx, TranslatePIN{SourceKey: tpk, SourceFormat: PINFormat(7), PINBlock: enc("041234FFFFFFFFFF"), DestKey: zpk, DestFormat: ISO0, Card: card}); Code(err) != "23" {
		t.Errorf("format 7: code %s, want 23", Code(err))
	}
	// Format 4 needs an AES key: a TDES key must be refused, not misused.
	if _, err := h.TranslatePIN(ctx, TranslatePIN{SourceKey: tpk, SourceFormat: ISO0, PINBlock: enc("041234FFFFFFFFFF"), DestKey: zpk, DestFormat: ISO4, Card: Card{PAN: "5555555551234567"}}); err == nil {
		t.Errorf("format 4 under a TDES key accepted")
	}
}

// TestEncryptPINFormat4UnderAESKeyIsDecipherable checks ISO 4 against an independent decipherment
// with crypto/aes: D(D(block) XOR PAN field) must be the PIN field 4 4 1234 AAAAAAAAAA + 8 bytes.
func TestEncryptPINFormat4UnderAESKeyIsDecipherable(t *testing.T) {
	h := NewDevelopment()
	const keyHex = "AF8CB133A78F8DC2D1359F18527593FB"
	k := importKey(t, h, UsagePIN, AES, ModeBoth, keyHex)
	block, err := h.EncryptPIN(context.Background(), EncryptPIN{Key: k, Format: ISO4, PIN: "1234", Card: Card{PAN: "4111111111111111"}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := aes.NewCipher(unhex(t, keyHex))
	x := make([]byte, 16)
	c.Decrypt(x, block)
	panField := unhex(t, "44111111111111111000000000000000")
	for i := range x {
		x[i] ^= panField[i]
	}
	c.Decrypt(x, x)
	if got := strings.ToUpper(hex.EncodeToString(x[:8])); got != "441234AAAAAAAAAA" {
		t.Fatalf("PIN field = %s, want 441234AAAAAAAAAA", got)
	}
}
