package calc

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/emv"
)

// EMVMasterKey derives the ICC master key from the issuer master key: option "a", "b" or "auto"
// (A up to 16 PAN digits, B beyond).
func EMVMasterKey(imk, pan, psn, option string) (string, error) {
	k, err := tdesKey("imk", imk)
	if err != nil {
		return "", err
	}
	var mk [emv.KeyLen]byte
	switch strings.ToLower(option) {
	case "a":
		mk, err = emv.MasterKeyOptionA(k, pan, psn)
	case "b":
		mk, err = emv.MasterKeyOptionB(k, pan, psn)
	case "", "auto":
		mk, err = emv.MasterKey(k, pan, psn)
	default:
		return "", fmt.Errorf("option %q (want a, b or auto): %w", option, cryptoerr.ErrInvalidInput)
	}
	if err != nil {
		return "", err
	}
	return upperHex(mk[:]), nil
}

// EMVSessionKey derives the common session key from an ICC master key and either the 2-byte ATC
// (R = ATC ‖ 000000000000) or an explicit 8-byte diversification value R.
func EMVSessionKey(mk, atcOrR string) (string, error) {
	m, err := parseHex("mk", mk)
	if err != nil {
		return "", err
	}
	v, err := parseHex("atc", atcOrR)
	if err != nil {
		return "", err
	}
	var r [8]byte
	switch len(v) {
	case 2:
		r = emv.ATCDiversifier(binary.BigEndian.Uint16(v))
	case 8:
		copy(r[:], v)
	default:
		return "", fmt.Errorf("atc: %d bytes (want a 2-byte ATC or an 8-byte R): %w", len(v), cryptoerr.ErrInvalidInput)
	}
	sk, err := emv.CommonSessionKey(m, r)
	if err != nil {
		return "", fmt.Errorf("mk: %w", err)
	}
	return upperHex(sk[:]), nil
}

// ARQC computes an application cryptogram over data under a session key: a 16-byte TDES key uses
// ISO 9797-1 algorithm 3 with padding method 2; with aes set, an AES key uses CMAC truncated to 8 bytes.
func ARQC(sessionKey, data string, aes bool) (string, error) {
	k, d, err := arqcInputs(sessionKey, data)
	if err != nil {
		return "", err
	}
	var c []byte
	if aes {
		c, err = emv.GenerateARQCAES(k, d)
	} else {
		c, err = emv.GenerateARQC(k, d)
	}
	if err != nil {
		return "", err
	}
	return upperHex(c), nil
}

// VerifyARQC returns nil when arqc is the cryptogram of data, ErrVerifyFailed when it is not.
func VerifyARQC(sessionKey, data, arqc string, aes bool) error {
	k, d, err := arqcInputs(sessionKey, data)
	if err != nil {
		return err
	}
	a, err := parseHex("arqc", arqc)
	if err != nil {
		return err
	}
	if aes {
		return emv.VerifyARQCAES(k, d, a)
	}
	return emv.VerifyARQC(k, d, a)
}

func arqcInputs(sessionKey, data string) ([]byte, []byte, error) {
	k, err := parseHex("sk", sessionKey)
	if err != nil {
		return nil, nil, err
	}
	d, err := parseHex("data", data)
	if err != nil {
		return nil, nil, err
	}
	return k, d, nil
}

// ARPCMethod1 returns TDES(key)[ARQC XOR ARC‖000000000000] (8 bytes).
func ARPCMethod1(key, arqc, arc string) (string, error) {
	k, a, err := arpcInputs(key, arqc)
	if err != nil {
		return "", err
	}
	r, err := parseHex("arc", arc)
	if err != nil {
		return "", err
	}
	out, err := emv.ARPCMethod1(k, a, r)
	if err != nil {
		return "", err
	}
	return upperHex(out), nil
}

// ARPCMethod2 returns the 4-byte MAC of ARQC ‖ CSU ‖ proprietary authentication data (0–8 bytes).
func ARPCMethod2(sessionKey, arqc, csu, propAuth string) (string, error) {
	k, a, err := arpcInputs(sessionKey, arqc)
	if err != nil {
		return "", err
	}
	c, err := parseHex("csu", csu)
	if err != nil {
		return "", err
	}
	p, err := parseHex("prop-auth-data", propAuth)
	if err != nil {
		return "", err
	}
	out, err := emv.ARPCMethod2(k, a, c, p)
	if err != nil {
		return "", err
	}
	return upperHex(out), nil
}

func arpcInputs(key, arqc string) ([]byte, []byte, error) {
	k, err := parseHex("key", key)
	if err != nil {
		return nil, nil, err
	}
	a, err := parseHex("arqc", arqc)
	if err != nil {
		return nil, nil, err
	}
	return k, a, nil
}
