package hsm

import (
	"context"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/mac"
)

// MAC algorithms follow from the key's usage: M1 is ISO 9797-1 algorithm 1 (TDES CBC-MAC), M3
// algorithm 3 (the ANSI X9.19 retail MAC), M6 CMAC (AES).

// MAC limits: data is bounded so one request cannot hold a worker for long; MACs are 4 to 16 bytes.
const (
	MaxMACDataLength = 32 * 1024
	MinMACLength     = mac.MinMACLength
	DefaultMACLength = 8
)

// GenerateMAC asks for a MAC over Data (M6).
type GenerateMAC struct {
	Key KeyBlock // M1, M3 (TDES) or M6 (AES), mode C or G
	// Padding is the ISO 9797-1 padding method for M1/M3 keys: 1 (zeros, the default), 2 (80 00…)
	// or 3 (length block). CMAC pads by its own rule and ignores it.
	Padding int
	Data    []byte
	// Length of the MAC in bytes, 4 up to the cipher block; zero means 8.
	Length int
}

// GenerateMAC returns the leftmost Length bytes of the MAC.
func (h *HSM) GenerateMAC(ctx context.Context, req GenerateMAC) ([]byte, error) {
	m, err := h.computeMAC(req.Key, modesGenerate, req.Padding, req.Data)
	if err != nil {
		return nil, fmt.Errorf("generating MAC: %w", err)
	}
	n := req.Length
	if n == 0 {
		n = DefaultMACLength
	}
	if n < MinMACLength || n > len(m) {
		return nil, fmt.Errorf("generating MAC: length %d bytes: %w", n, ErrInvalidInput)
	}
	return m[:n], nil
}

// VerifyMAC asks whether MAC (4 bytes up to a block, leftmost bytes) is the MAC of Data (M8).
type VerifyMAC struct {
	Key     KeyBlock // M1, M3 or M6, mode C or V
	Padding int
	Data    []byte
	MAC     []byte
}

// VerifyMAC returns nil on a match and an error wrapping ErrVerificationFailed otherwise.
func (h *HSM) VerifyMAC(ctx context.Context, req VerifyMAC) error {
	m, err := h.computeMAC(req.Key, modesVerify, req.Padding, req.Data)
	if err != nil {
		return fmt.Errorf("verifying MAC: %w", err)
	}
	if err := mac.Verify(m, req.MAC); err != nil {
		return fmt.Errorf("verifying MAC: %w", public(err))
	}
	return nil
}

func (h *HSM) computeMAC(kb KeyBlock, modes string, padding int, data []byte) ([]byte, error) {
	if len(data) > MaxMACDataLength {
		return nil, fmt.Errorf("%d bytes of data, at most %d: %w", len(data), MaxMACDataLength, ErrInvalidInput)
	}
	k, err := h.need(kb, "MAC key", []KeyUsage{UsageMACAlg1, UsageMACAlg3, UsageMACCMAC}, modes, "")
	if err != nil {
		return nil, err
	}
	if padding == 0 {
		padding = 1
	}
	p, err := mac.ParsePadding(padding)
	if err != nil || p == mac.PaddingNone {
		return nil, fmt.Errorf("padding method %d: %w", padding, ErrInvalidInput)
	}
	var m []byte
	switch k.usage {
	case UsageMACAlg1:
		m, err = mac.Alg1(k.block, data, p)
	case UsageMACAlg3:
		left, right, kerr := mac.RetailKeys(k.clear)
		if kerr != nil {
			return nil, fmt.Errorf("retail MAC needs a double-length key: %w", ErrKeyLength)
		}
		m, err = mac.Alg3(left, right, data, p)
	case UsageMACCMAC:
		m, err = mac.CMAC(k.block, data)
	}
	if err != nil {
		return nil, public(err)
	}
	return m, nil
}
