package hsm

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealedPANOpensOnlyUnderItsLMK(t *testing.T) {
	h := NewDevelopment()
	pan := "6222021234567890123"
	a, err := h.SealPAN(pan)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.SealPAN(pan)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one PAN are equal: the nonce is not random")
	}
	if bytes.Contains(a, []byte(pan)) || bytes.Contains(a, []byte(pan[6:15])) {
		t.Fatal("sealed bytes hold the PAN's digits")
	}
	if got, err := h.OpenPAN(a); err != nil || got != pan {
		t.Fatalf("OpenPAN = %q, %v", got, err)
	}
	if _, err := NewDevelopment().OpenPAN(a); !errors.Is(err, ErrSealedPAN) {
		t.Fatalf("another LMK opened it: %v", err)
	}
	a[len(a)-1] ^= 1
	if _, err := h.OpenPAN(a); !errors.Is(err, ErrSealedPAN) {
		t.Fatalf("altered bytes opened: %v", err)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0}} {
		if _, err := h.OpenPAN(bad); !errors.Is(err, ErrSealedPAN) {
			t.Fatalf("OpenPAN(%x) = %v", bad, err)
		}
	}
}

func TestSealPANRefusesWhatIsNotAPAN(t *testing.T) {
	h := NewDevelopment()
	for _, bad := range []string{"", "12345678901234567890", "4761 7390", "476173900101001D"} {
		if _, err := h.SealPAN(bad); err == nil {
			t.Errorf("SealPAN(%q) accepted", bad)
		}
	}
}
