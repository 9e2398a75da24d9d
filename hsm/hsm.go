package hsm

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/poswitch/poswitch/hsm/internal/tr31"
)

// HSM is the software HSM: a key store whose keys exist in clear only inside this value, and the
// PIN, card, MAC and EMV operations on them. It is safe for concurrent use.
type HSM struct {
	lmk    *tr31.KBPK
	lmkKCV KCV
	cache  keyCache
	random io.Reader
	// testRandom is set by WithRandom so PIN block fill also comes from the test's source.
	testRandom bool
	// panKey keys PANDigest (pandigest.go).
	panKey    []byte
	panDigest panDigesters
	// panSealKey keys SealPAN and OpenPAN (panseal.go).
	panSealKey []byte
}

type (
	randomSource = io.Reader
	blockCipher  = cipher.Block
)

// Option configures New.
type Option func(*HSM)

// defaultMaxCachedKeys bounds the unwrapped-key cache; a switch uses a few keys per terminal and
// per issuer link, so this covers thousands of terminals without unwrapping on the hot path.
const defaultMaxCachedKeys = 16384

// WithMaxCachedKeys bounds how many unwrapped keys the HSM keeps prepared (at least 1).
func WithMaxCachedKeys(n int) Option {
	return func(h *HSM) {
		if n < 1 {
			n = 1
		}
		h.cache.maxKeys = int64(n)
	}
}

// WithRandom replaces crypto/rand as the source of key material and padding. Tests only.
func WithRandom(r io.Reader) Option {
	return func(h *HSM) { h.random, h.testRandom = r, true }
}

// New starts an HSM under the given 32-byte LMK (see LoadLMK). The HSM keeps its own copy.
func New(lmk []byte, opts ...Option) (*HSM, error) {
	if len(lmk) != LMKLength {
		return nil, fmt.Errorf("LMK is %d bytes, want %d", len(lmk), LMKLength)
	}
	kbpk, err := tr31.NewKBPK(lmk)
	if err != nil {
		return nil, fmt.Errorf("preparing LMK: %w", err)
	}
	k, err := newLoadedKey(tr31.Header{Version: 'D', Usage: "K1", Algorithm: 'A', ModeOfUse: 'B', KeyVersion: "00", Exportability: 'N'}, append([]byte(nil), lmk...))
	if err != nil {
		return nil, fmt.Errorf("preparing LMK: %w", err)
	}
	h := &HSM{lmk: kbpk, lmkKCV: k.kcv, random: rand.Reader, panKey: derivePANDigestKey(lmk),
		panSealKey: derivePANSealKey(lmk)}
	h.cache.maxKeys = defaultMaxCachedKeys
	for _, o := range opts {
		o(h)
	}
	return h, nil
}

// NewDevelopment returns an HSM under a fresh random LMK: for tests and simulators whose keys live
// only as long as the process.
func NewDevelopment(opts ...Option) *HSM {
	lmk := make([]byte, LMKLength)
	if _, err := rand.Read(lmk); err != nil {
		panic("hsm: crypto/rand failed: " + err.Error())
	}
	defer clear(lmk)
	h, err := New(lmk, opts...)
	if err != nil {
		panic("hsm: " + err.Error()) // a 32-byte random LMK is always valid
	}
	return h
}

// LMKCheckValue is the check value of the LMK, as the NC diagnostics command reports it, so an
// operator can tell which LMK a running HSM holds.
func (h *HSM) LMKCheckValue() KCV { return h.lmkKCV }

// FirmwareVersion is what NC reports as the firmware version (9 characters, as payShield sends).
const FirmwareVersion = "PSWHSM-01"
