package pinblock

import (
	"testing"
)

// BenchmarkTranslateTPKToZPKFormat0 is the switch's hot path: a terminal's format 0 block under its
// TPK re-enciphered under the issuer link's ZPK, key schedules prepared once.
func BenchmarkTranslateTPKToZPKFormat0(b *testing.B) {
	tpk := tdesKey(b, "0123456789ABCDEFFEDCBA9876543210")
	zpk := tdesKey(b, "89ABCDEF01234567FEDCBA9876543210")
	acct := mustPAN(b, "4012345678909")
	in := make([]byte, 8)
	if err := Encrypt(in, tpk, Format0, mustPIN(b, "1234"), acct, nil); err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := Translate(out, tpk, Format0, in, zpk, Format0, acct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateFormat0ToFormat3 adds the random fill of format 3.
func BenchmarkTranslateFormat0ToFormat3(b *testing.B) {
	tpk := tdesKey(b, "0123456789ABCDEFFEDCBA9876543210")
	zpk := tdesKey(b, "89ABCDEF01234567FEDCBA9876543210")
	acct := mustPAN(b, "4012345678909")
	in := make([]byte, 8)
	if err := Encrypt(in, tpk, Format0, mustPIN(b, "1234"), acct, nil); err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := Translate(out, tpk, Format0, in, zpk, Format3, acct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateISO4ToFormat0 is an AES PIN pad's format 4 block translated to a TDES ZPK.
func BenchmarkTranslateISO4ToFormat0(b *testing.B) {
	src := aesKey(b, "AF8CB133A78F8DC2D1359F18527593FB")
	zpk := tdesKey(b, "89ABCDEF01234567FEDCBA9876543210")
	acct := mustPAN(b, "4111111111111111")
	in := make([]byte, 16)
	if err := Encrypt(in, src, Format4, mustPIN(b, "1234"), acct, nil); err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := Translate(out, src, Format4, in, zpk, Format0, acct, nil); err != nil {
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
