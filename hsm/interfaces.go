package hsm

import "context"

// The small interfaces consumers hold. *HSM implements them in-process; service.Client implements
// them over TCP against `poswitch hsm serve`, so a switch picks either by configuration.

// PINTranslator is what an acquiring switch needs: re-encipher terminal PIN blocks (TPK or DUKPT)
// under the issuer link's ZPK.
type PINTranslator interface {
	TranslatePIN(ctx context.Context, req TranslatePIN) ([]byte, error)
	TranslatePINFromDUKPT(ctx context.Context, req TranslateDUKPT) ([]byte, error)
}

// PINVerifier is what an issuer needs to check a PIN. A wrong PIN is an error wrapping
// ErrPINMismatch; any other error is a key or request failure.
type PINVerifier interface {
	VerifyPINOffset(ctx context.Context, req VerifyPINOffset) error
	VerifyPINPVV(ctx context.Context, req VerifyPINPVV) error
}

// CardVerifier checks card data an issuer receives: CVV/CVV2/iCVV and EMV cryptograms.
type CardVerifier interface {
	VerifyCVV(ctx context.Context, req VerifyCVV) error
	VerifyARQC(ctx context.Context, req VerifyARQC) ([]byte, error)
}

// MACer generates and verifies message MACs on a link.
type MACer interface {
	GenerateMAC(ctx context.Context, req GenerateMAC) ([]byte, error)
	VerifyMAC(ctx context.Context, req VerifyMAC) error
}

// Verifier is the issuer side in one value.
type Verifier interface {
	PINVerifier
	CardVerifier
}

var (
	_ PINTranslator = (*HSM)(nil)
	_ Verifier      = (*HSM)(nil)
	_ MACer         = (*HSM)(nil)
)
