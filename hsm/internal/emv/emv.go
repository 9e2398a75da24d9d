// Package emv holds the issuer-side EMV cryptography of EMV 4.x Book 2 Annex A: ICC master key
// derivation (option A; option B for PANs longer than 16 digits), the common session key derivation,
// ARQC generation and verification (ISO 9797-1 MAC algorithm 3 with padding method 2 for TDES keys,
// AES-CMAC for AES keys) and ARPC methods 1 and 2.
//
// The issuer master key is fixed and arrives prepared (cipher.Block); card and session keys change per
// card and transaction and arrive as bytes. Errors wrap cryptoerr sentinels and never hold key bytes.
package emv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/mac"
	"github.com/poswitch/poswitch/hsm/internal/tdes"
)

// Sizes in bytes.
const (
	KeyLen         = 16 // double-length TDES ICC master and session keys
	CryptogramLen  = 8  // ARQC, TC, AAC; ARPC method 1
	ARCLen         = 2  // authorisation response code for ARPC method 1
	CSULen         = 4  // card status update for ARPC method 2
	ARPC2Len       = 4  // ARPC method 2
	maxPropAuthLen = 8  // proprietary authentication data for ARPC method 2 (0–8 bytes)
	maxARQCData    = 1024
)

// MasterKeyOptionA derives the ICC master key from the issuer master key: Y = the rightmost 16 digits
// of PAN ‖ PSN (zero-padded on the left), ZL = TDES(Y), ZR = TDES(Y XOR FF…FF), parity adjusted
// (EMV Book 2 A1.4.1). psn is 2 digits; "" means "00".
func MasterKeyOptionA(imk cipher.Block, pan, psn string) ([KeyLen]byte, error) {
	var mk [KeyLen]byte
	digits, err := panPSN(pan, psn)
	if err != nil {
		return mk, err
	}
	var y [8]byte
	// Rightmost 16 digits, left-padded with zeros.
	start := len(digits) - 16
	for i := 0; i < 16; i++ {
		c := byte('0')
		if j := start + i; j >= 0 {
			c = digits[j]
		}
		y[i/2] |= (c - '0') << (4 * (1 - i%2))
	}
	return deriveFromY(imk, y)
}

// MasterKeyOptionB derives the ICC master key for a PAN longer than 16 digits (EMV Book 2 A1.4.2):
// SHA-1 over PAN ‖ PSN (packed BCD, zero-padded on the left to an even length), decimalised (digits
// first, then letters a–f as 0–5) to 16 digits, then as option A. For PANs of 16 digits or fewer it is
// option A.
func MasterKeyOptionB(imk cipher.Block, pan, psn string) ([KeyLen]byte, error) {
	if len(pan) <= 16 {
		return MasterKeyOptionA(imk, pan, psn)
	}
	var mk [KeyLen]byte
	digits, err := panPSN(pan, psn)
	if err != nil {
		return mk, err
	}
	if len(digits)%2 == 1 {
		digits = "0" + digits
	}
	packed := make([]byte, len(digits)/2)
	for i := range packed {
		packed[i] = (digits[2*i]-'0')<<4 | (digits[2*i+1] - '0')
	}
	sum := sha1.Sum(packed)
	var out [16]byte
	n := 0
	for pass := 0; pass < 2 && n < 16; pass++ {
		for i := 0; i < 2*len(sum) && n < 16; i++ {
			v := sum[i/2] >> 4
			if i%2 == 1 {
				v = sum[i/2] & 0xF
			}
			if pass == 0 && v <= 9 {
				out[n] = v
				n++
			} else if pass == 1 && v > 9 {
				out[n] = v - 10
				n++
			}
		}
	}
	var y [8]byte
	for i := range y {
		y[i] = out[2*i]<<4 | out[2*i+1]
	}
	return deriveFromY(imk, y)
}

// MasterKey picks option A for PANs of up to 16 digits and option B for longer ones, as issuers do.
func MasterKey(imk cipher.Block, pan, psn string) ([KeyLen]byte, error) {
	return MasterKeyOptionB(imk, pan, psn)
}

func deriveFromY(imk cipher.Block, y [8]byte) ([KeyLen]byte, error) {
	var mk [KeyLen]byte
	if imk == nil || imk.BlockSize() != 8 {
		return mk, fmt.Errorf("ICC master key derivation needs a TDES issuer master key: %w", cryptoerr.ErrKeyLength)
	}
	imk.Encrypt(mk[:8], y[:])
	for i := range y {
		y[i] ^= 0xFF
	}
	imk.Encrypt(mk[8:], y[:])
	tdes.AdjustParity(mk[:])
	return mk, nil
}

func panPSN(pan, psn string) (string, error) {
	if len(pan) < 12 || len(pan) > 19 || !allDigits(pan) {
		return "", fmt.Errorf("EMV key derivation: PAN of %d characters: %w", len(pan), cryptoerr.ErrPAN)
	}
	if psn == "" {
		psn = "00"
	}
	if len(psn) != 2 || !allDigits(psn) {
		return "", fmt.Errorf("EMV key derivation: PAN sequence number must be 2 digits: %w", cryptoerr.ErrInvalidInput)
	}
	return pan + psn, nil
}

// ATCDiversifier is R = ATC ‖ 00 00 00 00 00 00, the diversification value of the common session key
// for application cryptograms.
func ATCDiversifier(atc uint16) [8]byte {
	return [8]byte{byte(atc >> 8), byte(atc)}
}

// CommonSessionKey derives a session key from a double-length ICC master key: SKL = TDES(R with
// byte 3 = F0), SKR = TDES(R with byte 3 = 0F), parity adjusted (EMV Book 2 A1.3.1).
func CommonSessionKey(mk []byte, r [8]byte) ([KeyLen]byte, error) {
	var sk [KeyLen]byte
	c, err := tdes.NewDoubleLength(mk)
	if err != nil {
		return sk, fmt.Errorf("session key derivation: %w", err)
	}
	ra, rb := r, r
	ra[2] = 0xF0
	rb[2] = 0x0F
	c.Encrypt(sk[:8], ra[:])
	c.Encrypt(sk[8:], rb[:])
	tdes.AdjustParity(sk[:])
	return sk, nil
}

// GenerateARQC computes the 8-byte application cryptogram over data (the concatenated CDOL data the
// card MACs) under a session key: ISO 9797-1 MAC algorithm 3 with padding method 2 for a 16-byte TDES
// key. The same function computes TC and AAC.
func GenerateARQC(sessionKey, data []byte) ([]byte, error) {
	if len(data) == 0 || len(data) > maxARQCData {
		return nil, fmt.Errorf("ARQC data of %d bytes: %w", len(data), cryptoerr.ErrInvalidInput)
	}
	left, right, err := mac.RetailKeys(sessionKey)
	if err != nil {
		return nil, fmt.Errorf("ARQC: %w", err)
	}
	return mac.Alg3(left, right, data, mac.Padding2)
}

// VerifyARQC recomputes the cryptogram and compares it in constant time.
func VerifyARQC(sessionKey, data, arqc []byte) error {
	if len(arqc) != CryptogramLen {
		return fmt.Errorf("ARQC of %d bytes: %w", len(arqc), cryptoerr.ErrInvalidInput)
	}
	want, err := GenerateARQC(sessionKey, data)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, arqc) != 1 {
		return cryptoerr.ErrVerifyFailed
	}
	return nil
}

// GenerateARQCAES computes an AES application cryptogram: AES-CMAC over data under a 16-, 24- or
// 32-byte AES session key, truncated to the leftmost 8 bytes (EMV Book 2 A1.2.2).
func GenerateARQCAES(sessionKey, data []byte) ([]byte, error) {
	if len(data) == 0 || len(data) > maxARQCData {
		return nil, fmt.Errorf("ARQC data of %d bytes: %w", len(data), cryptoerr.ErrInvalidInput)
	}
	switch len(sessionKey) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("AES session key of %d bytes: %w", len(sessionKey), cryptoerr.ErrKeyLength)
	}
	c, err := aes.NewCipher(sessionKey)
	if err != nil {
		return nil, err
	}
	full, err := mac.CMAC(c, data)
	if err != nil {
		return nil, err
	}
	return full[:CryptogramLen], nil
}

// VerifyARQCAES is VerifyARQC for AES session keys.
func VerifyARQCAES(sessionKey, data, arqc []byte) error {
	if len(arqc) != CryptogramLen {
		return fmt.Errorf("ARQC of %d bytes: %w", len(arqc), cryptoerr.ErrInvalidInput)
	}
	want, err := GenerateARQCAES(sessionKey, data)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, arqc) != 1 {
		return cryptoerr.ErrVerifyFailed
	}
	return nil
}

// ARPCMethod1 is ARPC = TDES(key)[ARQC XOR (ARC ‖ 00…00)] with a 2-byte ARC (EMV Book 2 8.2.1). The
// key is the session key or the ICC master key, depending on the card's cryptogram version.
func ARPCMethod1(key, arqc, arc []byte) ([]byte, error) {
	if len(arqc) != CryptogramLen {
		return nil, fmt.Errorf("ARPC method 1: ARQC of %d bytes: %w", len(arqc), cryptoerr.ErrInvalidInput)
	}
	if len(arc) != ARCLen {
		return nil, fmt.Errorf("ARPC method 1: ARC of %d bytes: %w", len(arc), cryptoerr.ErrInvalidInput)
	}
	c, err := tdes.NewDoubleLength(key)
	if err != nil {
		return nil, fmt.Errorf("ARPC method 1: %w", err)
	}
	out := make([]byte, CryptogramLen)
	copy(out, arqc)
	out[0] ^= arc[0]
	out[1] ^= arc[1]
	c.Encrypt(out, out)
	return out, nil
}

// ARPCMethod2 is ARPC = MAC(session key)[ARQC ‖ CSU ‖ proprietary authentication data], ISO 9797-1
// algorithm 3 with padding method 2, leftmost 4 bytes (EMV Book 2 8.2.2). propAuth is 0–8 bytes.
func ARPCMethod2(sessionKey, arqc, csu, propAuth []byte) ([]byte, error) {
	if len(arqc) != CryptogramLen {
		return nil, fmt.Errorf("ARPC method 2: ARQC of %d bytes: %w", len(arqc), cryptoerr.ErrInvalidInput)
	}
	if len(csu) != CSULen {
		return nil, fmt.Errorf("ARPC method 2: CSU of %d bytes: %w", len(csu), cryptoerr.ErrInvalidInput)
	}
	if len(propAuth) > maxPropAuthLen {
		return nil, fmt.Errorf("ARPC method 2: proprietary data of %d bytes: %w", len(propAuth), cryptoerr.ErrInvalidInput)
	}
	left, right, err := mac.RetailKeys(sessionKey)
	if err != nil {
		return nil, fmt.Errorf("ARPC method 2: %w", err)
	}
	data := make([]byte, 0, CryptogramLen+CSULen+maxPropAuthLen)
	data = append(data, arqc...)
	data = append(data, csu...)
	data = append(data, propAuth...)
	m, err := mac.Alg3(left, right, data, mac.Padding2)
	if err != nil {
		return nil, err
	}
	return m[:ARPC2Len], nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
