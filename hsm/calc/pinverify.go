package calc

import (
	"crypto/cipher"
	"fmt"

	"github.com/poswitch/poswitch/hsm/internal/cryptoerr"
	"github.com/poswitch/poswitch/hsm/internal/pinblock"
	"github.com/poswitch/poswitch/hsm/internal/pinverify"
)

// IBM3624Params are the IBM 3624 inputs besides the PVK: decimalisation table (16 digits),
// validation data (1–16 hex digits), pad character and check length (4–12).
type IBM3624Params struct {
	DecimalizationTable string
	ValidationData      string
	Pad                 string
	CheckLength         int
}

func (p IBM3624Params) parse() (pinverify.IBM3624, error) {
	t, err := pinverify.ParseDecimalizationTable(p.DecimalizationTable)
	if err != nil {
		return pinverify.IBM3624{}, fmt.Errorf("decimalisation table: %w", err)
	}
	if len(p.Pad) != 1 {
		return pinverify.IBM3624{}, fmt.Errorf("pad: one hex character: %w", cryptoerr.ErrInvalidInput)
	}
	return pinverify.IBM3624{Table: t, ValidationData: p.ValidationData, Pad: p.Pad[0], CheckLength: p.CheckLength}, nil
}

// IBM3624NaturalPIN returns the natural PIN (the PIN of offset 0…0).
func IBM3624NaturalPIN(pvk string, p IBM3624Params) (string, error) {
	k, ip, err := ibmInputs(pvk, p)
	if err != nil {
		return "", err
	}
	n, err := ip.NaturalPIN(k)
	if err != nil {
		return "", err
	}
	return n.Reveal(), nil
}

// IBM3624Offset returns the offset of pin.
func IBM3624Offset(pvk string, p IBM3624Params, pin string) (string, error) {
	k, ip, err := ibmInputs(pvk, p)
	if err != nil {
		return "", err
	}
	pn, err := pinblock.NewPIN(pin)
	if err != nil {
		return "", fmt.Errorf("pin: %w", err)
	}
	return ip.Offset(k, pn)
}

// IBM3624VerifyOffset returns nil when pin matches offset, ErrVerifyFailed when it does not.
func IBM3624VerifyOffset(pvk string, p IBM3624Params, pin, offset string) error {
	k, ip, err := ibmInputs(pvk, p)
	if err != nil {
		return err
	}
	pn, err := pinblock.NewPIN(pin)
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	return ip.VerifyOffset(k, pn, offset)
}

func ibmInputs(pvk string, p IBM3624Params) (cipher.Block, pinverify.IBM3624, error) {
	k, err := tdesKey("pvk", pvk)
	if err != nil {
		return nil, pinverify.IBM3624{}, err
	}
	ip, err := p.parse()
	return k, ip, err
}

// VisaPVV returns the 4-digit PVV of pin.
func VisaPVV(pvk, pan string, pvki int, pin string) (string, error) {
	k, a, pn, err := pvvInputs(pvk, pan, pin)
	if err != nil {
		return "", err
	}
	return pinverify.PVV(k, a, pvki, pn)
}

// VisaVerifyPVV returns nil when pin matches pvv, ErrVerifyFailed when it does not.
func VisaVerifyPVV(pvk, pan string, pvki int, pin, pvv string) error {
	k, a, pn, err := pvvInputs(pvk, pan, pin)
	if err != nil {
		return err
	}
	return pinverify.VerifyPVV(k, a, pvki, pn, pvv)
}

func pvvInputs(pvk, pan, pin string) (cipher.Block, pinblock.Account, pinblock.PIN, error) {
	k, err := tdesKey("pvk", pvk)
	if err != nil {
		return nil, pinblock.Account{}, pinblock.PIN{}, err
	}
	a, err := pinblock.ParsePAN(pan)
	if err != nil {
		return nil, a, pinblock.PIN{}, fmt.Errorf("pan: %w", err)
	}
	pn, err := pinblock.NewPIN(pin)
	if err != nil {
		return nil, a, pn, fmt.Errorf("pin: %w", err)
	}
	return k, a, pn, nil
}
