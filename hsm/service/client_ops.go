package service

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/poswitch/poswitch/hsm"
)

var (
	_ hsm.PINTranslator = (*Client)(nil)
	_ hsm.Verifier      = (*Client)(nil)
	_ hsm.MACer         = (*Client)(nil)
)

// command builds a request: the code, then each field appended in order.
type command []byte

func (c command) key(kb hsm.KeyBlock) command    { return append(append(c, 'S'), kb...) }
func (c command) text(s string) command          { return append(c, s...) }
func (c command) hex(b []byte) command           { return appendHex(c, b) }
func (c command) num(n, width int) command       { return append(c, fmt.Sprintf("%0*d", width, n)...) }
func (c command) format(f hsm.PINFormat) command { return append(c, formatCode(f)...) }

// card writes the account-number field: the full PAN with its length when ISO 4 is involved, the
// 12-digit account number otherwise.
func (c command) card(card hsm.Card, fullPAN bool) (command, error) {
	if fullPAN {
		if card.PAN == "" {
			return nil, fmt.Errorf("format 48 needs the full PAN: %w", hsm.ErrAccountNumber)
		}
		return c.num(len(card.PAN), 2).text(card.PAN), nil
	}
	acct := card.AccountNumber
	if acct == "" {
		acct = accountNumber(card.PAN)
	}
	if len(acct) != 12 {
		return nil, fmt.Errorf("account number: %w", hsm.ErrAccountNumber)
	}
	return c.text(acct), nil
}

// parseTranslated reads the PIN length, PIN block and format of a CB/CD/G1 reply.
func parseTranslated(fieldsOut []byte, to hsm.PINFormat) (hsm.Translated, error) {
	n := 16
	if to == hsm.ISO4 {
		n = 32
	}
	f := &fields{b: fieldsOut}
	pinLen := f.number(2, "PIN length")
	block := f.hexBytes(n, "PIN block")
	f.pinFormat("PIN block format")
	f.done()
	if f.err != nil {
		return hsm.Translated{}, fmt.Errorf("HSM reply: %v: %w", f.err, hsm.ErrInternal)
	}
	return hsm.Translated{PINBlock: block, PINLength: pinLen}, nil
}

func maxPINLength(n int) int {
	if n <= 0 || n > 12 {
		return 12
	}
	return n
}

// TranslatePIN sends CA (TPK → ZPK; the server treats CA and CC alike for P0 key blocks).
func (c *Client) TranslatePIN(ctx context.Context, req hsm.TranslatePIN) ([]byte, error) {
	t, err := c.TranslatePINBlock(ctx, req)
	return t.PINBlock, err
}

// TranslatePINBlock is TranslatePIN that also reports the PIN length.
func (c *Client) TranslatePINBlock(ctx context.Context, req hsm.TranslatePIN) (hsm.Translated, error) {
	cmd := command("CA").key(req.SourceKey).key(req.DestKey).num(maxPINLength(req.MaxPINLength), 2).hex(req.PINBlock).format(req.SourceFormat).format(req.DestFormat)
	cmd, err := cmd.card(req.Card, req.SourceFormat == hsm.ISO4 || req.DestFormat == hsm.ISO4)
	if err != nil {
		return hsm.Translated{}, fmt.Errorf("translating PIN: %w", err)
	}
	out, err := c.call(ctx, cmd)
	if err != nil {
		return hsm.Translated{}, fmt.Errorf("translating PIN: %w", err)
	}
	return parseTranslated(out, req.DestFormat)
}

// TranslatePINFromDUKPT sends G0.
func (c *Client) TranslatePINFromDUKPT(ctx context.Context, req hsm.TranslateDUKPT) ([]byte, error) {
	if req.WorkingKeyLength != 0 && req.WorkingKeyLength != 16 {
		return nil, fmt.Errorf("translating DUKPT PIN: G0 derives AES-128 working keys only: %w", hsm.ErrInvalidInput)
	}
	cmd := command("G0").key(req.BDK).key(req.DestKey).text("A05").hex(req.KSN).hex(req.PINBlock).format(req.SourceFormat).format(req.DestFormat)
	cmd, err := cmd.card(req.Card, req.SourceFormat == hsm.ISO4 || req.DestFormat == hsm.ISO4)
	if err != nil {
		return nil, fmt.Errorf("translating DUKPT PIN: %w", err)
	}
	out, err := c.call(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("translating DUKPT PIN: %w", err)
	}
	t, err := parseTranslated(out, req.DestFormat)
	return t.PINBlock, err
}

// pinMismatch turns a 01 reply of a PIN verification into hsm.ErrPINMismatch.
func pinMismatch(err error, doing string) error {
	if errors.Is(err, hsm.ErrVerificationFailed) {
		return fmt.Errorf("%s: %w", doing, hsm.ErrPINMismatch)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// VerifyPINOffset sends EA. The validation data must fit EA's 12-character field: up to 12 hex
// digits padded with F, or 16 digits whose PAN part is the last 5 account digits (sent as 'N').
func (c *Client) VerifyPINOffset(ctx context.Context, req hsm.VerifyPINOffset) error {
	check := req.Method.CheckLength
	if check == 0 {
		check = 4
	}
	acct := req.Card.AccountNumber
	if acct == "" {
		acct = accountNumber(req.Card.PAN)
	}
	vdata, err := validationField(req.Method, acct)
	if err != nil {
		return fmt.Errorf("verifying PIN by IBM offset: %w", err)
	}
	cmd := command("EA").key(req.PINKey).key(req.PVK).num(12, 2).hex(req.PINBlock).format(req.Format).num(check, 2)
	if cmd, err = cmd.card(req.Card, req.Format == hsm.ISO4); err != nil {
		return fmt.Errorf("verifying PIN by IBM offset: %w", err)
	}
	cmd = cmd.text(req.Method.DecimalisationTable).text(vdata).text(req.Offset + strings.Repeat("F", max(0, 12-len(req.Offset))))
	_, err = c.call(ctx, cmd)
	if err != nil {
		return pinMismatch(err, "verifying PIN by IBM offset")
	}
	return nil
}

func validationField(m hsm.IBM3624, acct string) (string, error) {
	v := m.ValidationData
	pad := m.Pad
	if pad == 0 {
		pad = 'F'
	}
	switch {
	case len(v) <= 12 && pad == 'F':
		return v + strings.Repeat("F", 12-len(v)), nil
	case len(v) == 16 && len(acct) == 12:
		if i := strings.Index(v, acct[7:]); i >= 0 {
			return v[:i] + "N" + v[i+5:], nil
		}
	}
	return "", fmt.Errorf("validation data cannot be sent in EA's 12-character field: %w", hsm.ErrInvalidInput)
}

// VerifyPINPVV sends EC.
func (c *Client) VerifyPINPVV(ctx context.Context, req hsm.VerifyPINPVV) error {
	cmd := command("EC").key(req.PINKey).key(req.PVK).hex(req.PINBlock).format(req.Format)
	cmd, err := cmd.card(req.Card, req.Format == hsm.ISO4)
	if err != nil {
		return fmt.Errorf("verifying PIN by PVV: %w", err)
	}
	if req.PVKI < 0 || req.PVKI > 9 {
		return fmt.Errorf("verifying PIN by PVV: PVKI %d: %w", req.PVKI, hsm.ErrInvalidInput)
	}
	cmd = cmd.num(req.PVKI, 1).text(req.PVV)
	if _, err := c.call(ctx, cmd); err != nil {
		return pinMismatch(err, "verifying PIN by PVV")
	}
	return nil
}

// GenerateCVV sends CW.
func (c *Client) GenerateCVV(ctx context.Context, req hsm.GenerateCVV) (string, error) {
	out, err := c.call(ctx, command("CW").key(req.CVK).text(req.PAN).text(";").text(req.Expiry).text(req.ServiceCode))
	if err != nil {
		return "", fmt.Errorf("generating CVV: %w", err)
	}
	if len(out) != 3 {
		return "", fmt.Errorf("generating CVV: reply of %d characters: %w", len(out), hsm.ErrInternal)
	}
	return string(out), nil
}

// VerifyCVV sends CY.
func (c *Client) VerifyCVV(ctx context.Context, req hsm.VerifyCVV) error {
	if _, err := c.call(ctx, command("CY").key(req.CVK).text(req.CVV).text(req.PAN).text(";").text(req.Expiry).text(req.ServiceCode)); err != nil {
		return fmt.Errorf("verifying CVV: %w", err)
	}
	return nil
}

// macAlgorithmFor picks the M6/M8 algorithm code from the key's usage.
func macAlgorithmFor(kb hsm.KeyBlock) (string, error) {
	if len(kb) >= 7 {
		for code, usage := range macAlgorithms {
			if hsm.KeyUsage(kb[5:7]) == usage {
				return code, nil
			}
		}
	}
	return "", fmt.Errorf("key is not a MAC key: %w", hsm.ErrKeyUsage)
}

func macCommand(code string, kb hsm.KeyBlock, padding int, data []byte) (command, error) {
	alg, err := macAlgorithmFor(kb)
	if err != nil {
		return nil, err
	}
	if padding == 0 {
		padding = 1
	}
	if len(data) > hsm.MaxMACDataLength {
		return nil, fmt.Errorf("%d bytes of MAC data: %w", len(data), hsm.ErrInvalidInput)
	}
	return command(code).text("00").text(alg).num(padding, 1).text("FFF").key(kb).text(fmt.Sprintf("%04X", len(data))).text(string(data)), nil
}

// GenerateMAC sends M6; the reply carries an 8-byte MAC, truncated here to req.Length.
func (c *Client) GenerateMAC(ctx context.Context, req hsm.GenerateMAC) ([]byte, error) {
	cmd, err := macCommand("M6", req.Key, req.Padding, req.Data)
	if err != nil {
		return nil, fmt.Errorf("generating MAC: %w", err)
	}
	out, err := c.call(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("generating MAC: %w", err)
	}
	m, err := hex.DecodeString(string(out))
	if err != nil || len(m) != 8 {
		return nil, fmt.Errorf("generating MAC: reply: %w", hsm.ErrInternal)
	}
	n := req.Length
	if n == 0 {
		n = hsm.DefaultMACLength
	}
	if n < hsm.MinMACLength || n > len(m) {
		return nil, fmt.Errorf("generating MAC: length %d over M6: %w", n, hsm.ErrInvalidInput)
	}
	return m[:n], nil
}

// VerifyMAC sends M8.
func (c *Client) VerifyMAC(ctx context.Context, req hsm.VerifyMAC) error {
	cmd, err := macCommand("M8", req.Key, req.Padding, req.Data)
	if err != nil {
		return fmt.Errorf("verifying MAC: %w", err)
	}
	if _, err := c.call(ctx, cmd.hex(req.MAC)); err != nil {
		return fmt.Errorf("verifying MAC: %w", err)
	}
	return nil
}

// kqCommand builds KQ for a card; it supports what KQ can say: option A master key, the three
// session key schemes, ARPC method 1 under the cryptogram key.
func kqCommand(mode int, card hsm.EMVCard, data, arqc, arc []byte) (command, error) {
	if card.MasterKeyOption == hsm.MasterKeyOptionB || (card.MasterKeyOption == hsm.MasterKeyAuto && len(card.PAN) > 16) {
		return nil, fmt.Errorf("KQ carries option A master keys only: %w", hsm.ErrInvalidInput)
	}
	if card.ARPCUnderMasterKey {
		return nil, fmt.Errorf("KQ makes the ARPC under the cryptogram key: %w", hsm.ErrInvalidInput)
	}
	if len(data) > 0xFF || len(arqc) != 8 {
		return nil, fmt.Errorf("KQ data of %d bytes, ARQC of %d: %w", len(data), len(arqc), hsm.ErrInvalidInput)
	}
	psn := card.PSN
	if psn == "" {
		psn = "00"
	}
	digits := card.PAN + psn
	if len(digits) < 16 {
		digits = strings.Repeat("0", 16-len(digits)) + digits
	}
	panPSN, err := hex.DecodeString(digits[len(digits)-16:])
	if err != nil {
		return nil, fmt.Errorf("PAN/PSN: %w", hsm.ErrInvalidInput)
	}
	scheme := 2
	un := make([]byte, 4)
	switch {
	case card.SessionKey == hsm.SessionKeyNone:
		scheme = 0
	case card.Diversifier != nil:
		d := card.Diversifier
		if len(d) != 8 || d[0] != byte(card.ATC>>8) || d[1] != byte(card.ATC) || d[2] != 0 || d[3] != 0 {
			return nil, fmt.Errorf("KQ diversifiers are ATC‖0000‖UN only: %w", hsm.ErrInvalidInput)
		}
		scheme = 1
		copy(un, d[4:])
	}
	cmd := command("KQ").num(mode, 1).num(scheme, 1).key(card.IMK)
	cmd = append(cmd, panPSN...)
	cmd = append(cmd, byte(card.ATC>>8), byte(card.ATC))
	cmd = append(cmd, un...)
	cmd = cmd.text(fmt.Sprintf("%02X", len(data)))
	cmd = append(cmd, data...)
	cmd = append(cmd, ';')
	cmd = append(cmd, arqc...)
	if mode != 0 {
		if len(arc) != 2 {
			return nil, fmt.Errorf("ARC of %d bytes: %w", len(arc), hsm.ErrInvalidInput)
		}
		cmd = append(cmd, arc...)
	}
	return cmd, nil
}

// VerifyARQC sends KQ (mode 0, or mode 1 with ARPC method 1).
func (c *Client) VerifyARQC(ctx context.Context, req hsm.VerifyARQC) ([]byte, error) {
	mode := 0
	switch req.ARPCMethod {
	case hsm.ARPCNone:
	case hsm.ARPCMethod1:
		mode = 1
	default:
		return nil, fmt.Errorf("verifying ARQC: KQ makes ARPC method 1 only: %w", hsm.ErrInvalidInput)
	}
	cmd, err := kqCommand(mode, req.Card, req.Data, req.ARQC, req.ARC)
	if err != nil {
		return nil, fmt.Errorf("verifying ARQC: %w", err)
	}
	out, err := c.call(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("verifying ARQC: %w", err)
	}
	if mode == 0 {
		return nil, nil
	}
	if len(out) != 8 {
		return nil, fmt.Errorf("verifying ARQC: ARPC of %d bytes: %w", len(out), hsm.ErrInternal)
	}
	return append([]byte(nil), out...), nil
}
