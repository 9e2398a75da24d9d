package hsm

import (
	"context"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/pinblock"
)

// PINFormat is an ISO 9564-1 PIN block format, numbered as ISO numbers them (not payShield codes;
// see the service for those).
type PINFormat int

// PIN block formats the HSM translates and verifies.
const (
	ISO0 PINFormat = 0 // TDES, PIN ‖ F fill XOR PAN
	ISO1 PINFormat = 1 // TDES, PIN ‖ random fill, no PAN
	ISO3 PINFormat = 3 // TDES, PIN ‖ random A–F fill XOR PAN
	ISO4 PINFormat = 4 // AES, ISO 9564-1:2017
)

func (f PINFormat) String() string { return fmt.Sprintf("ISO-%d", int(f)) }

func (f PINFormat) internal() (pinblock.Format, error) {
	switch f {
	case ISO0, ISO1, ISO3, ISO4:
		return pinblock.Format(f), nil
	}
	return 0, fmt.Errorf("PIN block format %d: %w", int(f), ErrPINFormat)
}

// Card identifies the card a PIN block is bound to: the full PAN, or (as payShield commands carry
// it) only the 12-digit account number. Format 4 needs the full PAN.
type Card struct {
	PAN           string // 12–19 digits
	AccountNumber string // 12 rightmost PAN digits excluding the check digit, when PAN is empty
}

// String masks the card so that a Card printed by mistake shows no full PAN.
func (c Card) String() string {
	if a, err := c.account(); err == nil {
		return a.String()
	}
	return "Card(invalid)"
}

func (c Card) account() (pinblock.Account, error) {
	if c.PAN != "" {
		return pinblock.ParsePAN(c.PAN)
	}
	if c.AccountNumber != "" {
		return pinblock.ParseAccountNumber(c.AccountNumber)
	}
	return pinblock.Account{}, nil
}

// TranslatePIN asks for a PIN block to be re-enciphered from one PIN key to another.
type TranslatePIN struct {
	SourceKey    KeyBlock // P0 (TPK or ZPK), mode B or D
	SourceFormat PINFormat
	PINBlock     []byte   // 8 bytes (ISO 0/1/3, TDES key) or 16 bytes (ISO 4, AES key)
	DestKey      KeyBlock // P0 (ZPK), mode B or E
	DestFormat   PINFormat
	Card         Card
	// MaxPINLength refuses longer PINs with ErrPINLength; zero means 12.
	MaxPINLength int
}

// Translated is a re-enciphered PIN block with the length of the PIN inside it, which payShield
// translate commands report.
type Translated struct {
	PINBlock  []byte
	PINLength int
}

// TranslatePIN deciphers a PIN block under the source PIN key, checks it, and returns it enciphered
// under the destination key in the destination format (CA for a TPK, CC for a ZPK). The clear PIN
// exists only inside this call.
func (h *HSM) TranslatePIN(ctx context.Context, req TranslatePIN) ([]byte, error) {
	t, err := h.TranslatePINBlock(ctx, req)
	return t.PINBlock, err
}

// TranslatePINBlock is TranslatePIN that also reports the PIN length.
func (h *HSM) TranslatePINBlock(ctx context.Context, req TranslatePIN) (Translated, error) {
	src, err := h.need(req.SourceKey, "source PIN key", []KeyUsage{UsagePIN}, modesDecrypt, "")
	if err != nil {
		return Translated{}, fmt.Errorf("translating PIN: %w", err)
	}
	dst, err := h.need(req.DestKey, "destination PIN key", []KeyUsage{UsagePIN}, modesEncrypt, "")
	if err != nil {
		return Translated{}, fmt.Errorf("translating PIN: %w", err)
	}
	return h.translate(src, req.SourceFormat, req.PINBlock, dst, req.DestFormat, req.Card, req.MaxPINLength)
}

func (h *HSM) translate(src *loadedKey, srcFormat PINFormat, block []byte, dst *loadedKey, dstFormat PINFormat, card Card, maxPINLength int) (Translated, error) {
	from, err := srcFormat.internal()
	if err != nil {
		return Translated{}, fmt.Errorf("translating PIN: source: %w", err)
	}
	to, err := dstFormat.internal()
	if err != nil {
		return Translated{}, fmt.Errorf("translating PIN: destination: %w", err)
	}
	acct, err := card.account()
	if err != nil {
		return Translated{}, fmt.Errorf("translating PIN: %w", public(err))
	}
	pin, err := pinblock.Decrypt(src.block, from, block, acct)
	if err != nil {
		return Translated{}, fmt.Errorf("translating PIN: %w", public(err))
	}
	defer pin.Wipe()
	if maxPINLength > 0 && pin.Len() > maxPINLength {
		return Translated{}, fmt.Errorf("translating PIN: PIN longer than %d digits: %w", maxPINLength, ErrPINLength)
	}
	out := make([]byte, to.BlockSize())
	if err := pinblock.Encrypt(out, dst.block, to, pin, acct, h.pinRandom()); err != nil {
		return Translated{}, fmt.Errorf("translating PIN: %w", public(err))
	}
	return Translated{PINBlock: out, PINLength: pin.Len()}, nil
}

// pinRandom is the fill source for PIN blocks: nil lets pinblock use crypto/rand directly, which
// avoids an interface call on the hot path unless a test replaced the source.
func (h *HSM) pinRandom() randomSource {
	if h.testRandom {
		return h.random
	}
	return nil
}

// EncryptPIN is what a PIN pad does: encipher a clear PIN under a PIN key. It exists for the
// terminal simulator and for test set-up; the switch never calls it.
type EncryptPIN struct {
	Key    KeyBlock // P0, mode B or E
	Format PINFormat
	PIN    string // 4–12 digits
	Card   Card
}

// EncryptPIN returns the PIN block of req.PIN under req.Key.
func (h *HSM) EncryptPIN(ctx context.Context, req EncryptPIN) ([]byte, error) {
	k, err := h.need(req.Key, "PIN key", []KeyUsage{UsagePIN}, modesEncrypt, "")
	if err != nil {
		return nil, fmt.Errorf("enciphering PIN: %w", err)
	}
	return h.encryptPIN(k.block, req.Format, req.PIN, req.Card)
}

func (h *HSM) encryptPIN(key blockCipher, format PINFormat, digits string, card Card) ([]byte, error) {
	f, err := format.internal()
	if err != nil {
		return nil, fmt.Errorf("enciphering PIN: %w", err)
	}
	pin, err := pinblock.NewPIN(digits)
	if err != nil {
		return nil, fmt.Errorf("enciphering PIN: %w", public(err))
	}
	defer pin.Wipe()
	acct, err := card.account()
	if err != nil {
		return nil, fmt.Errorf("enciphering PIN: %w", public(err))
	}
	out := make([]byte, f.BlockSize())
	if err := pinblock.Encrypt(out, key, f, pin, acct, h.pinRandom()); err != nil {
		return nil, fmt.Errorf("enciphering PIN: %w", public(err))
	}
	return out, nil
}
