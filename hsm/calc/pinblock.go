package calc

import (
	"crypto/cipher"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/pinblock"
)

func pinFormat(n int) (pinblock.Format, error) {
	f, err := pinblock.ParseFormat(n)
	if err != nil {
		return 0, fmt.Errorf("format: %w", err)
	}
	return f, nil
}

// account parses the PAN; an empty PAN is allowed for formats 1 and 2.
func account(pan string) (pinblock.Account, error) {
	if pan == "" {
		return pinblock.Account{}, nil
	}
	a, err := pinblock.ParsePAN(pan)
	if err != nil {
		return a, fmt.Errorf("pan: %w", err)
	}
	return a, nil
}

// pinKey parses a key for format f: AES for format 4, TDES otherwise.
func pinKey(name, s string, f pinblock.Format) (cipher.Block, error) {
	if f == pinblock.Format4 {
		return aesKey(name, s)
	}
	return tdesKey(name, s)
}

// EncodePINBlock returns the clear PIN block (for format 4: the plain-text PIN field) of pin. Formats
// 1, 3 and 4 take fresh random fill on every call.
func EncodePINBlock(format int, pin, pan string) (string, error) {
	f, err := pinFormat(format)
	if err != nil {
		return "", err
	}
	p, err := pinblock.NewPIN(pin)
	if err != nil {
		return "", fmt.Errorf("pin: %w", err)
	}
	a, err := account(pan)
	if err != nil {
		return "", err
	}
	out := make([]byte, f.BlockSize())
	if err := pinblock.Encode(out, f, p, a, nil); err != nil {
		return "", err
	}
	return upperHex(out), nil
}

// DecodePINBlock returns the PIN held in a clear PIN block (format 4: the plain-text PIN field).
func DecodePINBlock(format int, block, pan string) (string, error) {
	f, err := pinFormat(format)
	if err != nil {
		return "", err
	}
	b, err := parseHex("block", block)
	if err != nil {
		return "", err
	}
	a, err := account(pan)
	if err != nil {
		return "", err
	}
	p, err := pinblock.Decode(f, b, a)
	if err != nil {
		return "", err
	}
	return p.Reveal(), nil
}

// EncryptPINBlock encodes pin in the format and enciphers it under key (TDES for formats 0–3, AES
// for format 4).
func EncryptPINBlock(key string, format int, pin, pan string) (string, error) {
	f, err := pinFormat(format)
	if err != nil {
		return "", err
	}
	k, err := pinKey("key", key, f)
	if err != nil {
		return "", err
	}
	p, err := pinblock.NewPIN(pin)
	if err != nil {
		return "", fmt.Errorf("pin: %w", err)
	}
	a, err := account(pan)
	if err != nil {
		return "", err
	}
	out := make([]byte, f.BlockSize())
	if err := pinblock.Encrypt(out, k, f, p, a, nil); err != nil {
		return "", err
	}
	return upperHex(out), nil
}

// DecryptPINBlock deciphers an enciphered PIN block and returns the PIN.
func DecryptPINBlock(key string, format int, block, pan string) (string, error) {
	f, err := pinFormat(format)
	if err != nil {
		return "", err
	}
	k, err := pinKey("key", key, f)
	if err != nil {
		return "", err
	}
	b, err := parseHex("block", block)
	if err != nil {
		return "", err
	}
	a, err := account(pan)
	if err != nil {
		return "", err
	}
	p, err := pinblock.Decrypt(k, f, b, a)
	if err != nil {
		return "", err
	}
	return p.Reveal(), nil
}

// TranslatePINBlock re-enciphers a PIN block from one key and format to another.
func TranslatePINBlock(fromKey string, fromFormat int, block, toKey string, toFormat int, pan string) (string, error) {
	ff, err := pinFormat(fromFormat)
	if err != nil {
		return "", err
	}
	tf, err := pinFormat(toFormat)
	if err != nil {
		return "", err
	}
	fk, err := pinKey("from-key", fromKey, ff)
	if err != nil {
		return "", err
	}
	tk, err := pinKey("to-key", toKey, tf)
	if err != nil {
		return "", err
	}
	b, err := parseHex("block", block)
	if err != nil {
		return "", err
	}
	a, err := account(pan)
	if err != nil {
		return "", err
	}
	out := make([]byte, tf.BlockSize())
	if err := pinblock.Translate(out, fk, ff, b, tk, tf, a, nil); err != nil {
		return "", err
	}
	return upperHex(out), nil
}
