package hsm

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// CVV vector: CVK 0123456789ABCDEF ‖ FEDCBA9876543210, PAN 4123456789012345, expiry 8701, service
// code 101 → 561 (Visa's published example, reproduced in psec tests/test_cvv.py and hsm-notes.md).
func TestCVVMatchesPublishedVectorAndRejectsWrongValue(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	cvk := importKey(t, h, UsageCVK, TDES, ModeMAC, "0123456789ABCDEFFEDCBA9876543210")
	got, err := h.GenerateCVV(ctx, GenerateCVV{CVK: cvk, PAN: "4123456789012345", Expiry: "8701", ServiceCode: "101"})
	if err != nil || got != "561" {
		t.Fatalf("CVV = %q, %v; want 561", got, err)
	}
	if err := h.VerifyCVV(ctx, VerifyCVV{CVK: cvk, PAN: "4123456789012345", Expiry: "8701", ServiceCode: "101", CVV: "561"}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	err = h.VerifyCVV(ctx, VerifyCVV{CVK: cvk, PAN: "4123456789012345", Expiry: "8701", ServiceCode: "101", CVV: "562"})
	if !errors.Is(err, ErrVerificationFailed) || Code(err) != "01" {
		t.Fatalf("wrong CVV: %v", err)
	}
	// CVV2 and iCVV differ from the stripe CVV.
	cvv2, _ := h.GenerateCVV(ctx, GenerateCVV{CVK: cvk, PAN: "4123456789012345", Expiry: "8701", ServiceCode: ServiceCodeCVV2})
	icvv, _ := h.GenerateCVV(ctx, GenerateCVV{CVK: cvk, PAN: "4123456789012345", Expiry: "8701", ServiceCode: ServiceCodeICVV})
	if len(cvv2) != 3 || len(icvv) != 3 {
		t.Fatalf("CVV2 %q iCVV %q", cvv2, icvv)
	}
	// A PIN key is not a CVK; a generate-only CVK cannot verify.
	zpk := genKey(t, h, UsagePIN, TDES)
	if _, err := h.GenerateCVV(ctx, GenerateCVV{CVK: zpk, PAN: "4123456789012345", Expiry: "8701", ServiceCode: "101"}); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("ZPK as CVK: %v", err)
	}
	genOnly, _, _ := h.ImportClearKey(ctx, KeySpec{Usage: UsageCVK, Algorithm: TDES, ModeOfUse: ModeGenerate}, unhex(t, "0123456789ABCDEFFEDCBA9876543210"))
	if err := h.VerifyCVV(ctx, VerifyCVV{CVK: genOnly, PAN: "4123456789012345", Expiry: "8701", ServiceCode: "101", CVV: "561"}); !errors.Is(err, ErrKeyMode) {
		t.Fatalf("generate-only CVK verifying: %v", err)
	}
}

// MAC vectors: ANSI X9.19 retail MAC, key 0123…3210, "Now is the time for all " → A1C72E74EA3FA9B6
// (ANSI X9.19 example, in psec tests/test_mac.py); AES-CMAC from RFC 4493 section 4.
func TestMACMatchesPublishedVectors(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	retail := importKey(t, h, UsageMACAlg3, TDES, ModeMAC, "0123456789ABCDEFFEDCBA9876543210")
	cmacKey := importKey(t, h, UsageMACCMAC, AES, ModeMAC, "2B7E151628AED2A6ABF7158809CF4F3C")
	for _, v := range []struct {
		name string
		key  KeyBlock
		data []byte
		len  int
		want string
	}{
		{"X9.19", retail, []byte("Now is the time for all "), 8, "A1C72E74EA3FA9B6"},
		{"RFC 4493 empty", cmacKey, nil, 16, "BB1D6929E95937287FA37D129B756746"},
		{"RFC 4493 16 bytes", cmacKey, unhex(t, "6BC1BEE22E409F96E93D7E117393172A"), 16, "070A16B46B4D4144F79BDD9DD04A287C"},
	} {
		got, err := h.GenerateMAC(ctx, GenerateMAC{Key: v.key, Data: v.data, Length: v.len})
		if err != nil || !bytes.Equal(got, unhex(t, v.want)) {
			t.Errorf("%s: MAC = %X, %v; want %s", v.name, got, err, v.want)
			continue
		}
		if err := h.VerifyMAC(ctx, VerifyMAC{Key: v.key, Data: v.data, MAC: got[:4]}); err != nil {
			t.Errorf("%s: verify truncated: %v", v.name, err)
		}
		bad := append([]byte(nil), got...)
		bad[0] ^= 1
		if err := h.VerifyMAC(ctx, VerifyMAC{Key: v.key, Data: v.data, MAC: bad}); !errors.Is(err, ErrVerificationFailed) {
			t.Errorf("%s: altered MAC: %v", v.name, err)
		}
	}
	pvk := genKey(t, h, UsagePVKVisa, TDES)
	if _, err := h.GenerateMAC(ctx, GenerateMAC{Key: pvk, Data: []byte("x")}); !errors.Is(err, ErrKeyUsage) {
		t.Errorf("PVK as MAC key: %v", err)
	}
}

// EMV vector (pyemv tests/test_kd_hsm.py::test_derive_icc_mk_a_psn, reproduced in hsm-notes.md):
// option A forced on a 17-digit PAN: IMK 0123…3210, PAN 12345678901234567,
// PSN 45, R 1234567890123456, data 0123456789ABCDEF0123456789ABCDEF → ARQC 19C1FBC83EBDC0D5; ARPC
// method 1 with ARC 0000 under the ICC master key → 78A372523FA35A03.
func TestARQCAndARPCMatchPublishedVectors(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	imk := importKey(t, h, UsageEMVMasterAC, TDES, ModeDerive, "0123456789ABCDEFFEDCBA9876543210")
	card := EMVCard{IMK: imk, PAN: "12345678901234567", PSN: "45", MasterKeyOption: MasterKeyOptionA, Diversifier: unhex(t, "1234567890123456"), ARPCUnderMasterKey: true}
	data := unhex(t, "0123456789ABCDEF0123456789ABCDEF")
	arqc, err := h.GenerateARQC(ctx, card, data)
	if err != nil || !bytes.Equal(arqc, unhex(t, "19C1FBC83EBDC0D5")) {
		t.Fatalf("ARQC = %X, %v; want 19C1FBC83EBDC0D5", arqc, err)
	}
	arpc, err := h.VerifyARQC(ctx, VerifyARQC{Card: card, Data: data, ARQC: arqc, ARPCMethod: ARPCMethod1, ARC: []byte{0, 0}})
	if err != nil || !bytes.Equal(arpc, unhex(t, "78A372523FA35A03")) {
		t.Fatalf("ARPC = %X, %v; want 78A372523FA35A03", arpc, err)
	}
	bad := append([]byte(nil), arqc...)
	bad[7] ^= 1
	if _, err := h.VerifyARQC(ctx, VerifyARQC{Card: card, Data: data, ARQC: bad}); !errors.Is(err, ErrVerificationFailed) {
		t.Fatalf("altered ARQC: %v", err)
	}
	// ATC-based common session key round trip with ARPC method 2.
	card2 := EMVCard{IMK: imk, PAN: "4761739001010010", PSN: "01", ATC: 0x0042}
	arqc2, err := h.GenerateARQC(ctx, card2, data)
	if err != nil {
		t.Fatal(err)
	}
	arpc2, err := h.VerifyARQC(ctx, VerifyARQC{Card: card2, Data: data, ARQC: arqc2, ARPCMethod: ARPCMethod2, CSU: []byte{0, 0, 0, 0}})
	if err != nil || len(arpc2) != 4 {
		t.Fatalf("method 2: %X, %v", arpc2, err)
	}
	card2.ATC++
	if _, err := h.VerifyARQC(ctx, VerifyARQC{Card: card2, Data: data, ARQC: arqc2}); !errors.Is(err, ErrVerificationFailed) {
		t.Fatalf("ARQC under another ATC verified: %v", err)
	}
}
