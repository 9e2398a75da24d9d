package calc

import (
	"fmt"
	"strings"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/dukpt"
)

// DUKPT key usages the calculator accepts (the --usage flag).
var (
	tdesUsages = map[string]dukpt.TDESUsage{
		"pin": dukpt.TDESPIN, "mac-request": dukpt.TDESMACRequest, "mac-response": dukpt.TDESMACResponse,
		"data-request": dukpt.TDESDataRequest, "data-response": dukpt.TDESDataResponse,
	}
	aesUsages = map[string]dukpt.AESUsage{
		"pin": dukpt.AESPINEncryption, "mac-generate": dukpt.AESMACGeneration, "mac-verify": dukpt.AESMACVerification,
		"mac-both": dukpt.AESMACBoth, "data-encrypt": dukpt.AESDataEncrypt, "data-decrypt": dukpt.AESDataDecrypt,
		"data-both": dukpt.AESDataBoth, "kek": dukpt.AESKeyEncryption,
	}
	keyTypes = map[string]dukpt.KeyType{
		"2tdea": dukpt.KeyTDES2, "3tdea": dukpt.KeyTDES3, "aes128": dukpt.KeyAES128, "aes192": dukpt.KeyAES192, "aes256": dukpt.KeyAES256,
	}
)

// TDESIPEK derives the initial PIN encryption key of a TDES DUKPT device (10-byte KSN).
func TDESIPEK(bdk, ksn string) (string, error) {
	b, k, err := tdesBDK(bdk, ksn)
	if err != nil {
		return "", err
	}
	ipek, err := b.IPEK(k)
	if err != nil {
		return "", fmt.Errorf("ksn: %w", err)
	}
	return upperHex(ipek[:]), nil
}

// AESInitialKey derives the initial key of an AES DUKPT device from the first 8 bytes of its KSN.
func AESInitialKey(bdk, ksn string) (string, error) {
	raw, err := parseHex("bdk", bdk)
	if err != nil {
		return "", err
	}
	b, err := dukpt.NewAESBDK(raw)
	if err != nil {
		return "", fmt.Errorf("bdk: %w", err)
	}
	k, err := parseHex("ksn", ksn)
	if err != nil {
		return "", err
	}
	ik, err := b.InitialKey(k)
	if err != nil {
		return "", fmt.Errorf("ksn: %w", err)
	}
	return upperHex(ik), nil
}

// DUKPTKey derives a DUKPT working key. A 10-byte KSN selects TDES DUKPT (ANSI X9.24-1; usages pin,
// mac-request, mac-response, data-request, data-response; keyType ignored); a 12-byte KSN selects AES
// DUKPT (X9.24-3; usages pin, mac-generate, mac-verify, mac-both, data-encrypt, data-decrypt,
// data-both, kek; keyType 2tdea, 3tdea, aes128, aes192 or aes256, default aes128).
func DUKPTKey(bdk, ksn, usage, keyType string) (string, error) {
	k, err := parseHex("ksn", ksn)
	if err != nil {
		return "", err
	}
	usage = strings.ToLower(usage)
	switch len(k) {
	case dukpt.TDESKSNLen:
		u, ok := tdesUsages[usage]
		if !ok {
			return "", fmt.Errorf("usage %q for TDES DUKPT (want pin, mac-request, mac-response, data-request or data-response): %w", usage, cryptoerr.ErrInvalidInput)
		}
		b, _, err := tdesBDK(bdk, ksn)
		if err != nil {
			return "", err
		}
		key, err := b.WorkingKey(k, u)
		if err != nil {
			return "", fmt.Errorf("ksn: %w", err)
		}
		return upperHex(key[:]), nil
	case dukpt.AESKSNLen:
		u, ok := aesUsages[usage]
		if !ok {
			return "", fmt.Errorf("usage %q for AES DUKPT (want pin, mac-generate, mac-verify, mac-both, data-encrypt, data-decrypt, data-both or kek): %w", usage, cryptoerr.ErrInvalidInput)
		}
		if keyType == "" {
			keyType = "aes128"
		}
		kt, ok := keyTypes[strings.ToLower(keyType)]
		if !ok {
			return "", fmt.Errorf("key type %q (want 2tdea, 3tdea, aes128, aes192 or aes256): %w", keyType, cryptoerr.ErrInvalidInput)
		}
		raw, err := parseHex("bdk", bdk)
		if err != nil {
			return "", err
		}
		b, err := dukpt.NewAESBDK(raw)
		if err != nil {
			return "", fmt.Errorf("bdk: %w", err)
		}
		key, err := b.WorkingKey(k, u, kt)
		if err != nil {
			return "", fmt.Errorf("ksn: %w", err)
		}
		return upperHex(key), nil
	}
	return "", fmt.Errorf("ksn: %d bytes (want 10 for TDES DUKPT or 12 for AES DUKPT): %w", len(k), cryptoerr.ErrKSN)
}

func tdesBDK(bdk, ksn string) (*dukpt.TDESBDK, []byte, error) {
	raw, err := parseHex("bdk", bdk)
	if err != nil {
		return nil, nil, err
	}
	b, err := dukpt.NewTDESBDK(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("bdk: %w", err)
	}
	k, err := parseHex("ksn", ksn)
	if err != nil {
		return nil, nil, err
	}
	return b, k, nil
}
