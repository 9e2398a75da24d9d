package hsm

import (
	"context"
	"fmt"
	"io"
)

// EstablishSharedKEK loads one new key-encryption key (K0, AES-256: TR-31 version D key blocks need
// an AES KEK) into two HSMs, each
// wrapped under its own LMK. It stands for the key ceremony in which custodians carry a ZMK or TMK
// between two sites as clear components; here the components never leave this package. The two key
// blocks then carry working keys (ZPK, TPK, BDK) from one HSM to the other with ExportKey/ImportKey.
func EstablishSharedKEK(ctx context.Context, a, b *HSM) (KeyBlock, KeyBlock, error) {
	spec := KeySpec{Usage: UsageKEK, Algorithm: AES, Length: 32}
	key := make([]byte, 32)
	defer clear(key)
	if _, err := io.ReadFull(a.random, key); err != nil {
		return "", "", fmt.Errorf("establishing a shared KEK: %w", err)
	}
	ka, kcvA, err := a.ImportClearKey(ctx, spec, key)
	if err != nil {
		return "", "", fmt.Errorf("establishing a shared KEK: %w", err)
	}
	kb, kcvB, err := b.ImportClearKey(ctx, spec, key)
	if err != nil {
		return "", "", fmt.Errorf("establishing a shared KEK: %w", err)
	}
	if kcvA != kcvB {
		return "", "", fmt.Errorf("establishing a shared KEK: check values differ")
	}
	return ka, kb, nil
}
