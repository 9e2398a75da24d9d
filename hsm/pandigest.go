package hsm

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// panDigestLabel separates the PAN digest key from every other use of the LMK.
const panDigestLabel = "poswitch PAN digest key v1"

// derivePANDigestKey derives the key of PANDigest from the LMK, so it is as stable as the LMK and
// never stored or shown anywhere.
func derivePANDigestKey(lmk []byte) []byte {
	m := hmac.New(sha256.New, lmk)
	m.Write([]byte(panDigestLabel))
	return m.Sum(nil)
}

// panDigesters reuses HMAC states; PANDigest runs once per booked transaction.
type panDigesters struct{ pool sync.Pool }

// PANDigest is the keyed hash (HMAC-SHA-256 under a key derived from the LMK) that the ledger stores
// beside the masked PAN, so a card's transactions can be found without storing its number. The same
// PAN gives the same digest under the same LMK; without the LMK it cannot be recomputed.
func (h *HSM) PANDigest(pan string) []byte {
	m, _ := h.panDigest.pool.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, h.panKey)
	}
	m.Reset()
	m.Write([]byte(pan))
	sum := m.Sum(nil)
	h.panDigest.pool.Put(m)
	return sum
}
