package dukpt

import (
	"crypto/cipher"
	"crypto/des"
	"fmt"
	"math/bits"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/tdes"
)

// TDES DUKPT sizes and limits (ANSI X9.24-1).
const (
	TDESKSNLen = 10 // 80-bit KSN: 59-bit initial KSN + 21-bit counter
	TDESKeyLen = 16
	// TDESMaxCounterOnes is the most one-bits a device's 21-bit counter ever has: the device skips
	// counters with more, so a KSN carrying one is forged or corrupt.
	TDESMaxCounterOnes = 10
	tdesCounterMask    = 0x1FFFFF
)

// TDESUsage selects the variant applied to a TDES DUKPT transaction key.
type TDESUsage uint8

// TDES DUKPT key variants (X9.24-1 2009 Annex A, Table A-1 and the data-key one-way step).
const (
	TDESPIN          TDESUsage = iota // PIN encryption: XOR 00000000000000FF…
	TDESMACRequest                    // MAC, request or both ways: XOR 000000000000FF00…
	TDESMACResponse                   // MAC, response: XOR 00000000FF000000…
	TDESDataRequest                   // data encryption, request or both: XOR 0000000000FF0000…, then one-way
	TDESDataResponse                  // data encryption, response: XOR 000000FF00000000…, then one-way
)

func (u TDESUsage) String() string {
	switch u {
	case TDESPIN:
		return "PIN"
	case TDESMACRequest:
		return "MAC request"
	case TDESMACResponse:
		return "MAC response"
	case TDESDataRequest:
		return "data request"
	case TDESDataResponse:
		return "data response"
	}
	return fmt.Sprintf("TDESUsage(%d)", uint8(u))
}

// variantMask is the byte XORed into each half of the key, and its position in the half.
func (u TDESUsage) variantMask() (pos int, ok bool) {
	switch u {
	case TDESPIN:
		return 7, true
	case TDESMACRequest:
		return 6, true
	case TDESMACResponse:
		return 4, true
	case TDESDataRequest:
		return 5, true
	case TDESDataResponse:
		return 3, true
	}
	return 0, false
}

var keyRegisterMask = [TDESKeyLen]byte{0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0, 0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0}

// TDESBDK is a prepared double-length TDES base derivation key.
type TDESBDK struct {
	bdk     cipher.Block // BDK
	bdkMask cipher.Block // BDK XOR C0C0C0C000000000C0C0C0C000000000
}

// NewTDESBDK prepares a 16-byte BDK.
func NewTDESBDK(bdk []byte) (*TDESBDK, error) {
	if len(bdk) != TDESKeyLen {
		return nil, fmt.Errorf("TDES BDK of %d bytes: %w", len(bdk), cryptoerr.ErrKeyLength)
	}
	var masked [TDESKeyLen]byte
	for i := range masked {
		masked[i] = bdk[i] ^ keyRegisterMask[i]
	}
	defer clear(masked[:])
	b1, err := tdes.NewCipher(bdk)
	if err != nil {
		return nil, err
	}
	b2, err := tdes.NewCipher(masked[:])
	if err != nil {
		return nil, err
	}
	return &TDESBDK{bdk: b1, bdkMask: b2}, nil
}

// IPEK derives the initial PIN encryption key of the device named by ksn (the counter is ignored).
func (b *TDESBDK) IPEK(ksn []byte) ([TDESKeyLen]byte, error) {
	var ipek [TDESKeyLen]byte
	if len(ksn) != TDESKSNLen {
		return ipek, fmt.Errorf("TDES KSN of %d bytes: %w", len(ksn), cryptoerr.ErrKSN)
	}
	var base [8]byte
	copy(base[:], ksn[:8])
	base[7] &= 0xE0 // clear the counter's top 5 bits that share the 8th byte
	b.bdk.Encrypt(ipek[:8], base[:])
	b.bdkMask.Encrypt(ipek[8:], base[:])
	return ipek, nil
}

// TransactionKey derives the device's current key for ksn (before any variant).
func (b *TDESBDK) TransactionKey(ksn []byte) ([TDESKeyLen]byte, error) {
	ipek, err := b.IPEK(ksn)
	if err != nil {
		return ipek, err
	}
	defer clear(ipek[:])
	return TDESTransactionKeyFromIPEK(ipek[:], ksn)
}

// WorkingKey derives the transaction key for ksn and applies usage's variant.
func (b *TDESBDK) WorkingKey(ksn []byte, usage TDESUsage) ([TDESKeyLen]byte, error) {
	k, err := b.TransactionKey(ksn)
	if err != nil {
		return k, err
	}
	return TDESVariant(k, usage)
}

// PINKey is WorkingKey(ksn, TDESPIN): the key a PIN pad enciphered the transaction's PIN block with.
func (b *TDESBDK) PINKey(ksn []byte) ([TDESKeyLen]byte, error) {
	return b.WorkingKey(ksn, TDESPIN)
}

// CheckTDESKSN refuses a KSN that is not 10 bytes, whose counter is zero (the IPEK itself is never a
// transaction key) or has more than 10 one-bits (a device never uses such a counter).
func CheckTDESKSN(ksn []byte) error {
	if len(ksn) != TDESKSNLen {
		return fmt.Errorf("TDES KSN of %d bytes: %w", len(ksn), cryptoerr.ErrKSN)
	}
	counter := tdesCounter(ksn)
	if counter == 0 {
		return fmt.Errorf("TDES KSN counter is zero: %w", cryptoerr.ErrKSN)
	}
	if ones := bits.OnesCount32(counter); ones > TDESMaxCounterOnes {
		return fmt.Errorf("TDES KSN counter has %d one-bits (max %d): %w", ones, TDESMaxCounterOnes, cryptoerr.ErrKSN)
	}
	return nil
}

// TDESCounter returns the 21-bit transaction counter of a 10-byte KSN (0 for a wrong length).
func TDESCounter(ksn []byte) uint32 {
	if len(ksn) != TDESKSNLen {
		return 0
	}
	return tdesCounter(ksn)
}

func tdesCounter(ksn []byte) uint32 {
	return (uint32(ksn[7])<<16 | uint32(ksn[8])<<8 | uint32(ksn[9])) & tdesCounterMask
}

// TDESTransactionKeyFromIPEK walks the KSN counter from the IPEK, one non-reversible key generation
// per one-bit, most significant first (X9.24-1 Annex A "calculate the key").
func TDESTransactionKeyFromIPEK(ipek []byte, ksn []byte) ([TDESKeyLen]byte, error) {
	var key [TDESKeyLen]byte
	if len(ipek) != TDESKeyLen {
		return key, fmt.Errorf("TDES IPEK of %d bytes: %w", len(ipek), cryptoerr.ErrKeyLength)
	}
	if err := CheckTDESKSN(ksn); err != nil {
		return key, err
	}
	copy(key[:], ipek)
	counter := tdesCounter(ksn)
	// The KSN register: rightmost 64 bits of the KSN with the counter cleared, then set bit by bit.
	var reg uint64
	for _, c := range ksn[2:] {
		reg = reg<<8 | uint64(c)
	}
	reg &^= tdesCounterMask
	for bit := uint32(1 << 20); bit != 0; bit >>= 1 {
		if counter&bit == 0 {
			continue
		}
		reg |= uint64(bit)
		if err := nonReversibleKeyGen(&key, reg); err != nil {
			return key, err
		}
	}
	return key, nil
}

// nonReversibleKeyGen replaces key with its successor for the KSN register reg (X9.24-1 A.2).
func nonReversibleKeyGen(key *[TDESKeyLen]byte, reg uint64) error {
	var data [8]byte
	for i := 0; i < 8; i++ {
		data[i] = byte(reg >> (56 - 8*i))
	}
	var right, left [8]byte
	if err := desXEX(right[:], key[:8], key[8:], data[:]); err != nil {
		return err
	}
	for i := range key {
		key[i] ^= keyRegisterMask[i]
	}
	if err := desXEX(left[:], key[:8], key[8:], data[:]); err != nil {
		return err
	}
	copy(key[:8], left[:])
	copy(key[8:], right[:])
	return nil
}

// desXEX computes DES_k((data XOR x)) XOR x.
func desXEX(dst, k, x, data []byte) error {
	c, err := des.NewCipher(k)
	if err != nil {
		return err
	}
	for i := 0; i < 8; i++ {
		dst[i] = data[i] ^ x[i]
	}
	c.Encrypt(dst, dst)
	for i := 0; i < 8; i++ {
		dst[i] ^= x[i]
	}
	return nil
}

// TDESVariant applies usage's variant to a transaction key; the data variants add the one-way step
// (each half of the variant key enciphered under the variant key itself).
func TDESVariant(key [TDESKeyLen]byte, usage TDESUsage) ([TDESKeyLen]byte, error) {
	pos, ok := usage.variantMask()
	if !ok {
		return [TDESKeyLen]byte{}, fmt.Errorf("TDES DUKPT usage %d: %w", uint8(usage), cryptoerr.ErrInvalidInput)
	}
	key[pos] ^= 0xFF
	key[8+pos] ^= 0xFF
	if usage == TDESDataRequest || usage == TDESDataResponse {
		c, err := tdes.NewCipher(key[:])
		if err != nil {
			return [TDESKeyLen]byte{}, err
		}
		c.Encrypt(key[:8], key[:8])
		c.Encrypt(key[8:], key[8:])
	}
	return key, nil
}
