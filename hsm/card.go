package hsm

import (
	"context"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cvv"
)

// Service codes that make the CVV algorithm compute CVV2 and iCVV.
const (
	ServiceCodeCVV2 = cvv.ServiceCodeCVV2
	ServiceCodeICVV = cvv.ServiceCodeICVV
)

// GenerateCVV asks for the CVV of a card (CW). Use ServiceCodeCVV2 for CVV2, ServiceCodeICVV for iCVV.
type GenerateCVV struct {
	CVK         KeyBlock // C0, double-length TDES (CVK A ‖ CVK B), mode C or G
	PAN         string
	Expiry      string // YYMM
	ServiceCode string // 3 digits
}

// GenerateCVV returns the 3-digit value.
func (h *HSM) GenerateCVV(ctx context.Context, req GenerateCVV) (string, error) {
	k, err := h.cvk(req.CVK, modesGenerate)
	if err != nil {
		return "", fmt.Errorf("generating CVV: %w", err)
	}
	v, err := k.Generate(req.PAN, req.Expiry, req.ServiceCode)
	if err != nil {
		return "", fmt.Errorf("generating CVV: %w", public(err))
	}
	return v, nil
}

// VerifyCVV asks whether CVV is the card's value (CY).
type VerifyCVV struct {
	CVK         KeyBlock // C0, mode C or V
	PAN         string
	Expiry      string // YYMM
	ServiceCode string
	CVV         string
}

// VerifyCVV returns nil on a match and an error wrapping ErrVerificationFailed on a mismatch.
func (h *HSM) VerifyCVV(ctx context.Context, req VerifyCVV) error {
	k, err := h.cvk(req.CVK, modesVerify)
	if err != nil {
		return fmt.Errorf("verifying CVV: %w", err)
	}
	if err := k.Verify(req.PAN, req.Expiry, req.ServiceCode, req.CVV); err != nil {
		return fmt.Errorf("verifying CVV: %w", public(err))
	}
	return nil
}

func (h *HSM) cvk(kb KeyBlock, modes string) (*cvv.Key, error) {
	k, err := h.need(kb, "CVK", []KeyUsage{UsageCVK}, modes, "T")
	if err != nil {
		return nil, err
	}
	if k.cvvKey == nil {
		return nil, fmt.Errorf("CVK must be double-length: %w", ErrKeyLength)
	}
	return k.cvvKey, nil
}
