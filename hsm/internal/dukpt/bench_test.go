package dukpt

import "testing"

// BenchmarkTDESPINKey derives a TDES DUKPT PIN key at a counter with 10 one-bits (the worst case).
func BenchmarkTDESPINKey(b *testing.B) {
	bdk, err := NewTDESBDK(unhex(b, x924_1BDK))
	if err != nil {
		b.Fatal(err)
	}
	ksn := unhex(b, "FFFF9876543210E003FF")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bdk.PINKey(ksn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAESPINKey derives an AES-128 PIN key from an AES-128 BDK at a counter with 16 one-bits
// (the worst case).
func BenchmarkAESPINKey(b *testing.B) {
	bdk, err := NewAESBDK(unhex(b, x924_3BDK))
	if err != nil {
		b.Fatal(err)
	}
	ksn := unhex(b, "12345678901234560000FFFF")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bdk.PINKey(ksn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAES256PINKey is the same from an AES-256 BDK.
func BenchmarkAES256PINKey(b *testing.B) {
	bdk, err := NewAESBDK(unhex(b, x924_3BDK+x924_3BDK))
	if err != nil {
		b.Fatal(err)
	}
	ksn := unhex(b, "12345678901234560000FFFF")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bdk.WorkingKey(ksn, AESPINEncryption, KeyAES256); err != nil {
			b.Fatal(err)
		}
	}
}
