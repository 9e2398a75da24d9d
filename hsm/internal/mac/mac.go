// Package mac computes message authentication codes: ISO 9797-1 MAC algorithm 1 (CBC-MAC; ANSI X9.9
// with a single DES key) and algorithm 3 (the retail MAC of ANSI X9.19) with padding methods 1, 2 and 3,
// and CMAC (NIST SP 800-38B; AES-CMAC of RFC 4493, and TDES-CMAC) with truncation at verification.
//
// Functions take prepared cipher.Block values so callers can cache key schedules.
package mac

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

// Padding is an ISO 9797-1 padding method.
type Padding uint8

// ISO 9797-1 padding methods.
const (
	// PaddingNone takes the data as is; its length must be a multiple of the block size and not zero.
	PaddingNone Padding = 0
	// Padding1 appends zero bytes up to a block boundary (none if already aligned); empty data becomes
	// one zero block.
	Padding1 Padding = 1
	// Padding2 appends 0x80 then zero bytes up to a block boundary (always at least one byte).
	Padding2 Padding = 2
	// Padding3 prefixes a block holding the data length in bits, big-endian, then pads as method 1.
	Padding3 Padding = 3
)

// MinMACLength is the shortest MAC Verify accepts: 4 bytes (32 bits), the ISO 9797-1 floor in use.
const MinMACLength = 4

// ParsePadding accepts 0–3.
func ParsePadding(n int) (Padding, error) {
	if n < 0 || n > 3 {
		return 0, fmt.Errorf("padding method %d: %w", n, cryptoerr.ErrInvalidInput)
	}
	return Padding(n), nil
}

// cbcMAC runs CBC with a zero IV over data padded by method p and leaves the last chaining value
// in state. The final block's processing (e.g. the retail MAC's output transformation) is the caller's.
func cbcMAC(key cipher.Block, data []byte, p Padding, state []byte) error {
	bs := key.BlockSize()
	clear(state)
	switch p {
	case PaddingNone:
		if len(data) == 0 || len(data)%bs != 0 {
			return fmt.Errorf("MAC data of %d bytes with no padding: %w", len(data), cryptoerr.ErrInvalidInput)
		}
	case Padding1, Padding2:
	case Padding3:
		// Length block: L in bits, right-justified in one block.
		bits := uint64(len(data)) * 8
		for i := 0; i < 8 && i < bs; i++ {
			state[bs-1-i] = byte(bits >> (8 * i))
		}
		key.Encrypt(state, state)
	default:
		return fmt.Errorf("padding method %d: %w", p, cryptoerr.ErrInvalidInput)
	}
	full := len(data) / bs
	rest := data[full*bs:]
	for i := 0; i < full; i++ {
		subtle.XORBytes(state, state, data[i*bs:(i+1)*bs])
		key.Encrypt(state, state)
	}
	var last [16]byte
	switch {
	case p == Padding2:
		copy(last[:], rest)
		last[len(rest)] = 0x80
	case len(rest) > 0:
		copy(last[:], rest)
	case len(data) == 0 && p != PaddingNone:
		// Method 1 and 3 of empty data: one block of zeros.
	default:
		return nil
	}
	subtle.XORBytes(state, state, last[:bs])
	key.Encrypt(state, state)
	return nil
}

// Alg1 is ISO 9797-1 MAC algorithm 1: CBC-MAC with a zero IV, output the last block (8 bytes for
// TDES/DES, 16 for AES). With a single-length DES key and Padding1 it is the ANSI X9.9 MAC.
func Alg1(key cipher.Block, data []byte, p Padding) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("MAC algorithm 1: no key: %w", cryptoerr.ErrKeyLength)
	}
	out := make([]byte, key.BlockSize())
	if err := cbcMAC(key, data, p, out); err != nil {
		return nil, fmt.Errorf("MAC algorithm 1: %w", err)
	}
	return out, nil
}

// RetailKeys splits a double-length (16-byte) TDES key into the single-DES ciphers of its halves, as
// Alg3 wants them.
func RetailKeys(key []byte) (left, right cipher.Block, err error) {
	if len(key) != 16 {
		return nil, nil, fmt.Errorf("retail MAC key of %d bytes: %w", len(key), cryptoerr.ErrKeyLength)
	}
	if left, err = des.NewCipher(key[:8]); err != nil {
		return nil, nil, err
	}
	if right, err = des.NewCipher(key[8:]); err != nil {
		return nil, nil, err
	}
	return left, right, nil
}

// Alg3 is ISO 9797-1 MAC algorithm 3, the ANSI X9.19 retail MAC: single-DES CBC-MAC under left, then
// the last block deciphered under right and enciphered under left. Both must be single DES ciphers
// (see RetailKeys). The result is 8 bytes; truncate for the wire as the protocol says.
func Alg3(left, right cipher.Block, data []byte, p Padding) ([]byte, error) {
	if left == nil || right == nil || left.BlockSize() != des.BlockSize || right.BlockSize() != des.BlockSize {
		return nil, fmt.Errorf("MAC algorithm 3 needs two DES keys: %w", cryptoerr.ErrKeyLength)
	}
	out := make([]byte, des.BlockSize)
	if err := cbcMAC(left, data, p, out); err != nil {
		return nil, fmt.Errorf("MAC algorithm 3: %w", err)
	}
	right.Decrypt(out, out)
	left.Encrypt(out, out)
	return out, nil
}

// CMAC is the NIST SP 800-38B CMAC of data under key: AES-CMAC (RFC 4493) for an AES cipher, TDES-CMAC
// for a DES/TDES cipher. The result is one full block; callers truncate (leftmost bytes).
func CMAC(key cipher.Block, data []byte) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("CMAC: no key: %w", cryptoerr.ErrKeyLength)
	}
	bs := key.BlockSize()
	var rb byte
	switch bs {
	case 16:
		rb = 0x87
	case 8:
		rb = 0x1B
	default:
		return nil, fmt.Errorf("CMAC with %d-byte blocks: %w", bs, cryptoerr.ErrKeyLength)
	}
	var k1, k2, last [16]byte
	key.Encrypt(k1[:bs], k1[:bs]) // L = E(0)
	subkeyDouble(k1[:bs], rb)
	copy(k2[:bs], k1[:bs])
	subkeyDouble(k2[:bs], rb)

	out := make([]byte, bs)
	n := (len(data) + bs - 1) / bs
	complete := n > 0 && len(data)%bs == 0
	if n == 0 {
		n = 1
	}
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(out, out, data[i*bs:(i+1)*bs])
		key.Encrypt(out, out)
	}
	rest := data[(n-1)*bs:]
	copy(last[:bs], rest)
	if complete {
		subtle.XORBytes(last[:bs], last[:bs], k1[:bs])
	} else {
		last[len(rest)] = 0x80
		subtle.XORBytes(last[:bs], last[:bs], k2[:bs])
	}
	subtle.XORBytes(out, out, last[:bs])
	key.Encrypt(out, out)
	return out, nil
}

// subkeyDouble multiplies b by x in GF(2^n): shift left one bit, XOR rb into the last byte on carry.
func subkeyDouble(b []byte, rb byte) {
	carry := b[0] >> 7
	for i := 0; i < len(b)-1; i++ {
		b[i] = b[i]<<1 | b[i+1]>>7
	}
	b[len(b)-1] <<= 1
	b[len(b)-1] ^= rb & (0 - carry)
}

// Verify compares a received MAC with the leftmost bytes of a computed one in constant time. The
// received MAC may be truncated to no fewer than MinMACLength bytes.
func Verify(computed, received []byte) error {
	if len(received) < MinMACLength || len(received) > len(computed) {
		return fmt.Errorf("MAC of %d bytes: %w", len(received), cryptoerr.ErrInvalidInput)
	}
	if subtle.ConstantTimeCompare(computed[:len(received)], received) != 1 {
		return cryptoerr.ErrVerifyFailed
	}
	return nil
}
