package hsm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// switchableRandom serves zeros until a test sets the bytes it wants the next draw to return, so a
// published PIN block with a known random fill can be reproduced after keys are imported.
type switchableRandom struct{ next []byte }

func (r *switchableRandom) Read(p []byte) (int, error) {
	n := copy(p, r.next)
	r.next = r.next[n:]
	clear(p[n:])
	return len(p), nil
}

// TestDUKPTPINPadMatchesPublishedBlocks reproduces the DUKPT PIN blocks of the public vectors:
// TDES from ANSI X9.24-1 2009 Annex A.4 (BDK 0123…3210, KSN FFFF9876543210E00001, PIN 1234,
// PAN 4012345678909), and AES-128 from ANSI X9.24-3-2017 supplementary test vectors (BDK
// FEDCBA9876543210F1F1F1F1F1F1F1F1, KSN 123456789012345600000001, PIN 1234, PAN 4111111111111111,
// random fill 2F69ADDE2E9E7ACE), both as listed in /work/shared/reference/hsm-notes.md.
func TestDUKPTPINPadMatchesPublishedBlocks(t *testing.T) {
	ctx := context.Background()
	rnd := &switchableRandom{}
	h := NewDevelopment(WithRandom(rnd))
	for _, v := range []struct {
		name, bdk, ksn, pan, fill, want string
		alg                             KeyAlgorithm
		format                          PINFormat
	}{
		{"TDES X9.24-1 A.4", "0123456789ABCDEFFEDCBA9876543210", "FFFF9876543210E00001", "4012345678909", "", "1B9C1845EB993A7A", TDES, ISO0},
		{"AES-128 X9.24-3", "FEDCBA9876543210F1F1F1F1F1F1F1F1", "123456789012345600000001", "4111111111111111", "2F69ADDE2E9E7ACE", "A912150391AB65A67E52883D81CE2D15", AES, ISO4},
	} {
		t.Run(v.name, func(t *testing.T) {
			bdk := importKey(t, h, UsageBDK, v.alg, ModeDerive, v.bdk)
			rnd.next = unhex(t, v.fill)
			got, err := h.EncryptPINDUKPT(ctx, DUKPTPINPad{BDK: bdk, KSN: unhex(t, v.ksn), Format: v.format, PIN: "1234", Card: Card{PAN: v.pan}})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, unhex(t, v.want)) {
				t.Fatalf("PIN block = %X, want %s", got, v.want)
			}
			// And the host side: translate the published block to a ZPK, compare with a direct encipherment.
			zpk := genKey(t, h, UsagePIN, TDES)
			out, err := h.TranslatePINFromDUKPT(ctx, TranslateDUKPT{BDK: bdk, KSN: unhex(t, v.ksn), SourceFormat: v.format, PINBlock: unhex(t, v.want), DestKey: zpk, DestFormat: ISO0, Card: Card{PAN: v.pan}})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := h.EncryptPIN(ctx, EncryptPIN{Key: zpk, Format: ISO0, PIN: "1234", Card: Card{PAN: v.pan}})
			if !bytes.Equal(out, want) {
				t.Fatalf("translated block differs from the PIN enciphered directly")
			}
		})
	}
}

func TestTranslatePINFromDUKPTRoundTripsForEveryBDKKind(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	zpkTDES := genKey(t, h, UsagePIN, TDES)
	zpkAES := genKey(t, h, UsagePIN, AES)
	card := Card{PAN: "5413330089020011"}
	for _, tc := range []struct {
		name             string
		alg              KeyAlgorithm
		length           int
		ksn              string
		format           PINFormat
		workingKeyLength int
	}{
		{"TDES BDK ISO 0", TDES, 16, "FFFF9876543210E00008", ISO0, 0},
		{"TDES BDK ISO 3", TDES, 16, "FFFF9876543210E1FF80", ISO3, 0},
		{"AES-128 BDK ISO 4", AES, 16, "123456789012345600000001", ISO4, 0},
		{"AES-256 BDK ISO 4 AES-256 working key", AES, 32, "1234567890123456FFFF0000", ISO4, 32},
		{"AES-256 BDK ISO 4 AES-128 working key", AES, 32, "1234567890123456000FFFF0", ISO4, 16},
		{"AES-128 BDK ISO 0 via 2TDEA working key", AES, 16, "123456789012345600000010", ISO0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bdk, _, err := h.GenerateKey(ctx, KeySpec{Usage: UsageBDK, Algorithm: tc.alg, Length: tc.length})
			if err != nil {
				t.Fatal(err)
			}
			in, err := h.EncryptPINDUKPT(ctx, DUKPTPINPad{BDK: bdk, KSN: unhex(t, tc.ksn), Format: tc.format, WorkingKeyLength: tc.workingKeyLength, PIN: "24680", Card: card})
			if err != nil {
				t.Fatal(err)
			}
			for _, to := range []struct {
				key    KeyBlock
				format PINFormat
			}{{zpkTDES, ISO0}, {zpkAES, ISO4}} {
				out, err := h.TranslatePINFromDUKPT(ctx, TranslateDUKPT{BDK: bdk, KSN: unhex(t, tc.ksn), SourceFormat: tc.format, WorkingKeyLength: tc.workingKeyLength, PINBlock: in, DestKey: to.key, DestFormat: to.format, Card: card})
				if err != nil {
					t.Fatalf("to %v: %v", to.format, err)
				}
				back, err := h.TranslatePIN(ctx, TranslatePIN{SourceKey: to.key, SourceFormat: to.format, PINBlock: out, DestKey: zpkTDES, DestFormat: ISO0, Card: card})
				if err != nil {
					t.Fatal(err)
				}
				want, _ := h.EncryptPIN(ctx, EncryptPIN{Key: zpkTDES, Format: ISO0, PIN: "24680", Card: card})
				if !bytes.Equal(back, want) {
					t.Fatalf("to %v: PIN changed", to.format)
				}
			}
			// A different KSN derives a different key: the block no longer decodes to the PIN.
			other := unhex(t, tc.ksn)
			other[len(other)-1] ^= 0x01
			out, err := h.TranslatePINFromDUKPT(ctx, TranslateDUKPT{BDK: bdk, KSN: other, SourceFormat: tc.format, WorkingKeyLength: tc.workingKeyLength, PINBlock: in, DestKey: zpkTDES, DestFormat: ISO0, Card: card})
			if err == nil {
				want, _ := h.EncryptPIN(ctx, EncryptPIN{Key: zpkTDES, Format: ISO0, PIN: "24680", Card: card})
				if bytes.Equal(out, want) {
					t.Fatalf("wrong KSN gave the right PIN")
				}
			}
		})
	}
}

func TestTranslatePINFromDUKPTRejectsInvalidKSNs(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	tdesBDK := genKey(t, h, UsageBDK, TDES)
	aesBDK := genKey(t, h, UsageBDK, AES)
	zpk := genKey(t, h, UsagePIN, TDES)
	card := Card{PAN: "4111111111111111"}
	for _, tc := range []struct {
		name   string
		bdk    KeyBlock
		ksn    string
		format PINFormat
		block  int
	}{
		{"TDES counter zero", tdesBDK, "FFFF9876543210E00000", ISO0, 8},
		{"TDES counter with 11 one-bits", tdesBDK, "FFFF9876543210E007FF", ISO0, 8},
		{"TDES KSN too short", tdesBDK, "FFFF9876543210E0", ISO0, 8},
		{"AES counter zero", aesBDK, "123456789012345600000000", ISO4, 16},
		{"AES counter with 17 one-bits", aesBDK, "12345678901234560001FFFF", ISO4, 16},
		{"AES KSN of TDES length", aesBDK, "FFFF9876543210E00001", ISO4, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.TranslatePINFromDUKPT(ctx, TranslateDUKPT{BDK: tc.bdk, KSN: unhex(t, tc.ksn), SourceFormat: tc.format, PINBlock: make([]byte, tc.block), DestKey: zpk, DestFormat: ISO0, Card: card})
			if !errors.Is(err, ErrInvalidKSN) || Code(err) != "15" {
				t.Fatalf("err = %v (code %s), want ErrInvalidKSN", err, Code(err))
			}
			if strings.Contains(strings.ToUpper(err.Error()), strings.ToUpper(tc.ksn)) {
				t.Fatalf("error shows the KSN: %v", err)
			}
		})
	}
	// A ZPK is not a BDK.
	if _, err := h.TranslatePINFromDUKPT(ctx, TranslateDUKPT{BDK: zpk, KSN: unhex(t, "FFFF9876543210E00001"), SourceFormat: ISO0, PINBlock: make([]byte, 8), DestKey: zpk, DestFormat: ISO0, Card: card}); !errors.Is(err, ErrKeyUsage) {
		t.Fatalf("ZPK as BDK: err = %v, want ErrKeyUsage", err)
	}
}
