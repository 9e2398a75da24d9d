package hsm

import (
	"context"
	"errors"
	"testing"
)

// Vectors from /work/shared/reference/hsm-notes.md, as published in psec tests/test_pin.py
// (IBM 3624: PVK 0123…3210, table 1234567890123456, validation data 1122334455667788 → natural PIN
// 4524, PIN 1234 has offset 7710; Visa PVV: same PVK, PAN 1122334455667788, PVKI 1, PIN 4524 → 8523).
const (
	vectorPVK   = "0123456789ABCDEFFEDCBA9876543210"
	vectorTable = "1234567890123456"
	vectorVData = "1122334455667788"
	vectorPAN   = "1122334455667788"
)

func TestGenerateOffsetAndPVVMatchPublishedVectors(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	ibm := importKey(t, h, UsagePVKIBM, TDES, ModeMAC, vectorPVK)
	visa := importKey(t, h, UsagePVKVisa, TDES, ModeMAC, vectorPVK)
	method := IBM3624{DecimalisationTable: vectorTable, ValidationData: vectorVData}
	offset, err := h.GenerateOffset(ctx, GenerateOffset{PVK: ibm, Method: method, Card: Card{PAN: vectorPAN}, PIN: PINSource{ClearPIN: "1234"}})
	if err != nil || offset != "7710" {
		t.Fatalf("offset = %q, %v; want 7710", offset, err)
	}
	natural, err := h.GenerateOffset(ctx, GenerateOffset{PVK: ibm, Method: method, Card: Card{PAN: vectorPAN}, PIN: PINSource{ClearPIN: "4524"}})
	if err != nil || natural != "0000" {
		t.Fatalf("natural PIN 4524 offset = %q, %v; want 0000", natural, err)
	}
	pvv, err := h.GeneratePVV(ctx, GeneratePVV{PVK: visa, PVKI: 1, Card: Card{PAN: vectorPAN}, PIN: PINSource{ClearPIN: "4524"}})
	if err != nil || pvv != "8523" {
		t.Fatalf("PVV = %q, %v; want 8523", pvv, err)
	}
	// The usages are not interchangeable.
	if _, err := h.GeneratePVV(ctx, GeneratePVV{PVK: ibm, PVKI: 1, Card: Card{PAN: vectorPAN}, PIN: PINSource{ClearPIN: "4524"}}); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("V1 key for PVV: err = %v, want ErrKeyUsage", err)
	}
}

func TestVerifyPINAcceptsRightPINAndRejectsWrongOne(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	ibm := importKey(t, h, UsagePVKIBM, TDES, ModeMAC, vectorPVK)
	visa := importKey(t, h, UsagePVKVisa, TDES, ModeMAC, vectorPVK)
	method := IBM3624{DecimalisationTable: vectorTable, ValidationData: vectorVData}
	card := Card{PAN: vectorPAN}
	tpk := genKey(t, h, UsagePIN, TDES)
	zpkAES := genKey(t, h, UsagePIN, AES)

	offset, _ := h.GenerateOffset(ctx, GenerateOffset{PVK: ibm, Method: method, Card: card, PIN: PINSource{ClearPIN: "1234"}})
	pvv, _ := h.GeneratePVV(ctx, GeneratePVV{PVK: visa, PVKI: 1, Card: card, PIN: PINSource{ClearPIN: "1234"}})

	for _, tc := range []struct {
		pin  string
		key  KeyBlock
		f    PINFormat
		want error
	}{
		{"1234", tpk, ISO0, nil},
		{"1234", zpkAES, ISO4, nil},
		{"1234", tpk, ISO3, nil},
		{"1235", tpk, ISO0, ErrPINMismatch},
		{"4321", zpkAES, ISO4, ErrPINMismatch},
	} {
		block, err := h.EncryptPIN(ctx, EncryptPIN{Key: tc.key, Format: tc.f, PIN: tc.pin, Card: card})
		if err != nil {
			t.Fatal(err)
		}
		errOffset := h.VerifyPINOffset(ctx, VerifyPINOffset{PINKey: tc.key, PVK: ibm, PINBlock: block, Format: tc.f, Card: card, Method: method, Offset: offset})
		errPVV := h.VerifyPINPVV(ctx, VerifyPINPVV{PINKey: tc.key, PVK: visa, PINBlock: block, Format: tc.f, Card: card, PVKI: 1, PVV: pvv})
		for name, err := range map[string]error{"offset": errOffset, "PVV": errPVV} {
			if tc.want == nil && err != nil {
				t.Errorf("%s %v PIN %d digits: %v", name, tc.f, len(tc.pin), err)
			}
			if tc.want != nil && (!errors.Is(err, tc.want) || Code(err) != "01") {
				t.Errorf("%s %v wrong PIN: err = %v (code %s)", name, tc.f, err, Code(err))
			}
		}
	}
	// Generated from a PIN block rather than clear digits, the PVV is the same.
	block, _ := h.EncryptPIN(ctx, EncryptPIN{Key: tpk, Format: ISO0, PIN: "1234", Card: card})
	pvv2, err := h.GeneratePVV(ctx, GeneratePVV{PVK: visa, PVKI: 1, Card: card, PIN: PINSource{PINKey: tpk, Format: ISO0, PINBlock: block}})
	if err != nil || pvv2 != pvv {
		t.Fatalf("PVV from PIN block = %q, %v; want %q", pvv2, err, pvv)
	}
	// A PVK used as a PIN key, and a bad decimalisation table, are request errors, not mismatches.
	if err := h.VerifyPINPVV(ctx, VerifyPINPVV{PINKey: visa, PVK: visa, PINBlock: block, Format: ISO0, Card: card, PVKI: 1, PVV: pvv}); !errors.Is(err, ErrKeyUsage) {
		t.Errorf("PVK as PIN key: %v", err)
	}
	bad := method
	bad.DecimalisationTable = "12345678901234XX"
	if err := h.VerifyPINOffset(ctx, VerifyPINOffset{PINKey: tpk, PVK: ibm, PINBlock: block, Format: ISO0, Card: card, Method: bad, Offset: offset}); errors.Is(err, ErrPINMismatch) || err == nil {
		t.Errorf("bad decimalisation table: %v", err)
	}
}
