package issuersim

import (
	"context"
	"errors"
	"fmt"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/simulator/cards"
)

// ARQCVerifier is what the issuer needs of its HSM for chip cards. *hsm.HSM implements it.
type ARQCVerifier interface {
	VerifyARQC(ctx context.Context, req hsm.VerifyARQC) ([]byte, error)
	GenerateARPC(ctx context.Context, req hsm.GenerateARPC) ([]byte, error)
}

// EMVCheck makes the issuer verify the application cryptogram (ARQC, field 55 tag 9F26) of chip and
// contactless requests with its own HSM, and answer with an ARPC (tag 91) the card can check. The
// ICC key of each card is derived from the issuer master key by the card's PAN and PAN sequence
// number, as at personalisation (cards.CVN01).
type EMVCheck struct {
	HSM ARQCVerifier
	IMK hsm.KeyBlock // E0, under this issuer's own LMK
}

// Response codes of the chip check. A cryptogram that does not verify is 05 (do not honour): ISO
// 8583:1987 has no code of its own for it (Visa's V.I.P. uses 82, "negative CAM result", on its own
// network).
const (
	arqcFailed     = cards.DoNotHonour
	arqcNoData     = cards.DoNotHonour // ICC data without a cryptogram, or of another version
	arqcMalformed  = formatError       // field 55 is not BER-TLV
	arqcKeyFailure = cards.CryptoFailure
)

// chipRequest is what the issuer read from a request's field 55: the card key and the cryptogram.
type chipRequest struct {
	card hsm.EMVCard
	arqc []byte
	data []byte
	code string // "" when the data is usable, else the response code it earns
}

// readChip reads field 55 of a request; nil when the request carries none or the issuer does not
// check chip data.
func (s *Server) readChip(req *iso8583.Message, pan string) *chipRequest {
	if s.cfg.EMV == nil || req.GetField(55) == nil {
		return nil
	}
	icc, err := req.GetBytes(55)
	if err != nil || len(icc) == 0 {
		return nil
	}
	c := &chipRequest{}
	objs, err := cards.DecodeTLV(icc)
	if err != nil {
		c.code = arqcMalformed
		return c
	}
	arqc, ok1 := cards.FindTLV(objs, cards.TagARQC)
	atc, ok2 := cards.FindTLV(objs, cards.TagATC)
	data, err := cards.CryptogramData(objs)
	if !ok1 || !ok2 || len(arqc) != 8 || len(atc) != 2 || err != nil {
		c.code = arqcNoData
		return c
	}
	psn := ""
	if v, ok := cards.FindTLV(objs, cards.TagPSN); ok && len(v) == 1 {
		psn = cards.UnBCD(v)
	} else if f23, _ := req.GetString(23); len(f23) == 3 {
		psn = f23[1:]
	}
	c.arqc, c.data = arqc, data
	c.card = hsm.EMVCard{IMK: s.cfg.EMV.IMK, PAN: pan, PSN: psn, ATC: uint16(atc[0])<<8 | uint16(atc[1]),
		SessionKey: hsm.SessionKeyCommon}
	return c
}

// verify checks the cryptogram: "" when it is the card's, else the response code.
func (c *chipRequest) verify(ctx context.Context, e *EMVCheck) string {
	if c == nil || c.code != "" {
		return c.codeOrEmpty()
	}
	_, err := e.HSM.VerifyARQC(ctx, hsm.VerifyARQC{Card: c.card, Data: c.data, ARQC: c.arqc})
	switch {
	case err == nil:
		return ""
	case errors.Is(err, hsm.ErrVerificationFailed):
		return arqcFailed
	default:
		return arqcKeyFailure
	}
}

func (c *chipRequest) codeOrEmpty() string {
	if c == nil {
		return ""
	}
	return c.code
}

// answerICC is field 55 of the answer: the ARPC by method 1 with the response code as ARC (tag 91 =
// ARPC ‖ ARC) and the ARC alone (tag 8A). A request whose cryptogram could not be read or verified
// gets 8A only: there is nothing to authenticate the answer against.
func (c *chipRequest) answerICC(ctx context.Context, e *EMVCheck, code string, verified bool) ([]byte, error) {
	arc := []byte(code)
	objs := []cards.TLV{{Tag: cards.TagARC, Value: arc}}
	if verified {
		arpc, err := e.HSM.GenerateARPC(ctx, hsm.GenerateARPC{Card: c.card, ARQC: c.arqc, ARPCMethod: hsm.ARPCMethod1, ARC: arc})
		if err != nil {
			return nil, fmt.Errorf("ARPC: %w", err)
		}
		objs = append([]cards.TLV{{Tag: cards.TagIssuerAuthData, Value: append(arpc, arc...)}}, objs...)
	}
	return cards.EncodeTLV(objs...)
}

// withICC adds the answer's field 55 when the request carried chip data the issuer checks.
func (s *Server) withICC(resp *iso8583.Message, c *chipRequest, code string, verified bool) error {
	if c == nil || resp == nil || len(code) != 2 {
		return nil
	}
	icc, err := c.answerICC(context.Background(), s.cfg.EMV, code, verified)
	if err != nil {
		return err
	}
	if err := resp.BinaryField(55, icc); err != nil {
		return fmt.Errorf("answer field 55: %w", err)
	}
	return nil
}

// countARQC counts the outcome of a chip check.
func (s *Server) countARQC(c *chipRequest, code string) {
	switch {
	case c == nil:
	case code == "":
		s.counters.arqcOK.Add(1)
	default:
		s.counters.arqcBad.Add(1)
	}
}
