// Package cryptoerr holds the sentinel errors every HSM primitive returns, so that the HSM service can
// map a failure to a payShield error code with errors.Is without parsing messages.
//
// Primitives wrap these with what they were doing (fmt.Errorf("decoding format 0 PIN block: %w",
// cryptoerr.ErrPINBlock)); a wrapped message never contains a clear PIN, key, PIN block or full PAN.
package cryptoerr

import (
	"errors"
	"fmt"
)

var (
	// ErrKeyLength: a key has the wrong length for the algorithm asked for (payShield 15, or 27 for
	// a key of the wrong type).
	ErrKeyLength = errors.New("key length invalid for the algorithm")
	// ErrKeyParity: a DES key does not have odd parity where odd parity is required (payShield 10/11).
	ErrKeyParity = errors.New("DES key parity error")
	// ErrPINLength: a PIN, or a PIN length field of a decoded block, is outside 4–12 digits (payShield 24).
	ErrPINLength = errors.New("PIN length outside 4-12 digits")
	// ErrPINBlock: a decoded PIN block holds invalid values: wrong control nibble, non-digit PIN, bad
	// fill. A wrong key usually shows up as this error (payShield 20).
	ErrPINBlock = errors.New("PIN block does not contain valid values")
	// ErrPINBlockFormat: the PIN block format code is unknown or unsupported, or does not fit the key
	// (format 4 needs AES, formats 0–3 need TDES) (payShield 23).
	ErrPINBlockFormat = errors.New("invalid PIN block format code")
	// ErrPAN: a PAN or account-number field is not 12–19 digits, or is missing where the format needs
	// it (payShield 15).
	ErrPAN = errors.New("invalid PAN or account number")
	// ErrKSN: a DUKPT key serial number is malformed or its counter is not one a device can use (zero,
	// or too many one-bits) (payShield 15 or a KSN-specific code).
	ErrKSN = errors.New("invalid key serial number")
	// ErrVerifyFailed: a PIN, PVV, offset, CVV, MAC or cryptogram did not verify (payShield 01).
	ErrVerifyFailed = errors.New("verification failed")
	// ErrInvalidInput: any other malformed input: odd or non-hex data, a bad decimalisation table,
	// service code, expiry date, ATC or buffer length (payShield 15).
	ErrInvalidInput = errors.New("invalid input")
)

// ErrDecimalizationTable: a decimalisation table is not 16 decimal digits (payShield 25). It wraps
// ErrInvalidInput, so a caller that maps only ErrInvalidInput still answers 15.
var ErrDecimalizationTable = fmt.Errorf("decimalisation table invalid: %w", ErrInvalidInput)
