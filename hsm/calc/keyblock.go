package calc

import (
	"fmt"
	"strings"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/tr31"
)

// UnwrapKeyBlock opens a TR-31 version D key block under a clear key block protection key (an AES
// KEK, hex) and returns the key's usage (two characters, e.g. "P0", "M3") and the clear key (hex).
// It lets an engineer, or a test holding a lab TMK, check what a sign-on sent.
func UnwrapKeyBlock(kbpk, block string) (usage, key string, err error) {
	raw, err := parseHex("kbpk", kbpk)
	if err != nil {
		return "", "", err
	}
	defer clear(raw)
	k, err := tr31.NewKBPK(raw)
	if err != nil {
		return "", "", fmt.Errorf("kbpk: %w", cryptoerr.ErrInvalidInput)
	}
	hdr, clearKey, err := k.Unwrap(strings.TrimSpace(block))
	if err != nil {
		return "", "", fmt.Errorf("block: %w", err)
	}
	defer clear(clearKey)
	return hdr.Usage, upperHex(clearKey), nil
}
