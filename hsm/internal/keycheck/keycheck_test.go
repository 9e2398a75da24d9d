package keycheck

import (
	"crypto/aes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/mac"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTDESCheckValues(t *testing.T) {
	tests := []struct{ key, kcv string }{
		// TDES(0123456789ABCDEFFEDCBA9876543210)[0…0] = 08D7B4FB629D0885, the KCV payShield and
		// psec tests print for this key.
		{"0123456789ABCDEFFEDCBA9876543210", "08D7B4"},
		// Single-length DES 0123456789ABCDEF enciphers the zero block to D5D44FF720683D0D, the
		// well-known check value of this test key.
		{"0123456789ABCDEF", "D5D44F"},
		// A triple-length key with K1=K2=K3 is single DES.
		{"0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF", "D5D44F"},
	}
	for _, tc := range tests {
		got, err := TDES(unhex(t, tc.key))
		if err != nil {
			t.Fatal(err)
		}
		if strings.ToUpper(hex.EncodeToString(got)) != tc.kcv {
			t.Errorf("KCV(%d-byte key) = %X, want %s", len(tc.key)/2, got, tc.kcv)
		}
	}
}

func TestAESCheckValues(t *testing.T) {
	// FIPS-197 / AESAVS: AES-128 with the all-zero key enciphers the zero block to 66E94BD4….
	got, err := AESEncryptZeros(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ToUpper(hex.EncodeToString(got)) != "66E94B" {
		t.Errorf("legacy AES KCV = %X", got)
	}
	// The CMAC check value is the leftmost 3 bytes of CMAC over a zero block.
	key := unhex(t, "2B7E151628AED2A6ABF7158809CF4F3C")
	c, _ := aes.NewCipher(key)
	full, _ := mac.CMAC(c, make([]byte, 16))
	kcv, err := AES(key)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(kcv) != hex.EncodeToString(full[:3]) {
		t.Errorf("AES KCV %X is not CMAC(0) %X", kcv, full[:3])
	}
	if len(kcv) != Len {
		t.Errorf("KCV of %d bytes", len(kcv))
	}
}

func TestCheckValueRejectsBadKeyLengths(t *testing.T) {
	for _, n := range []int{0, 7, 15, 32} {
		if _, err := TDES(make([]byte, n)); !errors.Is(err, cryptoerr.ErrKeyLength) {
			t.Errorf("TDES key of %d bytes: %v", n, err)
		}
	}
	for _, n := range []int{0, 8, 15, 33} {
		if _, err := AES(make([]byte, n)); !errors.Is(err, cryptoerr.ErrKeyLength) {
			t.Errorf("AES key of %d bytes: %v", n, err)
		}
	}
}
