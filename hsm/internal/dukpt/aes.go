package dukpt

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

// AES DUKPT sizes and limits (ANSI X9.24-3-2017).
const (
	AESKSNLen   = 12 // 96-bit KSN: 64-bit initial key ID (BDK ID ‖ derivation ID) + 32-bit counter
	AESIKIDLen  = 8
	AESBDKIDLen = 4
	// AESMaxCounterOnes: a device skips counters with more one-bits (X9.24-3 6.1).
	AESMaxCounterOnes = 16
)

// KeyType is the algorithm and length of a derived key (X9.24-3 6.2.2).
type KeyType uint8

// Key types of derivation data (algorithm indicator, length in bits).
const (
	KeyTDES2 KeyType = iota // 2TDEA, 128 bits
	KeyTDES3                // 3TDEA, 192 bits
	KeyAES128
	KeyAES192
	KeyAES256
)

// Len is the key length in bytes (0 for an unknown type).
func (t KeyType) Len() int {
	switch t {
	case KeyTDES2, KeyAES128:
		return 16
	case KeyTDES3, KeyAES192:
		return 24
	case KeyAES256:
		return 32
	}
	return 0
}

func (t KeyType) String() string {
	switch t {
	case KeyTDES2:
		return "2TDEA"
	case KeyTDES3:
		return "3TDEA"
	case KeyAES128:
		return "AES-128"
	case KeyAES192:
		return "AES-192"
	case KeyAES256:
		return "AES-256"
	}
	return fmt.Sprintf("KeyType(%d)", uint8(t))
}

// strength orders key types for the "no stronger than the derivation key" rule, in AES key bytes.
func (t KeyType) strength() int {
	switch t {
	case KeyTDES2, KeyTDES3:
		return 16
	}
	return t.Len()
}

// algorithm is the derivation data's algorithm indicator.
func (t KeyType) algorithm() uint16 { return uint16(t) }

// AESKeyType is the key type of an AES key of n bytes.
func AESKeyType(n int) (KeyType, error) {
	switch n {
	case 16:
		return KeyAES128, nil
	case 24:
		return KeyAES192, nil
	case 32:
		return KeyAES256, nil
	}
	return 0, fmt.Errorf("AES DUKPT key of %d bytes: %w", n, cryptoerr.ErrKeyLength)
}

// AESUsage is the key usage indicator of derivation data (X9.24-3 6.3.2 tables 2 and 3).
type AESUsage uint16

// AES DUKPT key usages.
const (
	AESKeyEncryption        AESUsage = 0x0002
	AESPINEncryption        AESUsage = 0x1000
	AESMACGeneration        AESUsage = 0x2000
	AESMACVerification      AESUsage = 0x2001
	AESMACBoth              AESUsage = 0x2002
	AESDataEncrypt          AESUsage = 0x3000
	AESDataDecrypt          AESUsage = 0x3001
	AESDataBoth             AESUsage = 0x3002
	aesKeyDerivation        AESUsage = 0x8000
	aesKeyDerivationInitial AESUsage = 0x8001
)

func (u AESUsage) valid() bool {
	switch u {
	case AESKeyEncryption, AESPINEncryption, AESMACGeneration, AESMACVerification, AESMACBoth,
		AESDataEncrypt, AESDataDecrypt, AESDataBoth:
		return true
	}
	return false
}

// AESBDK is a prepared AES base derivation key.
type AESBDK struct {
	block cipher.Block
	kt    KeyType
}

// NewAESBDK prepares a 16-, 24- or 32-byte AES BDK.
func NewAESBDK(bdk []byte) (*AESBDK, error) {
	kt, err := AESKeyType(len(bdk))
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(bdk)
	if err != nil {
		return nil, err
	}
	return &AESBDK{block: b, kt: kt}, nil
}

// KeyType is the BDK's type; the initial and intermediate keys have the same type.
func (b *AESBDK) KeyType() KeyType { return b.kt }

// InitialKey derives the device's initial key from its 8-byte initial key ID (the left 8 bytes of
// the KSN).
func (b *AESBDK) InitialKey(ikid []byte) ([]byte, error) {
	if len(ikid) != AESIKIDLen && len(ikid) != AESKSNLen {
		return nil, fmt.Errorf("AES DUKPT initial key ID of %d bytes: %w", len(ikid), cryptoerr.ErrKSN)
	}
	var dd [16]byte
	derivationData(&dd, aesKeyDerivationInitial, b.kt)
	copy(dd[8:], ikid[:AESIKIDLen])
	out := make([]byte, b.kt.Len())
	deriveKey(b.block, &dd, out)
	return out, nil
}

// TransactionKey derives the intermediate derivation key for ksn (the key the working keys come from).
func (b *AESBDK) TransactionKey(ksn []byte) ([]byte, error) {
	if err := CheckAESKSN(ksn); err != nil {
		return nil, err
	}
	ik, err := b.InitialKey(ksn[:AESIKIDLen])
	if err != nil {
		return nil, err
	}
	defer clear(ik)
	return AESTransactionKeyFromInitial(ik, ksn)
}

// WorkingKey derives the working key of type kt for usage from ksn.
func (b *AESBDK) WorkingKey(ksn []byte, usage AESUsage, kt KeyType) ([]byte, error) {
	tk, err := b.TransactionKey(ksn)
	if err != nil {
		return nil, err
	}
	defer clear(tk)
	return AESWorkingKeyFromTransaction(tk, ksn, usage, kt)
}

// PINKey is the AES-128 PIN encryption working key for ksn, the key of an ISO format 4 PIN block from
// an AES DUKPT PIN pad. Use WorkingKey for other key types.
func (b *AESBDK) PINKey(ksn []byte) ([]byte, error) {
	return b.WorkingKey(ksn, AESPINEncryption, KeyAES128)
}

// CheckAESKSN refuses a KSN that is not 12 bytes, whose counter is zero, or whose counter has more
// than 16 one-bits.
func CheckAESKSN(ksn []byte) error {
	if len(ksn) != AESKSNLen {
		return fmt.Errorf("AES DUKPT KSN of %d bytes: %w", len(ksn), cryptoerr.ErrKSN)
	}
	tc := binary.BigEndian.Uint32(ksn[AESIKIDLen:])
	if tc == 0 {
		return fmt.Errorf("AES DUKPT KSN counter is zero: %w", cryptoerr.ErrKSN)
	}
	if ones := bits.OnesCount32(tc); ones > AESMaxCounterOnes {
		return fmt.Errorf("AES DUKPT KSN counter has %d one-bits (max %d): %w", ones, AESMaxCounterOnes, cryptoerr.ErrKSN)
	}
	return nil
}

// AESCounter returns the 32-bit transaction counter of a 12-byte KSN (0 for a wrong length).
func AESCounter(ksn []byte) uint32 {
	if len(ksn) != AESKSNLen {
		return 0
	}
	return binary.BigEndian.Uint32(ksn[AESIKIDLen:])
}

// AESTransactionKeyFromInitial walks the counter from the initial key: for each one-bit, most
// significant first, derive the next key with usage "key derivation" (X9.24-3 6.1, 6.3.1).
func AESTransactionKeyFromInitial(ik []byte, ksn []byte) ([]byte, error) {
	kt, err := AESKeyType(len(ik))
	if err != nil {
		return nil, err
	}
	if err := CheckAESKSN(ksn); err != nil {
		return nil, err
	}
	tc := binary.BigEndian.Uint32(ksn[AESIKIDLen:])
	key := make([]byte, len(ik))
	copy(key, ik)
	var dd [16]byte
	var working uint32
	for mask := uint32(1 << 31); mask != 0; mask >>= 1 {
		if tc&mask == 0 {
			continue
		}
		working |= mask
		derivationData(&dd, aesKeyDerivation, kt)
		copy(dd[8:12], ksn[AESBDKIDLen:AESIKIDLen])
		binary.BigEndian.PutUint32(dd[12:], working)
		c, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		deriveKey(c, &dd, key)
	}
	return key, nil
}

// AESWorkingKeyFromTransaction derives a working key of type kt for usage from a transaction
// (intermediate derivation) key.
func AESWorkingKeyFromTransaction(tk []byte, ksn []byte, usage AESUsage, kt KeyType) ([]byte, error) {
	if _, err := AESKeyType(len(tk)); err != nil {
		return nil, err
	}
	if err := CheckAESKSN(ksn); err != nil {
		return nil, err
	}
	if !usage.valid() {
		return nil, fmt.Errorf("AES DUKPT key usage %04X: %w", uint16(usage), cryptoerr.ErrInvalidInput)
	}
	if kt.Len() == 0 {
		return nil, fmt.Errorf("AES DUKPT working key type %d: %w", uint8(kt), cryptoerr.ErrInvalidInput)
	}
	// A derived key may not be stronger than the key it comes from (X9.24-3 6.2.2); TDES keys count
	// as no stronger than AES-128.
	if kt.strength() > len(tk) {
		return nil, fmt.Errorf("AES DUKPT %s working key from a %d-byte key: %w", kt, len(tk), cryptoerr.ErrKeyLength)
	}
	var dd [16]byte
	derivationData(&dd, usage, kt)
	copy(dd[8:], ksn[AESBDKIDLen:])
	c, err := aes.NewCipher(tk)
	if err != nil {
		return nil, err
	}
	out := make([]byte, kt.Len())
	deriveKey(c, &dd, out)
	return out, nil
}

// derivationData fills the first 8 bytes of derivation data: version 01, block counter 1, usage,
// algorithm, length in bits.
func derivationData(dd *[16]byte, usage AESUsage, kt KeyType) {
	dd[0] = 0x01
	dd[1] = 0x01
	binary.BigEndian.PutUint16(dd[2:], uint16(usage))
	binary.BigEndian.PutUint16(dd[4:], kt.algorithm())
	binary.BigEndian.PutUint16(dd[6:], uint16(kt.Len()*8))
}

// deriveKey encrypts derivation data under key once per 16 bytes of out, bumping the block counter.
// out may alias the key the cipher was made from: the schedule is already expanded.
func deriveKey(key cipher.Block, dd *[16]byte, out []byte) {
	var block [32]byte
	for off := 0; off < len(out); off += 16 {
		key.Encrypt(block[off:off+16], dd[:])
		dd[1]++
	}
	copy(out, block[:len(out)])
	clear(block[:])
}
