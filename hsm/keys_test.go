package hsm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/hsm/internal/tr31"
)

// TestKeyCheckValuesMatchPublishedVectors uses the keys of openemv/tr31 test/tr31_decrypt_test.c,
// whose KCVs came from a payShield 10K: TDES key 3F419E1C… → 57C409 (TR-31:2018 A.7.2.2); AES-256 key
// BE19E6A0… → 0A00E3 (CMAC check value).
func TestKeyCheckValuesMatchPublishedVectors(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	for _, v := range []struct {
		usage KeyUsage
		alg   KeyAlgorithm
		key   string
		kcv   KCV
	}{
		{UsagePIN, TDES, "3F419E1CB7079442AA37474C2EFBF8B8", "57C409"},
		{UsageDataEncryption, AES, "BE19E6A07A760F10EF8E83A226B63AAD141F463FDDD4F47DB244B4023EC3CACC", "0A00E3"},
	} {
		kb, kcv, err := h.ImportClearKey(ctx, KeySpec{Usage: v.usage, Algorithm: v.alg}, unhex(t, v.key))
		if err != nil {
			t.Fatal(err)
		}
		if kcv != v.kcv {
			t.Errorf("%s KCV = %s, want %s", v.usage, kcv, v.kcv)
		}
		again, err := h.KeyCheckValue(ctx, kb)
		if err != nil || again != v.kcv {
			t.Errorf("KeyCheckValue = %s, %v", again, err)
		}
	}
}

func TestKeyBlocksSurviveARestartUnderTheSameLMKOnly(t *testing.T) {
	ctx := context.Background()
	lmk := bytes.Repeat([]byte{0x42}, LMKLength)
	h1, _ := New(lmk)
	kb, kcv, err := h1.GenerateKey(ctx, KeySpec{Usage: UsagePIN, Algorithm: AES, Length: 32})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(kb), "D0144P0AB00E") {
		t.Fatalf("header %s", kb.Header())
	}
	h2, _ := New(lmk)
	if got, err := h2.KeyCheckValue(ctx, kb); err != nil || got != kcv {
		t.Fatalf("after restart: %s, %v", got, err)
	}
	h3, _ := New(bytes.Repeat([]byte{0x43}, LMKLength))
	if _, err := h3.KeyCheckValue(ctx, kb); !errors.Is(err, ErrKeyBlockAuth) {
		t.Fatalf("other LMK: %v", err)
	}
	// The key block is TR-31 version D under the LMK: the tr31 package opens it.
	kbpk, _ := tr31.NewKBPK(lmk)
	hdr, _, err := kbpk.Unwrap(string(kb))
	if err != nil || hdr.Usage != "P0" || hdr.Algorithm != 'A' {
		t.Fatalf("unwrap with LMK: %+v %v", hdr, err)
	}
}

func TestGeneratedTDESKeysHaveOddParity(t *testing.T) {
	lmk := bytes.Repeat([]byte{0x42}, LMKLength)
	h, _ := New(lmk)
	kbpk, _ := tr31.NewKBPK(lmk)
	for i := 0; i < 20; i++ {
		kb := genKey(t, h, UsagePIN, TDES)
		_, key, err := kbpk.Unwrap(string(kb))
		if err != nil {
			t.Fatal(err)
		}
		if !hasOddParity(key) {
			t.Fatalf("generated TDES key without odd parity")
		}
	}
}

func TestExportThenImportUnderKEKKeepsKeyAndUsage(t *testing.T) {
	ctx := context.Background()
	acquirer, issuer := NewDevelopment(), NewDevelopment()
	// Both sides hold the same ZMK (a key ceremony would bring it in components).
	const zmkHex = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
	zmkA := importKey(t, acquirer, UsageKEK, AES, ModeBoth, zmkHex)
	zmkI := importKey(t, issuer, UsageKEK, AES, ModeBoth, zmkHex)

	zpk, kcv, err := issuer.GenerateKey(ctx, KeySpec{Usage: UsagePIN, Algorithm: TDES})
	if err != nil {
		t.Fatal(err)
	}
	underZMK, exportKCV, err := issuer.ExportKey(ctx, zmkI, zpk)
	if err != nil || exportKCV != kcv {
		t.Fatalf("export: %v (kcv %s vs %s)", err, exportKCV, kcv)
	}
	imported, importKCV, err := acquirer.ImportKey(ctx, zmkA, underZMK)
	if err != nil || importKCV != kcv {
		t.Fatalf("import: %v (kcv %s vs %s)", err, importKCV, kcv)
	}
	info, err := acquirer.DescribeKey(ctx, imported)
	if err != nil || info.Usage != UsagePIN || info.Algorithm != TDES || info.Length != 16 {
		t.Fatalf("imported key: %+v %v", info, err)
	}
	// The PIN the acquirer translates to the imported ZPK verifies at the issuer.
	tpk := genKey(t, acquirer, UsagePIN, TDES)
	card := Card{PAN: "4000001234567899"}
	block, _ := acquirer.EncryptPIN(ctx, EncryptPIN{Key: tpk, Format: ISO0, PIN: "1357", Card: card})
	toIssuer, err := acquirer.TranslatePIN(ctx, TranslatePIN{SourceKey: tpk, SourceFormat: ISO0, PINBlock: block, DestKey: imported, DestFormat: ISO0, Card: card})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := issuer.EncryptPIN(ctx, EncryptPIN{Key: zpk, Format: ISO0, PIN: "1357", Card: card})
	if !bytes.Equal(toIssuer, want) {
		t.Fatalf("issuer sees another PIN")
	}
}

func TestExportRefusesNonExportableKeysAndWrongKEKs(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	kek := genKey(t, h, UsageKEK, AES)
	tdesKEK := genKey(t, h, UsageKEK, TDES)
	locked, _, _ := h.GenerateKey(ctx, KeySpec{Usage: UsagePIN, Algorithm: TDES, NotExportable: true})
	zpk := genKey(t, h, UsagePIN, TDES)
	if _, _, err := h.ExportKey(ctx, kek, locked); !errors.Is(err, ErrKeyExport) {
		t.Errorf("non-exportable: %v", err)
	}
	if _, _, err := h.ExportKey(ctx, zpk, zpk); !errors.Is(err, ErrKeyUsage) {
		t.Errorf("ZPK as KEK: %v", err)
	}
	if _, _, err := h.ExportKey(ctx, tdesKEK, zpk); !errors.Is(err, ErrKeyAlgorithm) {
		t.Errorf("TDES KEK (version D needs AES): %v", err)
	}
	if _, _, err := h.ImportKey(ctx, kek, "D0112P0TB00E0000"+strings.Repeat("0", 96)); !errors.Is(err, ErrKeyBlockAuth) {
		t.Errorf("forged import: %v", err)
	}
}

func TestGenerateKeyRefusesUsageAlgorithmMismatches(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment()
	for _, tc := range []struct {
		spec KeySpec
		want error
	}{
		{KeySpec{Usage: "Q9", Algorithm: TDES}, ErrKeyUsage},
		{KeySpec{Usage: UsageCVK, Algorithm: AES}, ErrKeyAlgorithm},
		{KeySpec{Usage: UsagePIN, Algorithm: TDES, ModeOfUse: ModeDerive}, ErrKeyMode},
		{KeySpec{Usage: UsagePIN, Algorithm: TDES, Length: 8}, ErrKeyLength},
		{KeySpec{Usage: UsagePIN, Algorithm: AES, Length: 20}, ErrKeyLength},
	} {
		if _, _, err := h.GenerateKey(ctx, tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("%+v: err = %v, want %v", tc.spec, err, tc.want)
		}
	}
}

func TestKeyCacheStaysBounded(t *testing.T) {
	ctx := context.Background()
	h := NewDevelopment(WithMaxCachedKeys(8))
	var kbs []KeyBlock
	for i := 0; i < 50; i++ {
		kbs = append(kbs, genKey(t, h, UsagePIN, TDES))
	}
	if n := h.cache.n.Load(); n > 8 {
		t.Fatalf("cache holds %d keys, bound 8", n)
	}
	// Evicted keys are unwrapped again on use.
	for _, kb := range kbs {
		if _, err := h.KeyCheckValue(ctx, kb); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.cache.n.Load(); n > 8 {
		t.Fatalf("cache holds %d keys, bound 8", n)
	}
}

func TestLMKFileIsCreatedPrivateAndLoaded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "var", "dev.lmk")
	if err := GenerateLMKFile(path); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", info.Mode().Perm())
	}
	if err := GenerateLMKFile(path); err == nil {
		t.Fatalf("second GenerateLMKFile overwrote the LMK")
	}
	lmk, err := LoadLMK(path, "")
	if err != nil || len(lmk) != LMKLength {
		t.Fatalf("load: %v", err)
	}
	// The environment variable wins over the file.
	t.Setenv("POSWITCH_TEST_LMK", strings.Repeat("AB", LMKLength))
	fromEnv, err := LoadLMK(path, "POSWITCH_TEST_LMK")
	if err != nil || !bytes.Equal(fromEnv, bytes.Repeat([]byte{0xAB}, LMKLength)) {
		t.Fatalf("env: %v", err)
	}
	t.Setenv("POSWITCH_TEST_LMK", "nothex")
	if _, err := LoadLMK(path, "POSWITCH_TEST_LMK"); err == nil || strings.Contains(err.Error(), "nothex") {
		t.Fatalf("bad env LMK: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadLMK(path, ""); err == nil {
		t.Fatalf("world-readable LMK file accepted")
	}
}

func TestSharedKEKCarriesAZPKBetweenTwoHSMs(t *testing.T) {
	ctx := context.Background()
	a, b := NewDevelopment(), NewDevelopment()
	kekA, kekB, err := EstablishSharedKEK(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	zpk, kcv, _ := a.GenerateKey(ctx, KeySpec{Usage: UsagePIN, Algorithm: TDES})
	wrapped, _, err := a.ExportKey(ctx, kekA, zpk)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := b.ImportKey(ctx, kekB, wrapped); err != nil || got != kcv {
		t.Fatalf("import: %s, %v; want KCV %s", got, err, kcv)
	}
}
