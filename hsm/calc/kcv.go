package calc

import (
	"fmt"
	"strings"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/keycheck"
)

// KCV returns the 3-byte key check value: alg "tdes" (encrypt zeros), "aes" (CMAC of zeros, as
// payShield and AWS show it) or "aes-zeros" (encrypt zeros, older tools).
func KCV(key, alg string) (string, error) {
	raw, err := parseHex("key", key)
	if err != nil {
		return "", err
	}
	var out []byte
	switch strings.ToLower(alg) {
	case "", "tdes":
		out, err = keycheck.TDES(raw)
	case "aes":
		out, err = keycheck.AES(raw)
	case "aes-zeros":
		out, err = keycheck.AESEncryptZeros(raw)
	default:
		return "", fmt.Errorf("alg %q (want tdes, aes or aes-zeros): %w", alg, cryptoerr.ErrInvalidInput)
	}
	if err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	return upperHex(out), nil
}
