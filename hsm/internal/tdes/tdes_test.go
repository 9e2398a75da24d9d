package tdes

import (
	"bytes"
	"crypto/des"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

func TestAdjustParityGivesOddParityAndKeepsKeyBits(t *testing.T) {
	for i := 0; i < 200; i++ {
		k := make([]byte, 16)
		rand.Read(k)
		adj := append([]byte(nil), k...)
		AdjustParity(adj)
		if !HasOddParity(adj) || CheckParity(adj) != nil {
			t.Fatalf("%X not odd after adjusting", adj)
		}
		for j := range k {
			if k[j]&^1 != adj[j]&^1 {
				t.Fatalf("adjusting changed key bits: %X → %X", k, adj)
			}
		}
	}
	// 0123456789ABCDEF already has odd parity; 0000000000000000 does not.
	if !HasOddParity([]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}) {
		t.Error("0123456789ABCDEF reported even")
	}
	if err := CheckParity(make([]byte, 8)); !errors.Is(err, cryptoerr.ErrKeyParity) {
		t.Errorf("zero key: %v", err)
	}
}

func TestDoubleLengthKeyIsK1K2K1(t *testing.T) {
	k := []byte("0123456789ABCDEF")
	c2, err := NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	c3, _ := des.NewTripleDESCipher(append(append([]byte(nil), k...), k[:8]...))
	a, b := make([]byte, 8), make([]byte, 8)
	c2.Encrypt(a, []byte("plaintxt"))
	c3.Encrypt(b, []byte("plaintxt"))
	if !bytes.Equal(a, b) {
		t.Error("16-byte key is not K1‖K2‖K1")
	}
	for _, n := range []int{0, 7, 9, 15, 17, 32} {
		if _, err := NewCipher(make([]byte, n)); !errors.Is(err, cryptoerr.ErrKeyLength) {
			t.Errorf("%d-byte key: %v", n, err)
		}
	}
	if _, err := NewDoubleLength(make([]byte, 24)); !errors.Is(err, cryptoerr.ErrKeyLength) {
		t.Errorf("24-byte key as double length: %v", err)
	}
}
