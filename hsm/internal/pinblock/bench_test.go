package pinblock

import (
	"crypto/cipher"
	"testing"
)

// BenchmarkTranslateTPKToZPKFormat0 is the switch's hot path: a terminal's format 0 block under its
// TPK re-enciphered under the issuer link's ZPK, key schedules prepared once.
func BenchmarkTranslateTPKToZPKFormat0(b *testing.B) {
	benchTranslate(b, tdesKey(b, "0123456789ABCDEFFEDCBA9876543210"), Format0,
		tdesKey(b, "89ABCDEF01234567FEDCBA9876543210"), Format0, "4012345678909")
}

// BenchmarkTranslateFormat0ToFormat3 adds the random fill of format 3.
func BenchmarkTranslateFormat0ToFormat3(b *testing.B) {
	benchTranslate(b, tdesKey(b, "0123456789ABCDEFFEDCBA9876543210"), Format0,
		tdesKey(b, "89ABCDEF01234567FEDCBA9876543210"), Format3, "4012345678909")
}

// BenchmarkTranslateISO4ToFormat0 is an AES PIN pad's format 4 block translated to a TDES ZPK.
func BenchmarkTranslateISO4ToFormat0(b *testing.B) {
	benchTranslate(b, aesKey(b, "AF8CB133A78F8DC2D1359F18527593FB"), Format4,
		tdesKey(b, "89ABCDEF01234567FEDCBA9876543210"), Format0, "4111111111111111")
}

// benchTranslate enciphers PIN 1234 for pan under from once, then measures translating that block
// to toFormat under to.
func benchTranslate(b *testing.B, from cipher.Block, fromFormat Format, to cipher.Block, toFormat Format, pan string) {
	b.Helper()
	acct := mustPAN(b, pan)
	in := make([]byte, fromFormat.BlockSize())
	if err := Encrypt(in, from, fromFormat, mustPIN(b, "1234"), acct, nil); err != nil {
		b.Fatal(err)
	}
	out := make([]byte, toFormat.BlockSize())
	b.ReportAllocs()
	for b.Loop() {
		if err := Translate(out, from, fromFormat, in, to, toFormat, acct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncryptISO4 is format 4 encipherment alone (two AES blocks and 8 random bytes).
func BenchmarkEncryptISO4(b *testing.B) {
	key := aesKey(b, "AF8CB133A78F8DC2D1359F18527593FB")
	acct := mustPAN(b, "4111111111111111")
	pin := mustPIN(b, "1234")
	out := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		if err := Encrypt(out, key, Format4, pin, acct, nil); err != nil {
			b.Fatal(err)
		}
	}
}
