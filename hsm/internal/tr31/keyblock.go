package tr31

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
)

const (
	blockSize = aes.BlockSize
	macSize   = 16 // version D carries the full CMAC
)

// KBPK is a key block protection key with its two derived keys prepared: KBEK encrypts the key
// data and KBAK authenticates the block (TR-31:2018 5.3.2.3, CMAC as the KDF PRF).
type KBPK struct {
	kbek cipher.Block
	kbak cipher.Block
}

// derivation usage values of TR-31:2018 table 2 (not TR-31 key usages).
const (
	derivationEncryption = 0x0000
	derivationMAC        = 0x0001
)

// NewKBPK prepares an AES-128, -192 or -256 key block protection key.
func NewKBPK(key []byte) (*KBPK, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("key block protection key is %d bytes, want 16, 24 or 32", len(key))
	}
	base, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("preparing key block protection key: %w", err)
	}
	kbek := derive(base, len(key), derivationEncryption)
	kbak := derive(base, len(key), derivationMAC)
	defer clear(kbek)
	defer clear(kbak)
	k := &KBPK{}
	if k.kbek, err = aes.NewCipher(kbek); err != nil {
		return nil, err
	}
	if k.kbak, err = aes.NewCipher(kbak); err != nil {
		return nil, err
	}
	return k, nil
}

// derive runs the CMAC counter-mode KDF: counter ‖ usage ‖ 00 ‖ algorithm ‖ length in bits, one
// CMAC per 16 bytes of output.
func derive(base cipher.Block, keyLen int, usage uint16) []byte {
	out := make([]byte, 0, 32)
	algorithm := uint16(keyLen / 8) // 0002 AES-128, 0003 AES-192, 0004 AES-256
	bits := uint16(keyLen * 8)
	for counter := byte(1); len(out) < keyLen; counter++ {
		in := []byte{counter, byte(usage >> 8), byte(usage), 0, byte(algorithm >> 8), byte(algorithm), byte(bits >> 8), byte(bits)}
		m := cmac(base, in)
		out = append(out, m[:]...)
	}
	return out[:keyLen]
}

// Wrap returns the key block for key under this KBPK. Padding comes from crypto/rand.
func (k *KBPK) Wrap(h Header, key []byte) (string, error) {
	return k.WrapWithRandom(h, key, rand.Reader)
}

// WrapWithRandom is Wrap with the padding drawn from r; tests use it to reproduce published
// vectors.
func (k *KBPK) WrapWithRandom(h Header, key []byte, r io.Reader) (string, error) {
	if err := h.Validate(); err != nil {
		return "", err
	}
	if len(key) == 0 || len(key) > 64 {
		return "", fmt.Errorf("key of %d bytes cannot be wrapped", len(key))
	}
	// Payload: 2-byte key length in bits, the key, random padding to a whole number of blocks.
	payloadLen := (2 + len(key) + blockSize - 1) / blockSize * blockSize
	payload := make([]byte, payloadLen)
	defer clear(payload)
	payload[0] = byte(len(key) * 8 >> 8)
	payload[1] = byte(len(key) * 8)
	copy(payload[2:], key)
	if _, err := io.ReadFull(r, payload[2+len(key):]); err != nil {
		return "", fmt.Errorf("drawing key block padding: %w", err)
	}
	total := h.headerSize() + 2*payloadLen + 2*macSize
	if total > maxKeyBlockLength {
		return "", malformed("key block of %d characters exceeds %d", total, maxKeyBlockLength)
	}
	header := h.encode(total)

	mac := k.mac(header, payload)
	enc := make([]byte, payloadLen)
	cipher.NewCBCEncrypter(k.kbek, mac[:]).CryptBlocks(enc, payload)

	out := make([]byte, 0, total)
	out = append(out, header...)
	out = appendHexUpper(out, enc)
	out = appendHexUpper(out, mac[:])
	return string(out), nil
}

// mac is CMAC under KBAK over the header and the clear payload (version D binds the clear key).
func (k *KBPK) mac(header, payload []byte) [16]byte {
	buf := make([]byte, 0, len(header)+len(payload))
	buf = append(buf, header...)
	buf = append(buf, payload...)
	m := cmac(k.kbak, buf)
	clear(buf)
	return m
}

// Unwrap authenticates a key block and returns its header and the clear key. The caller must clear
// the key when done with it.
func (k *KBPK) Unwrap(kb string) (Header, []byte, error) {
	if len(kb) > maxKeyBlockLength {
		return Header{}, nil, malformed("%d characters exceed %d", len(kb), maxKeyBlockLength)
	}
	h, hlen, total, err := ParseHeader(kb)
	if err != nil {
		return h, nil, err
	}
	if total != len(kb) {
		return h, nil, malformed("length field says %d, key block has %d characters", total, len(kb))
	}
	if hlen%blockSize != 0 {
		return h, nil, malformed("header of %d characters is not a multiple of %d", hlen, blockSize)
	}
	body := kb[hlen:]
	if len(body) < 2*(blockSize+macSize) || (len(body)-2*macSize)%(2*blockSize) != 0 {
		return h, nil, malformed("encrypted key data of %d characters", len(body)-2*macSize)
	}
	raw, err := hex.DecodeString(body)
	if err != nil {
		return h, nil, malformed("encrypted key data is not hex")
	}
	enc, mac := raw[:len(raw)-macSize], raw[len(raw)-macSize:]
	payload := make([]byte, len(enc))
	cipher.NewCBCDecrypter(k.kbek, mac).CryptBlocks(payload, enc)
	defer clear(payload)
	want := k.mac([]byte(kb[:hlen]), payload)
	if subtle.ConstantTimeCompare(want[:], mac) != 1 {
		return h, nil, ErrAuthentication
	}
	bits := int(payload[0])<<8 | int(payload[1])
	if bits == 0 || bits%8 != 0 || 2+bits/8 > len(payload) {
		return h, nil, malformed("key length %d bits does not fit the payload", bits)
	}
	key := make([]byte, bits/8)
	copy(key, payload[2:])
	return h, key, nil
}

func appendHexUpper(dst, src []byte) []byte {
	const digits = "0123456789ABCDEF"
	for _, b := range src {
		dst = append(dst, digits[b>>4], digits[b&0x0F])
	}
	return dst
}
