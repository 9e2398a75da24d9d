package tr31

import (
	"crypto/cipher"
	"crypto/subtle"
)

// cmac computes AES-CMAC (NIST SP 800-38B) with an already prepared block cipher. It lives here,
// not in a shared package, because the key block code must not depend on the crypto primitives it
// protects keys for.
func cmac(b cipher.Block, msg []byte) [16]byte {
	var k1, k2 [16]byte
	var l [16]byte
	b.Encrypt(l[:], l[:])
	subkey(&k1, &l)
	subkey(&k2, &k1)

	var x [16]byte
	n := len(msg)
	full := n > 0 && n%16 == 0
	blocks := (n + 15) / 16
	if blocks == 0 {
		blocks = 1
	}
	for i := 0; i < blocks-1; i++ {
		subtle.XORBytes(x[:], x[:], msg[i*16:i*16+16])
		b.Encrypt(x[:], x[:])
	}
	var last [16]byte
	rest := msg[(blocks-1)*16:]
	if full {
		subtle.XORBytes(last[:], rest, k1[:])
	} else {
		copy(last[:], rest)
		last[len(rest)] = 0x80
		subtle.XORBytes(last[:], last[:], k2[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	b.Encrypt(x[:], x[:])
	return x
}

// subkey doubles in GF(2^128): shift left one bit, xor 0x87 when the top bit was set.
func subkey(dst, src *[16]byte) {
	carry := src[0] >> 7
	for i := 0; i < 15; i++ {
		dst[i] = src[i]<<1 | src[i+1]>>7
	}
	dst[15] = src[15] << 1
	dst[15] ^= 0x87 & -carry
}
