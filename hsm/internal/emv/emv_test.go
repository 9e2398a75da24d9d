package emv

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/tdes"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func upper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func imk(t testing.TB, h string) cipher.Block {
	t.Helper()
	c, err := tdes.NewCipher(unhex(t, h))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const testIMK = "0123456789ABCDEFFEDCBA9876543210"

func TestMasterKeyDerivationMatchesPyemv(t *testing.T) {
	// knovichikhin/pyemv pyemv/kd.py derive_icc_mk_a / derive_icc_mk_b docstrings.
	k := imk(t, testIMK)
	a, err := MasterKeyOptionA(k, "12345678901234567", "01")
	if err != nil {
		t.Fatal(err)
	}
	if upper(a[:]) != "73AD54688CEF2934B0979857E3C719F1" {
		t.Errorf("option A = %X", a)
	}
	b, err := MasterKeyOptionB(k, "12345678901234567", "01")
	if err != nil {
		t.Fatal(err)
	}
	if upper(b[:]) != "AD406D7F6D7570916D75E5DCAB8CF737" {
		t.Errorf("option B = %X", b)
	}
	// MasterKey picks B for a 17-digit PAN and A for a 16-digit one.
	if m, _ := MasterKey(k, "12345678901234567", "01"); m != b {
		t.Errorf("MasterKey(17 digits) is not option B")
	}
	a16, _ := MasterKeyOptionA(k, "1234567890123456", "01")
	if m, _ := MasterKeyOptionB(k, "1234567890123456", "01"); m != a16 {
		t.Errorf("option B of a 16-digit PAN is not option A")
	}
	// An empty PSN means 00.
	x, _ := MasterKeyOptionA(k, "1234567890123456", "")
	y, _ := MasterKeyOptionA(k, "1234567890123456", "00")
	if x != y {
		t.Errorf("empty PSN differs from 00")
	}
}

func TestCommonSessionKeyMatchesPyemv(t *testing.T) {
	// knovichikhin/pyemv pyemv/kd.py derive_common_sk docstring: R = ATC 001C ‖ 000000000000.
	sk, err := CommonSessionKey(unhex(t, testIMK), ATCDiversifier(0x001C))
	if err != nil {
		t.Fatal(err)
	}
	if upper(sk[:]) != "E9FB384AF807B940FEDCEA613461B0C4" {
		t.Errorf("session key = %X", sk)
	}
}

func TestARQCAndARPCMatchPyemv(t *testing.T) {
	// knovichikhin/pyemv pyemv/ac.py docstrings (generate_ac, generate_arpc_1, generate_arpc_2).
	sk := unhex(t, "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
	data := unhex(t, "000000002000"+"000000000000"+"0124"+"0000008000"+"0124"+"110309"+"00"+"3804823E"+"5800"+"0001")
	arqc, err := GenerateARQC(sk, data)
	if err != nil {
		t.Fatal(err)
	}
	if upper(arqc) != "3B76CF10FECD8789" {
		t.Errorf("ARQC = %X", arqc)
	}
	if err := VerifyARQC(sk, data, arqc); err != nil {
		t.Errorf("verify: %v", err)
	}
	arpc1, err := ARPCMethod1(sk, unhex(t, "1234567890ABCDEF"), unhex(t, "0000"))
	if err != nil {
		t.Fatal(err)
	}
	if upper(arpc1) != "F5E6F44147E2F1B0" {
		t.Errorf("ARPC method 1 = %X", arpc1)
	}
	arpc2, err := ARPCMethod2(sk, unhex(t, "1234567890ABCDEF"), unhex(t, "00000000"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if upper(arpc2) != "9308BEBC" {
		t.Errorf("ARPC method 2 = %X", arpc2)
	}
}

func TestHSMNotesEMVChain(t *testing.T) {
	// shared/reference/hsm-notes.md: IMK 0123…3210, PAN 12345678901234567, PSN 45; session key by
	// the common session key method with R = 1234567890123456; ARQC over 0123456789ABCDEF×2 with
	// padding method 2; ARPC method 1 with ARC 0000 under the ICC master key.
	mk, err := MasterKeyOptionA(imk(t, testIMK), "12345678901234567", "45")
	if err != nil {
		t.Fatal(err)
	}
	var r [8]byte
	copy(r[:], unhex(t, "1234567890123456"))
	sk, err := CommonSessionKey(mk[:], r)
	if err != nil {
		t.Fatal(err)
	}
	arqc, err := GenerateARQC(sk[:], unhex(t, "0123456789ABCDEF0123456789ABCDEF"))
	if err != nil {
		t.Fatal(err)
	}
	if upper(arqc) != "19C1FBC83EBDC0D5" {
		t.Errorf("ARQC = %X, want 19C1FBC83EBDC0D5", arqc)
	}
	arpc, err := ARPCMethod1(mk[:], arqc, unhex(t, "0000"))
	if err != nil {
		t.Fatal(err)
	}
	if upper(arpc) != "78A372523FA35A03" {
		t.Errorf("ARPC = %X, want 78A372523FA35A03", arpc)
	}
}

func TestAESCryptogramIsTruncatedCMAC(t *testing.T) {
	// With an AES session key the cryptogram is the leftmost 8 bytes of AES-CMAC (EMV Book 2 A1.2.2).
	// RFC 4493 example 2: key 2B7E…3C, message 6BC1…2A → CMAC 070A16B46B4D4144….
	arqc, err := GenerateARQCAES(unhex(t, "2B7E151628AED2A6ABF7158809CF4F3C"), unhex(t, "6BC1BEE22E409F96E93D7E117393172A"))
	if err != nil {
		t.Fatal(err)
	}
	if upper(arqc) != "070A16B46B4D4144" {
		t.Errorf("AES ARQC = %X", arqc)
	}
	if err := VerifyARQCAES(unhex(t, "2B7E151628AED2A6ABF7158809CF4F3C"), unhex(t, "6BC1BEE22E409F96E93D7E117393172A"), arqc); err != nil {
		t.Error(err)
	}
}

func TestEMVRejectsBadInput(t *testing.T) {
	k := imk(t, testIMK)
	sk := unhex(t, "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
	checks := []struct {
		name string
		err  error
		want error
	}{
		{"PAN of 11 digits", second(MasterKeyOptionA(k, "12345678901", "00")), cryptoerr.ErrPAN},
		{"PAN with a letter", second(MasterKeyOptionB(k, "1234567890123456A", "00")), cryptoerr.ErrPAN},
		{"PSN of 3 digits", second(MasterKeyOptionA(k, "1234567890123456", "001")), cryptoerr.ErrInvalidInput},
		{"8-byte master key", second(CommonSessionKey(sk[:8], [8]byte{})), cryptoerr.ErrKeyLength},
		// knovichikhin/pyemv tests/test_ac.py exceptions
		{"8-byte session key", second(GenerateARQC(sk[:8], []byte{1})), cryptoerr.ErrKeyLength},
		{"24-byte session key", second(GenerateARQC(append(sk, sk[:8]...), []byte{1})), cryptoerr.ErrKeyLength},
		{"4-byte ARQC for ARPC 1", second(ARPCMethod1(sk, unhex(t, "12345678"), unhex(t, "0000"))), cryptoerr.ErrInvalidInput},
		{"9-byte ARQC for ARPC 1", second(ARPCMethod1(sk, unhex(t, "1234567890ABCDEF12"), unhex(t, "0000"))), cryptoerr.ErrInvalidInput},
		{"1-byte ARC", second(ARPCMethod1(sk, unhex(t, "1234567890123456"), unhex(t, "00"))), cryptoerr.ErrInvalidInput},
		{"3-byte ARC", second(ARPCMethod1(sk, unhex(t, "1234567890123456"), unhex(t, "001122"))), cryptoerr.ErrInvalidInput},
		{"3-byte CSU", second(ARPCMethod2(sk, unhex(t, "1234567890121456"), unhex(t, "123456"), nil)), cryptoerr.ErrInvalidInput},
		{"5-byte CSU", second(ARPCMethod2(sk, unhex(t, "1234567890121456"), unhex(t, "1234567890"), nil)), cryptoerr.ErrInvalidInput},
		{"9 bytes of proprietary data", second(ARPCMethod2(sk, unhex(t, "1234567890121456"), unhex(t, "12345678"), unhex(t, "123456789012345678"))), cryptoerr.ErrInvalidInput},
		{"empty ARQC data", second(GenerateARQC(sk, nil)), cryptoerr.ErrInvalidInput},
		{"7-byte ARQC to verify", VerifyARQC(sk, []byte{1}, make([]byte, 7)), cryptoerr.ErrInvalidInput},
		{"AES key of 20 bytes", second(GenerateARQCAES(make([]byte, 20), []byte{1})), cryptoerr.ErrKeyLength},
	}
	for _, c := range checks {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, c.err, c.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestCardAndIssuerAgreeForRandomKeys(t *testing.T) {
	for i := 0; i < 200; i++ {
		raw := make([]byte, 16)
		rand.Read(raw)
		k := imk(t, hex.EncodeToString(raw))
		mk, err := MasterKey(k, "54133300000000"+string(rune('0'+i%10))+"1", "01")
		if err != nil {
			t.Fatal(err)
		}
		sk, err := CommonSessionKey(mk[:], ATCDiversifier(uint16(i)))
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 1+i%40)
		rand.Read(data)
		arqc, err := GenerateARQC(sk[:], data)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyARQC(sk[:], data, arqc); err != nil {
			t.Fatal(err)
		}
		data[0] ^= 0x80
		if err := VerifyARQC(sk[:], data, arqc); !errors.Is(err, cryptoerr.ErrVerifyFailed) {
			t.Fatalf("tampered data: %v", err)
		}
		if !tdes.HasOddParity(mk[:]) || !tdes.HasOddParity(sk[:]) {
			t.Fatal("derived keys lack odd parity")
		}
	}
}
