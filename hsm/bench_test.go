package hsm

import (
	"context"
	"testing"
)

func benchTranslate(b *testing.B, from, to PINFormat) {
	ctx := context.Background()
	h := NewDevelopment()
	key := func(f PINFormat) KeyBlock {
		alg := TDES
		if f == ISO4 {
			alg = AES
		}
		return genKey(b, h, UsagePIN, alg)
	}
	src, dst := key(from), key(to)
	card := Card{PAN: "4012345678909"}
	block, err := h.EncryptPIN(ctx, EncryptPIN{Key: src, Format: from, PIN: "1234", Card: card})
	if err != nil {
		b.Fatal(err)
	}
	req := TranslatePIN{SourceKey: src, SourceFormat: from, PINBlock: block, DestKey: dst, DestFormat: to, Card: card}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.TranslatePIN(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslatePIN is the switch's hot path: TPK → ZPK, ISO 0 → ISO 0, TDES keys.
func BenchmarkTranslatePIN(b *testing.B)           { benchTranslate(b, ISO0, ISO0) }
func BenchmarkTranslatePINFormat0To4(b *testing.B) { benchTranslate(b, ISO0, ISO4) }
func BenchmarkTranslatePINFormat4To4(b *testing.B) { benchTranslate(b, ISO4, ISO4) }
func BenchmarkTranslatePINFormat3To0(b *testing.B) { benchTranslate(b, ISO3, ISO0) }

func BenchmarkTranslatePINParallel(b *testing.B) {
	ctx := context.Background()
	h := NewDevelopment()
	tpk, zpk := genKey(b, h, UsagePIN, TDES), genKey(b, h, UsagePIN, TDES)
	card := Card{PAN: "4012345678909"}
	block, _ := h.EncryptPIN(ctx, EncryptPIN{Key: tpk, Format: ISO0, PIN: "1234", Card: card})
	req := TranslatePIN{SourceKey: tpk, SourceFormat: ISO0, PINBlock: block, DestKey: zpk, DestFormat: ISO0, Card: card}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.TranslatePIN(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchDUKPT(b *testing.B, alg KeyAlgorithm, ksn string, format PINFormat) {
	ctx := context.Background()
	h := NewDevelopment()
	bdk, zpk := genKey(b, h, UsageBDK, alg), genKey(b, h, UsagePIN, TDES)
	card := Card{PAN: "4012345678909"}
	k := unhex(b, ksn)
	block, err := h.EncryptPINDUKPT(ctx, DUKPTPINPad{BDK: bdk, KSN: k, Format: format, PIN: "1234", Card: card})
	if err != nil {
		b.Fatal(err)
	}
	req := TranslateDUKPT{BDK: bdk, KSN: k, SourceFormat: format, PINBlock: block, DestKey: zpk, DestFormat: ISO0, Card: card}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.TranslatePINFromDUKPT(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// The DUKPT benchmarks use counters with many one-bits: the slow end of the derivation.
func BenchmarkTranslatePINFromDUKPTTDES(b *testing.B) {
	benchDUKPT(b, TDES, "FFFF9876543210E1FF80", ISO0)
}
func BenchmarkTranslatePINFromDUKPTAES(b *testing.B) {
	benchDUKPT(b, AES, "1234567890123456FFFF0000", ISO4)
}

func BenchmarkVerifyPINPVV(b *testing.B) {
	ctx := context.Background()
	h := NewDevelopment()
	zpk, pvk := genKey(b, h, UsagePIN, TDES), genKey(b, h, UsagePVKVisa, TDES)
	card := Card{PAN: "4012345678909"}
	block, _ := h.EncryptPIN(ctx, EncryptPIN{Key: zpk, Format: ISO0, PIN: "1234", Card: card})
	pvv, _ := h.GeneratePVV(ctx, GeneratePVV{PVK: pvk, PVKI: 1, Card: card, PIN: PINSource{ClearPIN: "1234"}})
	req := VerifyPINPVV{PINKey: zpk, PVK: pvk, PINBlock: block, Format: ISO0, Card: card, PVKI: 1, PVV: pvv}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.VerifyPINPVV(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
