package issuersim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/simulator/cards"
)

// defaultMaxPINTries is how many wrong PINs in a row block a card's PIN (answer 75 from then on).
const defaultMaxPINTries = 3

// PINCheck makes the issuer verify PIN blocks (field 52) with its own HSM by the Visa PVV method, as
// an issuer host does: the block arrives under the zone PIN key it shares with the acquirer.
type PINCheck struct {
	HSM      hsm.PINVerifier
	ZPK      hsm.KeyBlock // the zone PIN key, under this issuer's own LMK
	Format   hsm.PINFormat
	PVK      hsm.KeyBlock      // V2
	PVKI     int               // PIN verification key index
	PVVs     map[string]string // PAN → PVV, made at card issuance
	MaxTries int               // wrong PINs before 75; 0: 3

	mu    sync.Mutex
	tries map[string]int
}

// NewPINCheck issues the cards' PINs: it generates a PVK in the issuer's HSM and the PVV of every
// card's PIN, the way cards are personalised. Only the PVVs are kept.
func NewPINCheck(ctx context.Context, h *hsm.HSM, zpk hsm.KeyBlock, format hsm.PINFormat, cs []cards.Card) (*PINCheck, error) {
	pvk, _, err := h.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsagePVKVisa, Algorithm: hsm.TDES})
	if err != nil {
		return nil, fmt.Errorf("issuer-sim: generating the PVK: %w", err)
	}
	p := &PINCheck{HSM: h, ZPK: zpk, Format: format, PVK: pvk, PVKI: 1, PVVs: map[string]string{}}
	for _, c := range cs {
		if c.PIN == "" {
			continue
		}
		pvv, err := h.GeneratePVV(ctx, hsm.GeneratePVV{PVK: pvk, PVKI: p.PVKI, Card: hsm.Card{PAN: c.PAN},
			PIN: hsm.PINSource{ClearPIN: c.PIN}})
		if err != nil {
			return nil, fmt.Errorf("issuer-sim: PVV for %s: %w", c.Masked(), err)
		}
		p.PVVs[c.PAN] = pvv
	}
	return p, nil
}

// verify answers "" when the PIN is right, else the response code: 55 wrong PIN, 75 too many wrong
// PINs, 88 a block that cannot be deciphered or a card without a PVV.
func (p *PINCheck) verify(ctx context.Context, pan string, block []byte) string {
	max := p.MaxTries
	if max == 0 {
		max = defaultMaxPINTries
	}
	p.mu.Lock()
	if p.tries == nil {
		p.tries = map[string]int{}
	}
	blocked := p.tries[pan] >= max
	p.mu.Unlock()
	if blocked {
		return cards.PINTriesExceeded
	}
	pvv, ok := p.PVVs[pan]
	if !ok {
		return cards.CryptoFailure
	}
	err := p.HSM.VerifyPINPVV(ctx, hsm.VerifyPINPVV{PINKey: p.ZPK, PVK: p.PVK, PINBlock: block, Format: p.Format,
		Card: hsm.Card{PAN: pan}, PVKI: p.PVKI, PVV: pvv})
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err == nil:
		p.tries[pan] = 0
		return ""
	case errors.Is(err, hsm.ErrPINMismatch):
		p.tries[pan]++
		if p.tries[pan] >= max {
			return cards.PINTriesExceeded
		}
		return cards.WrongPIN
	default:
		return cards.CryptoFailure
	}
}

// checkPIN applies the PIN check to a request that carries a PIN block; "" means go on.
func (s *Server) checkPIN(req *iso8583.Message, pan string) string {
	block, err := req.GetBytes(52)
	if err != nil || len(block) == 0 {
		return ""
	}
	if s.cfg.PIN == nil {
		return cards.CryptoFailure // a PIN block this issuer has no key for
	}
	return s.cfg.PIN.verify(context.Background(), pan, block)
}
