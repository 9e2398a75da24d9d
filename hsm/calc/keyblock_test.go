package calc

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/poswitch/poswitch/hsm"
)

// A key exported under a lab KEK opens with the KEK's clear value to the key whose check value the
// HSM reported; a flipped character in the block fails its authentication.
func TestUnwrapKeyBlockOpensAnExportedKeyAndRefusesATamperedOne(t *testing.T) {
	ctx := context.Background()
	h := hsm.NewDevelopment()
	kekClear := strings.Repeat("0123456789ABCDEF", 4)
	raw, _ := hex.DecodeString(kekClear)
	kek, _, err := h.ImportClearKey(ctx, hsm.KeySpec{Usage: hsm.UsageKEK, Algorithm: hsm.AES}, raw)
	if err != nil {
		t.Fatal(err)
	}
	tak, kcv, err := h.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsageMACAlg3, Algorithm: hsm.TDES})
	if err != nil {
		t.Fatal(err)
	}
	block, _, err := h.ExportKey(ctx, kek, tak)
	if err != nil {
		t.Fatal(err)
	}
	usage, key, err := UnwrapKeyBlock(kekClear, block)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := KCV(key, "tdes"); usage != "M3" || got != string(kcv) {
		t.Errorf("unwrapped usage %s, KCV %s; want M3, %s", usage, got, kcv)
	}
	tampered := []byte(block)
	tampered[len(tampered)-1] ^= 1
	if _, _, err := UnwrapKeyBlock(kekClear, string(tampered)); err == nil {
		t.Error("a tampered key block opened")
	}
}
