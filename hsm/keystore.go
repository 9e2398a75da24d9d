package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/poswitch/poswitch/hsm/internal/cvv"
	"github.com/poswitch/poswitch/hsm/internal/dukpt"
	"github.com/poswitch/poswitch/hsm/internal/keycheck"
	"github.com/poswitch/poswitch/hsm/internal/tr31"
)

// KeyBlock is a key as the HSM hands it out: a TR-31 version D key block under the LMK (or, for
// ExportKey, under a KEK). It is encrypted and authenticated, but treat it as secret-ish: do not log
// it, and store it only where keys belong.
type KeyBlock string

// String keeps key blocks out of logs and error strings that format them by accident: only the
// header (usage, algorithm, mode) is shown.
func (kb KeyBlock) String() string {
	if len(kb) >= 16 {
		return string(kb[:16]) + "…"
	}
	return "KeyBlock(malformed)"
}

// Header returns the clear TR-31 header of the key block (its first 16 characters), which names the
// usage, algorithm and mode of use.
func (kb KeyBlock) Header() string {
	if len(kb) >= 16 {
		return string(kb[:16])
	}
	return ""
}

// KCV is a key check value: the first 3 bytes (6 hex characters) of the key's check computation.
type KCV string

// KeyUsage is the TR-31 key usage (header bytes 5-6).
type KeyUsage string

// The key usages the HSM stores and enforces.
const (
	UsageBDK            KeyUsage = "B0" // DUKPT base derivation key
	UsageCVK            KeyUsage = "C0" // card verification key (CVV, CVV2, iCVV)
	UsageDataEncryption KeyUsage = "D0" // symmetric data encryption
	UsageEMVMasterAC    KeyUsage = "E0" // EMV issuer master key for application cryptograms
	UsageEMVMasterSMC   KeyUsage = "E1" // EMV issuer master key, secure messaging confidentiality
	UsageEMVMasterSMI   KeyUsage = "E2" // EMV issuer master key, secure messaging integrity
	UsageEMVMasterDAC   KeyUsage = "E3" // EMV issuer master key, data authentication code
	UsageEMVMasterDN    KeyUsage = "E4" // EMV issuer master key, dynamic numbers
	UsageEMVMasterPers  KeyUsage = "E5" // EMV issuer master key, card personalisation
	UsageEMVMasterOther KeyUsage = "E6" // EMV issuer master key, other
	UsageKEK            KeyUsage = "K0" // key encryption key (ZMK, TMK)
	UsageKBPK           KeyUsage = "K1" // TR-31 key block protection key
	UsageMACAlg1        KeyUsage = "M1" // ISO 9797-1 MAC algorithm 1
	UsageMACAlg3        KeyUsage = "M3" // ISO 9797-1 MAC algorithm 3 (X9.19 retail MAC)
	UsageMACCMAC        KeyUsage = "M6" // ISO 9797-1:2011 MAC algorithm 5 (CMAC)
	UsagePIN            KeyUsage = "P0" // PIN encryption (TPK, ZPK)
	UsagePVKIBM         KeyUsage = "V1" // PIN verification, IBM 3624
	UsagePVKVisa        KeyUsage = "V2" // PIN verification, Visa PVV
)

// KeyAlgorithm is the TR-31 algorithm byte.
type KeyAlgorithm byte

// Algorithms the HSM holds keys for.
const (
	TDES KeyAlgorithm = 'T'
	AES  KeyAlgorithm = 'A'
)

// ModeOfUse is the TR-31 mode of use byte.
type ModeOfUse byte

// Modes of use (TR-31 header byte 8).
const (
	ModeBoth        ModeOfUse = 'B' // encrypt and decrypt / wrap and unwrap
	ModeMAC         ModeOfUse = 'C' // generate and verify (MAC, CVV, PVV)
	ModeDecrypt     ModeOfUse = 'D'
	ModeEncrypt     ModeOfUse = 'E'
	ModeGenerate    ModeOfUse = 'G'
	ModeNone        ModeOfUse = 'N' // no special restrictions
	ModeVerify      ModeOfUse = 'V'
	ModeDerive      ModeOfUse = 'X'
	ModeMakeVariant ModeOfUse = 'Y'
)

// KeySpec says what key to generate or import.
type KeySpec struct {
	Usage     KeyUsage
	Algorithm KeyAlgorithm
	// Length in bytes: 16 or 24 for TDES, 16, 24 or 32 for AES. Zero means 16.
	Length int
	// ModeOfUse zero means the usage's usual mode (B for P0/K0, C for MAC/CVK/PVK, X for B0/E*).
	ModeOfUse ModeOfUse
	// NotExportable marks the key block 'N': ExportKey refuses it.
	NotExportable bool
	// KeyVersion is the two-character TR-31 key version, "00" when empty.
	KeyVersion string
}

// usageRule is what the HSM accepts for one usage: its algorithms and the modes it may carry.
type usageRule struct {
	algorithms  string
	modes       string
	defaultMode ModeOfUse
}

var usageRules = map[KeyUsage]usageRule{
	UsageBDK:            {"TA", "XN", ModeDerive},
	UsageCVK:            {"T", "CGVN", ModeMAC},
	UsageDataEncryption: {"TA", "BDEN", ModeBoth},
	UsageEMVMasterAC:    {"T", "XN", ModeDerive},
	UsageEMVMasterSMC:   {"T", "XN", ModeDerive},
	UsageEMVMasterSMI:   {"T", "XN", ModeDerive},
	UsageEMVMasterDAC:   {"T", "XN", ModeDerive},
	UsageEMVMasterDN:    {"T", "XN", ModeDerive},
	UsageEMVMasterPers:  {"T", "XN", ModeDerive},
	UsageEMVMasterOther: {"T", "XN", ModeDerive},
	UsageKEK:            {"TA", "BDEN", ModeBoth},
	UsageKBPK:           {"TA", "BDEN", ModeBoth},
	UsageMACAlg1:        {"T", "CGVN", ModeMAC},
	UsageMACAlg3:        {"T", "CGVN", ModeMAC},
	UsageMACCMAC:        {"A", "CGVN", ModeMAC},
	UsagePIN:            {"TA", "BDEN", ModeBoth},
	UsagePVKIBM:         {"T", "CGVN", ModeMAC},
	UsagePVKVisa:        {"T", "CGVN", ModeMAC},
}

func (s KeySpec) header() (tr31.Header, error) {
	rule, ok := usageRules[s.Usage]
	if !ok {
		return tr31.Header{}, fmt.Errorf("key usage %q: %w", printable(string(s.Usage)), ErrKeyUsage)
	}
	if !containsByte(rule.algorithms, byte(s.Algorithm)) {
		return tr31.Header{}, fmt.Errorf("algorithm %q for usage %s: %w", printable(string([]byte{byte(s.Algorithm)})), s.Usage, ErrKeyAlgorithm)
	}
	mode := s.ModeOfUse
	if mode == 0 {
		mode = rule.defaultMode
	}
	if !containsByte(rule.modes, byte(mode)) {
		return tr31.Header{}, fmt.Errorf("mode of use %q for usage %s: %w", printable(string([]byte{byte(mode)})), s.Usage, ErrKeyMode)
	}
	if err := checkKeyLength(s.Algorithm, s.length()); err != nil {
		return tr31.Header{}, err
	}
	export := byte('E')
	if s.NotExportable {
		export = 'N'
	}
	version := s.KeyVersion
	if version == "" {
		version = "00"
	}
	return tr31.Header{Version: 'D', Usage: string(s.Usage), Algorithm: byte(s.Algorithm), ModeOfUse: byte(mode), KeyVersion: version, Exportability: export}, nil
}

func (s KeySpec) length() int {
	if s.Length == 0 {
		return 16
	}
	return s.Length
}

func checkKeyLength(alg KeyAlgorithm, n int) error {
	switch {
	case alg == TDES && (n == 16 || n == 24):
	case alg == AES && (n == 16 || n == 24 || n == 32):
	default:
		return fmt.Errorf("%d-byte key for algorithm %c: %w", n, alg, ErrKeyLength)
	}
	return nil
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// loadedKey is an unwrapped key with its cipher prepared. It never leaves the package.
type loadedKey struct {
	usage  KeyUsage
	alg    KeyAlgorithm
	mode   ModeOfUse
	export byte
	header tr31.Header
	clear  []byte       // for primitives that derive from the raw key (DUKPT, EMV, CVV halves)
	block  cipher.Block // TDES or AES key schedule, ready for hot operations
	kcv    KCV

	// DUKPT base derivation keys keep their derivation schedule prepared (usage B0 only).
	tdesBDK *dukpt.TDESBDK
	aesBDK  *dukpt.AESBDK
	// CVKs keep their DES and TDES schedules prepared (usage C0, double length only).
	cvvKey *cvv.Key
}

func newLoadedKey(h tr31.Header, clearKey []byte) (*loadedKey, error) {
	k := &loadedKey{usage: KeyUsage(h.Usage), alg: KeyAlgorithm(h.Algorithm), mode: ModeOfUse(h.ModeOfUse), export: h.Exportability, header: h, clear: clearKey}
	if err := checkKeyLength(k.alg, len(clearKey)); err != nil {
		return nil, err
	}
	var err error
	switch k.alg {
	case TDES:
		k.block, err = des.NewTripleDESCipher(expandTDES(clearKey))
	case AES:
		k.block, err = aes.NewCipher(clearKey)
	default:
		return nil, fmt.Errorf("algorithm %q: %w", printable(string([]byte{byte(k.alg)})), ErrKeyAlgorithm)
	}
	if err != nil {
		return nil, fmt.Errorf("preparing key: %w", ErrInternal)
	}
	if k.kcv, err = checkValue(k.alg, clearKey); err != nil {
		return nil, err
	}
	if k.usage == UsageCVK && len(clearKey) == 16 {
		if k.cvvKey, err = cvv.NewKey(clearKey); err != nil {
			return nil, fmt.Errorf("preparing CVK: %w", public(err))
		}
	}
	if k.usage == UsageBDK {
		switch k.alg {
		case TDES:
			k.tdesBDK, err = dukpt.NewTDESBDK(clearKey)
		case AES:
			k.aesBDK, err = dukpt.NewAESBDK(clearKey)
		}
		if err != nil {
			return nil, fmt.Errorf("preparing BDK: %w", public(err))
		}
	}
	return k, nil
}

// expandTDES turns a double-length key K1‖K2 into the K1‖K2‖K1 crypto/des expects.
func expandTDES(k []byte) []byte {
	if len(k) == 24 {
		return k
	}
	e := make([]byte, 24)
	copy(e, k)
	copy(e[16:], k[:8])
	return e
}

// checkValue is the KCV: TDES encipherment of zeros for TDES keys, AES-CMAC of zeros for AES keys
// (ANSI X9.24-1:2017, as payShield and AWS Payment Cryptography report them).
func checkValue(alg KeyAlgorithm, clearKey []byte) (KCV, error) {
	var (
		v   []byte
		err error
	)
	if alg == AES {
		v, err = keycheck.AES(clearKey)
	} else {
		v, err = keycheck.TDES(clearKey)
	}
	if err != nil {
		return "", fmt.Errorf("computing check value: %w", public(err))
	}
	return KCV(fmt.Sprintf("%X", v)), nil
}

// keyCache holds unwrapped keys by key block so hot operations skip the unwrap. It is bounded:
// past maxKeys an arbitrary entry is dropped; a dropped key is simply unwrapped again when used.
type keyCache struct {
	m       sync.Map // KeyBlock → *loadedKey
	n       atomic.Int64
	maxKeys int64
}

func (c *keyCache) get(kb KeyBlock) (*loadedKey, bool) {
	v, ok := c.m.Load(kb)
	if !ok {
		return nil, false
	}
	return v.(*loadedKey), true
}

func (c *keyCache) put(kb KeyBlock, k *loadedKey) {
	if _, loaded := c.m.LoadOrStore(kb, k); loaded {
		return
	}
	if c.n.Add(1) <= c.maxKeys {
		return
	}
	c.m.Range(func(key, _ any) bool {
		if key.(KeyBlock) == kb {
			return true
		}
		if _, ok := c.m.LoadAndDelete(key); ok {
			c.n.Add(-1)
		}
		return c.n.Load() > c.maxKeys
	})
}

// key unwraps (or finds in the cache) a key block under the LMK.
func (h *HSM) key(kb KeyBlock) (*loadedKey, error) {
	if k, ok := h.cache.get(kb); ok {
		return k, nil
	}
	hdr, clearKey, err := h.lmk.Unwrap(string(kb))
	if err != nil {
		return nil, keyBlockError(err)
	}
	k, err := newLoadedKey(hdr, clearKey)
	if err != nil {
		clear(clearKey)
		return nil, err
	}
	h.cache.put(kb, k)
	return k, nil
}

func keyBlockError(err error) error {
	if errors.Is(err, tr31.ErrAuthentication) {
		return ErrKeyBlockAuth
	}
	return fmt.Errorf("%v: %w", err, ErrKeyBlockFormat)
}

// keyRole names the key in an operation for error messages ("source PIN key").
type keyRole string

// need loads a key block and checks it may do what the operation asks: usage among usages, the
// mode of use among modes ('N' always allowed), and the algorithm among algs (empty: any).
func (h *HSM) need(kb KeyBlock, role keyRole, usages []KeyUsage, modes string, algs string) (*loadedKey, error) {
	k, err := h.key(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	ok := false
	for _, u := range usages {
		if k.usage == u {
			ok = true
			break
		}
	}
	if !ok {
		return nil, fmt.Errorf("%s has usage %s, want %v: %w", role, printable(string(k.usage)), usages, ErrKeyUsage)
	}
	if k.mode != ModeNone && !containsByte(modes, byte(k.mode)) {
		return nil, fmt.Errorf("%s has mode of use %c, want one of %s: %w", role, k.mode, modes, ErrKeyMode)
	}
	if algs != "" && !containsByte(algs, byte(k.alg)) {
		return nil, fmt.Errorf("%s has algorithm %c, want one of %s: %w", role, k.alg, algs, ErrKeyAlgorithm)
	}
	return k, nil
}

// Modes that allow each kind of operation.
const (
	modesDecrypt  = "BD"
	modesEncrypt  = "BE"
	modesGenerate = "CG"
	modesVerify   = "CV"
	modesDerive   = "X"
	modesUnwrap   = "BD"
	modesWrap     = "BE"
)

func printable(s string) string {
	if len(s) > 16 {
		s = s[:16]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7E {
			b[i] = '?'
		}
	}
	return string(b)
}

func newAES(k []byte) (cipher.Block, error) { return aes.NewCipher(k) }
