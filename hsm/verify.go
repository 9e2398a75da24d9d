package hsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/pinblock"
	"github.com/poswitch/poswitch/hsm/internal/pinverify"
)

// IBM3624 holds the IBM 3624 method parameters of a card range.
type IBM3624 struct {
	// DecimalisationTable is 16 decimal digits mapping hex digits 0–F, e.g. "0123456789012345".
	DecimalisationTable string
	// ValidationData is 1–16 hex digits (usually from the PAN), padded on the right with Pad.
	ValidationData string
	// Pad is the hex digit that pads ValidationData to 16; zero means 'F'.
	Pad byte
	// CheckLength is how many leftmost PIN digits are checked, 4–12; zero means 4.
	CheckLength int
}

func (p IBM3624) internal() (pinverify.IBM3624, error) {
	table, err := pinverify.ParseDecimalizationTable(p.DecimalisationTable)
	if err != nil {
		return pinverify.IBM3624{}, fmt.Errorf("%v: %w", err, ErrDecimalisation)
	}
	pad := p.Pad
	if pad == 0 {
		pad = 'F'
	}
	check := p.CheckLength
	if check == 0 {
		check = 4
	}
	return pinverify.IBM3624{Table: table, ValidationData: p.ValidationData, Pad: pad, CheckLength: check}, nil
}

// VerifyPINOffset asks whether a PIN block holds the PIN of a card whose IBM 3624 offset is Offset.
type VerifyPINOffset struct {
	PINKey   KeyBlock // P0 (TPK: DA, ZPK: EA), mode B or D
	PVK      KeyBlock // V1, mode C or V
	PINBlock []byte
	Format   PINFormat
	Card     Card
	Method   IBM3624
	Offset   string // CheckLength digits
}

// VerifyPINOffset returns nil when the PIN matches, an error wrapping ErrPINMismatch when it does
// not, and another error when the request itself is bad (DA/EA).
func (h *HSM) VerifyPINOffset(ctx context.Context, req VerifyPINOffset) error {
	pin, err := h.decryptPIN(req.PINKey, req.Format, req.PINBlock, req.Card)
	if err != nil {
		return fmt.Errorf("verifying PIN by IBM offset: %w", err)
	}
	defer pin.Wipe()
	pvk, err := h.need(req.PVK, "PVK", []KeyUsage{UsagePVKIBM}, modesVerify, "T")
	if err != nil {
		return fmt.Errorf("verifying PIN by IBM offset: %w", err)
	}
	m, err := req.Method.internal()
	if err != nil {
		return fmt.Errorf("verifying PIN by IBM offset: %w", err)
	}
	return mismatch(m.VerifyOffset(pvk.block, pin, req.Offset), "verifying PIN by IBM offset")
}

// VerifyPINPVV asks whether a PIN block holds the PIN of a card whose Visa PVV is PVV.
type VerifyPINPVV struct {
	PINKey   KeyBlock // P0 (TPK: DC, ZPK: EC), mode B or D
	PVK      KeyBlock // V2 (a double-length PVK pair), mode C or V
	PINBlock []byte
	Format   PINFormat
	Card     Card
	PVKI     int    // PIN verification key index, 0–6
	PVV      string // 4 digits
}

// VerifyPINPVV returns nil when the PIN matches, an error wrapping ErrPINMismatch when it does not,
// and another error when the request itself is bad (DC/EC).
func (h *HSM) VerifyPINPVV(ctx context.Context, req VerifyPINPVV) error {
	pin, err := h.decryptPIN(req.PINKey, req.Format, req.PINBlock, req.Card)
	if err != nil {
		return fmt.Errorf("verifying PIN by PVV: %w", err)
	}
	defer pin.Wipe()
	pvk, err := h.need(req.PVK, "PVK", []KeyUsage{UsagePVKVisa}, modesVerify, "T")
	if err != nil {
		return fmt.Errorf("verifying PIN by PVV: %w", err)
	}
	acct, err := req.Card.account()
	if err != nil {
		return fmt.Errorf("verifying PIN by PVV: %w", public(err))
	}
	return mismatch(pinverify.VerifyPVV(pvk.block, acct, req.PVKI, pin, req.PVV), "verifying PIN by PVV")
}

// mismatch turns the primitives' verification failure into ErrPINMismatch.
func mismatch(err error, doing string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cryptoerr.ErrVerifyFailed):
		return fmt.Errorf("%s: %w", doing, ErrPINMismatch)
	}
	return fmt.Errorf("%s: %w", doing, public(err))
}

// decryptPIN deciphers a PIN block under a P0 key allowed to decrypt.
func (h *HSM) decryptPIN(kb KeyBlock, format PINFormat, block []byte, card Card) (pinblock.PIN, error) {
	k, err := h.need(kb, "PIN key", []KeyUsage{UsagePIN}, modesDecrypt, "")
	if err != nil {
		return pinblock.PIN{}, err
	}
	f, err := format.internal()
	if err != nil {
		return pinblock.PIN{}, err
	}
	acct, err := card.account()
	if err != nil {
		return pinblock.PIN{}, public(err)
	}
	pin, err := pinblock.Decrypt(k.block, f, block, acct)
	if err != nil {
		return pinblock.PIN{}, public(err)
	}
	return pin, nil
}

// PINSource is the PIN a PVV or offset is generated for: a PIN block under a PIN key, or, for
// issuer set-up only, the clear digits (a card-issuing system's PIN mailer step).
type PINSource struct {
	PINKey   KeyBlock
	Format   PINFormat
	PINBlock []byte
	ClearPIN string // used when PINBlock is empty
}

func (h *HSM) sourcePIN(src PINSource, card Card) (pinblock.PIN, error) {
	if len(src.PINBlock) > 0 {
		return h.decryptPIN(src.PINKey, src.Format, src.PINBlock, card)
	}
	pin, err := pinblock.NewPIN(src.ClearPIN)
	if err != nil {
		return pinblock.PIN{}, public(err)
	}
	return pin, nil
}

// GeneratePVV asks for the Visa PVV of a card's PIN.
type GeneratePVV struct {
	PVK  KeyBlock // V2, mode C or G
	PVKI int
	Card Card
	PIN  PINSource
}

// GeneratePVV returns the 4-digit PVV (issuer set-up, and the DG/FW family of a real HSM).
func (h *HSM) GeneratePVV(ctx context.Context, req GeneratePVV) (string, error) {
	pvk, err := h.need(req.PVK, "PVK", []KeyUsage{UsagePVKVisa}, modesGenerate, "T")
	if err != nil {
		return "", fmt.Errorf("generating PVV: %w", err)
	}
	pin, err := h.sourcePIN(req.PIN, req.Card)
	if err != nil {
		return "", fmt.Errorf("generating PVV: %w", err)
	}
	defer pin.Wipe()
	acct, err := req.Card.account()
	if err != nil {
		return "", fmt.Errorf("generating PVV: %w", public(err))
	}
	pvv, err := pinverify.PVV(pvk.block, acct, req.PVKI, pin)
	if err != nil {
		return "", fmt.Errorf("generating PVV: %w", public(err))
	}
	return pvv, nil
}

// GenerateOffset asks for the IBM 3624 offset of a card's PIN.
type GenerateOffset struct {
	PVK    KeyBlock // V1, mode C or G
	Method IBM3624
	Card   Card
	PIN    PINSource
}

// GenerateOffset returns the offset (CheckLength digits) of the PIN (issuer set-up, DE/BK family).
func (h *HSM) GenerateOffset(ctx context.Context, req GenerateOffset) (string, error) {
	pvk, err := h.need(req.PVK, "PVK", []KeyUsage{UsagePVKIBM}, modesGenerate, "T")
	if err != nil {
		return "", fmt.Errorf("generating IBM offset: %w", err)
	}
	m, err := req.Method.internal()
	if err != nil {
		return "", fmt.Errorf("generating IBM offset: %w", err)
	}
	pin, err := h.sourcePIN(req.PIN, req.Card)
	if err != nil {
		return "", fmt.Errorf("generating IBM offset: %w", err)
	}
	defer pin.Wipe()
	offset, err := m.Offset(pvk.block, pin)
	if err != nil {
		return "", fmt.Errorf("generating IBM offset: %w", public(err))
	}
	return offset, nil
}
