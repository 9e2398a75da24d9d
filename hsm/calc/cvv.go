package calc

import (
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cvv"
)

// CVV returns the 3-digit CVV (service code as on the stripe), CVV2 (service code 000) or iCVV (999).
func CVV(cvk, pan, expiryYYMM, serviceCode string) (string, error) {
	k, err := cvvKey(cvk)
	if err != nil {
		return "", err
	}
	return k.Generate(pan, expiryYYMM, serviceCode)
}

// VerifyCVV returns nil when value is the card's CVV, ErrVerifyFailed when it is not.
func VerifyCVV(cvk, pan, expiryYYMM, serviceCode, value string) error {
	k, err := cvvKey(cvk)
	if err != nil {
		return err
	}
	return k.Verify(pan, expiryYYMM, serviceCode, value)
}

func cvvKey(cvk string) (*cvv.Key, error) {
	raw, err := parseHex("cvk", cvk)
	if err != nil {
		return nil, err
	}
	k, err := cvv.NewKey(raw)
	if err != nil {
		return nil, fmt.Errorf("cvk: %w", err)
	}
	return k, nil
}
