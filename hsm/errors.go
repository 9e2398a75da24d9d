package hsm

import (
	"errors"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
)

// Error is a failure the HSM reports, with the payShield error code a host command answers with.
// Its text never carries key, PIN or PIN block material.
type Error struct {
	Code string // two characters: "01", "15", "A6", …
	text string
}

func (e *Error) Error() string { return e.text }

// The failures callers act on. Wrap them with what was being done; Code finds the code again.
var (
	ErrPINMismatch        = &Error{"01", "PIN verification failed"}
	ErrVerificationFailed = &Error{"01", "verification failed"}
	ErrSourceKeyParity    = &Error{"10", "source key parity error"}
	ErrDestKeyParity      = &Error{"11", "destination key parity error"}
	ErrInvalidInput       = &Error{"15", "invalid input data"}
	ErrPINBlock           = &Error{"20", "PIN block does not contain valid values"}
	ErrAccountNumber      = &Error{"22", "invalid account number"}
	ErrPINFormat          = &Error{"23", "invalid PIN block format"}
	ErrPINLength          = &Error{"24", "PIN is fewer than 4 or more than 12 digits"}
	ErrDecimalisation     = &Error{"25", "decimalisation table error"}
	ErrKeyLength          = &Error{"27", "incompatible key length"}
	ErrKeyBlockFormat     = &Error{"83", "key block format error"}
	ErrKeyBlockAuth       = &Error{"A4", "key block authentication failure"}
	ErrKeyUsage           = &Error{"A6", "invalid key usage"}
	ErrKeyAlgorithm       = &Error{"A7", "invalid key algorithm"}
	ErrKeyMode            = &Error{"A8", "invalid key mode of use"}
	ErrKeyExport          = &Error{"AA", "key is not exportable"}
	ErrInternal           = &Error{"41", "internal error"}
)

// Code returns the payShield error code for err: "00" for nil, the code of the first *Error in the
// chain, or "15" (invalid input) for anything else, because every other failure is a request the
// HSM could not act on.
func Code(err error) string {
	if err == nil {
		return "00"
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "15"
}

// primitiveErrors maps the sentinels of the crypto primitives to the HSM's public errors.
var primitiveErrors = []struct {
	primitive error
	public    *Error
}{
	{cryptoerr.ErrVerifyFailed, ErrVerificationFailed},
	{cryptoerr.ErrPINBlock, ErrPINBlock},
	{cryptoerr.ErrPINBlockFormat, ErrPINFormat},
	{cryptoerr.ErrPINLength, ErrPINLength},
	{cryptoerr.ErrKeyParity, ErrSourceKeyParity},
	{cryptoerr.ErrKeyLength, ErrKeyLength},
	{cryptoerr.ErrPAN, ErrAccountNumber},
	{cryptoerr.ErrKSN, ErrInvalidKSN},
	{cryptoerr.ErrInvalidInput, ErrInvalidInput},
}

// ErrInvalidKSN is a DUKPT key serial number that is malformed or that no device could use.
var ErrInvalidKSN = &Error{"15", "invalid key serial number"}

// publicError keeps a primitive's message and adds the HSM sentinel to the chain, so errors.Is
// works with the public values and Code finds the payShield code.
type publicError struct {
	err    error
	public *Error
}

func (e *publicError) Error() string   { return e.err.Error() }
func (e *publicError) Unwrap() []error { return []error{e.public, e.err} }

// public converts an error from a crypto primitive into one that carries an HSM sentinel.
func public(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	for _, m := range primitiveErrors {
		if errors.Is(err, m.primitive) {
			return &publicError{err, m.public}
		}
	}
	return &publicError{err, ErrInvalidInput}
}

// ErrorForCode is the error a remote HSM's error code stands for: the sentinel with that code
// (ErrVerificationFailed for 01), or a new *Error naming the code. "00" gives nil.
func ErrorForCode(code string) error {
	if code == "00" {
		return nil
	}
	for _, e := range []*Error{ErrVerificationFailed, ErrSourceKeyParity, ErrDestKeyParity, ErrInvalidInput, ErrPINBlock,
		ErrAccountNumber, ErrPINFormat, ErrPINLength, ErrDecimalisation, ErrKeyLength, ErrKeyBlockFormat, ErrKeyBlockAuth,
		ErrKeyUsage, ErrKeyAlgorithm, ErrKeyMode, ErrKeyExport, ErrInternal} {
		if e.Code == code {
			return e
		}
	}
	return &Error{Code: code, text: "HSM error " + printable(code)}
}
