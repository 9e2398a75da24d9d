package terminalsim

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/simulator/cards"
)

// Chips plays the ICCs of the catalogue's chip cards. A card's ICC keys are derived from its
// issuer's master key (IMK, usage E0) as the card-personalisation HSM holds it, so the cryptogram is
// the real HSM code's (hsm.(*HSM).GenerateARQC); each card's application transaction counter (ATC)
// advances with every cryptogram, as a card's does.
type Chips struct {
	HSM  *hsm.HSM
	IMKs map[string]hsm.KeyBlock // issuer ID → IMK under HSM's LMK

	mu  sync.Mutex
	atc map[string]uint16 // PAN → last ATC used
}

// NewChips is the ICCs of every card whose issuer has an IMK in imks.
func NewChips(h *hsm.HSM, imks map[string]hsm.KeyBlock) *Chips {
	return &Chips{HSM: h, IMKs: imks, atc: map[string]uint16{}}
}

// nextATC advances the card's counter; a card whose ATC would wrap is blocked, as a card is.
func (c *Chips) nextATC(pan string) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.atc == nil {
		c.atc = map[string]uint16{}
	}
	if c.atc[pan] == 0xFFFF {
		return 0, fmt.Errorf("card %s: ATC exhausted", cards.MaskPAN(pan))
	}
	c.atc[pan]++
	return c.atc[pan], nil
}

// ATC is the counter of the card's last cryptogram (0: none yet).
func (c *Chips) ATC(pan string) uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.atc[pan]
}

func (c *Chips) card(card cards.Card, atc uint16) (hsm.EMVCard, error) {
	imk, ok := c.IMKs[card.Issuer]
	if !ok {
		return hsm.EMVCard{}, fmt.Errorf("card %s: no IMK for issuer %q", card.Masked(), card.Issuer)
	}
	return hsm.EMVCard{IMK: imk, PAN: card.PAN, PSN: card.PSN, ATC: atc, SessionKey: hsm.SessionKeyCommon}, nil
}

// CVM is the cardholder verification the terminal and card performed.
type CVM int

const (
	CVMNone      CVM = iota // no CVM (contactless within the no-CVM limit)
	CVMOnlinePIN            // enciphered PIN verified online (field 52)
	CVMSignature            // paper or electronic signature
	CVMFailed               // no CVM performed where one was required
)

// cvmResults is tag 9F34: CVM code, condition, result (EMV Book 3 C3, A5).
func (m CVM) cvmResults() []byte {
	switch m {
	case CVMOnlinePIN:
		return []byte{0x42, 0x03, 0x00} // enciphered PIN online, apply next if unsuccessful; if supported; unknown
	case CVMSignature:
		return []byte{0x1E, 0x03, 0x00} // signature; if supported; unknown (checked on paper)
	case CVMNone:
		return []byte{0x1F, 0x03, 0x02} // no CVM required; successful
	default:
		return []byte{0x3F, 0x00, 0x01} // no CVM performed; failed
	}
}

// Terminal-side constants of the ICC data: a Chinese attended POS that goes online.
var (
	terminalCountry      = "0156"
	terminalCapabilities = []byte{0xE0, 0xF8, 0xC8} // manual, magstripe, IC; PIN online/offline, signature, no CVM; SDA, DDA, CDA
	terminalType         = []byte{0x22}             // attended, merchant-operated, online with offline capability
	aip                  = []byte{0x19, 0x80}       // SDA, cardholder verification, terminal risk management; EMV mode on contactless
)

// chipPurchase is what goes into one ICC request.
type chipPurchase struct {
	card     cards.Card
	entry    string
	amount   int64
	currency string
	now      time.Time
	cvm      CVM
}

// Field55 is the EMV data (BER-TLV) of a first GENERATE AC asking for an ARQC, as the terminal
// sends it in field 55. With c nil the card is unkeyed (no personalisation in this estate): every
// object but the cryptogram (9F26) is sent, and an issuer that checks chip data declines it.
func (c *Chips) field55(ctx context.Context, p chipPurchase) ([]byte, error) {
	un := make([]byte, 4)
	if _, err := rand.Read(un); err != nil {
		return nil, fmt.Errorf("unpredictable number: %w", err)
	}
	var atc uint16
	if c != nil {
		var err error
		if atc, err = c.nextATC(p.card.PAN); err != nil {
			return nil, err
		}
	}
	tvr := []byte{0x80, 0x00, 0x00, 0x80, 0x00} // offline data authentication not performed; above the floor limit
	if p.cvm == CVMOnlinePIN {
		tvr[2] |= 0x04 // online PIN entered
	}
	if p.cvm == CVMFailed {
		tvr[2] |= 0x80 // cardholder verification was not successful
	}
	atcBytes := binary.BigEndian.AppendUint16(nil, atc)
	iad := []byte{cards.IADLen - 1, cards.DKI01, cards.CVN01, 0x03, 0xA0, 0x00, 0x00} // CVR: 1st GENERATE AC ARQC
	psn := p.card.PSN
	if psn == "" {
		psn = "00"
	}
	objs := []cards.TLV{
		{Tag: cards.TagAmount, Value: cards.BCD(fmt.Sprintf("%012d", p.amount))},
		{Tag: cards.TagAmountOther, Value: cards.BCD("000000000000")},
		{Tag: cards.TagCountry, Value: cards.BCD(terminalCountry)},
		{Tag: cards.TagTVR, Value: tvr},
		{Tag: cards.TagCurrency, Value: cards.BCD("0" + p.currency)},
		{Tag: cards.TagTxnDate, Value: cards.BCD(p.now.Format("060102"))},
		{Tag: cards.TagTxnType, Value: []byte{0x00}},
		{Tag: cards.TagUN, Value: un},
		{Tag: cards.TagAIP, Value: aip},
		{Tag: cards.TagATC, Value: atcBytes},
		{Tag: cards.TagIAD, Value: iad},
		{Tag: cards.TagCID, Value: []byte{0x80}},
		{Tag: cards.TagAID, Value: cards.AID(p.card.PAN)},
		{Tag: cards.TagPSN, Value: cards.BCD(psn)},
		{Tag: cards.TagTermCaps, Value: terminalCapabilities},
		{Tag: cards.TagCVMResults, Value: p.cvm.cvmResults()},
		{Tag: cards.TagTermType, Value: terminalType},
	}
	if c != nil {
		data, err := cards.CryptogramData(objs)
		if err != nil {
			return nil, err // the objects above are built to size: a programming error
		}
		card, err := c.card(p.card, atc)
		if err != nil {
			return nil, err
		}
		arqc, err := c.HSM.GenerateARQC(ctx, card, data)
		if err != nil {
			return nil, fmt.Errorf("card %s: %w", p.card.Masked(), err)
		}
		objs = append([]cards.TLV{{Tag: cards.TagARQC, Value: arqc}}, objs...)
	}
	return cards.EncodeTLV(objs...)
}

// IssuerAuthentication is what the card concluded from the issuer's answer (EMV Book 3 10.9): the
// issuer authentication data (tag 91) is the ARPC over the card's ARQC and the response code, under
// the card's own session key.
type IssuerAuthentication struct {
	Performed bool   // the answer carried issuer authentication data (tag 91)
	Valid     bool   // the ARPC is the one the card's key makes for its ARQC and the ARC
	ARC       string // the response code the issuer authenticated (91's last two bytes)
	// MatchesResponse: ARC is the answer's field 39, so the code the terminal acts on is the issuer's.
	MatchesResponse bool
}

// AuthenticateIssuer checks the ARPC of resp (field 55, tag 91) against the ARQC the card sent in
// req, as the card does in its second GENERATE AC.
func (c *Chips) AuthenticateIssuer(ctx context.Context, card cards.Card, req, resp *iso8583.Message) (IssuerAuthentication, error) {
	var ia IssuerAuthentication
	if c == nil {
		return ia, fmt.Errorf("no chip keys in this estate")
	}
	reqICC, err := req.GetBytes(55)
	if err != nil || len(reqICC) == 0 {
		return ia, fmt.Errorf("request has no ICC data")
	}
	if resp == nil || resp.GetField(55) == nil {
		return ia, nil
	}
	respICC, err := resp.GetBytes(55)
	if err != nil {
		return ia, fmt.Errorf("answer field 55: %w", err)
	}
	respObjs, err := cards.DecodeTLV(respICC)
	if err != nil {
		return ia, fmt.Errorf("answer field 55: %w", err)
	}
	iad, ok := cards.FindTLV(respObjs, cards.TagIssuerAuthData)
	if !ok {
		return ia, nil
	}
	ia.Performed = true
	if len(iad) != 10 {
		return ia, nil // not method 1: the card cannot authenticate it
	}
	ia.ARC = string(iad[8:])
	ia.MatchesResponse = ia.ARC == get(resp, 39)
	reqObjs, err := cards.DecodeTLV(reqICC)
	if err != nil {
		return ia, fmt.Errorf("request field 55: %w", err)
	}
	arqc, ok1 := cards.FindTLV(reqObjs, cards.TagARQC)
	atc, ok2 := cards.FindTLV(reqObjs, cards.TagATC)
	if !ok1 || !ok2 || len(atc) != 2 {
		return ia, fmt.Errorf("request field 55 has no cryptogram and ATC")
	}
	key, err := c.card(card, binary.BigEndian.Uint16(atc))
	if err != nil {
		return ia, err
	}
	want, err := c.HSM.GenerateARPC(ctx, hsm.GenerateARPC{Card: key, ARQC: arqc, ARPCMethod: hsm.ARPCMethod1, ARC: iad[8:]})
	if err != nil {
		return ia, fmt.Errorf("card %s: %w", card.Masked(), err)
	}
	ia.Valid = subtle.ConstantTimeCompare(want, iad[:8]) == 1
	return ia, nil
}

// TamperARQC returns m's field 55 with one bit of the cryptogram flipped, as a counterfeit or a
// corrupted read would send it (for tests of the issuer's check).
func TamperARQC(m *iso8583.Message) error {
	icc, err := m.GetBytes(55)
	if err != nil || len(icc) == 0 {
		return fmt.Errorf("message has no ICC data")
	}
	objs, err := cards.DecodeTLV(icc)
	if err != nil {
		return err
	}
	for i := range objs {
		if objs[i].Tag == cards.TagARQC {
			objs[i].Value[7] ^= 0x01
			b, err := cards.EncodeTLV(objs...)
			if err != nil {
				return err
			}
			return m.BinaryField(55, b)
		}
	}
	return fmt.Errorf("ICC data without a cryptogram")
}

// contactlessCVM is the CVM of a tap without a PIN: none within the terminal's no-CVM limit for the
// currency, failed above it (the terminal lets the switch ask for the chip: response 1A).
func contactlessCVM(amount int64, currency string) CVM {
	if limit, ok := DefaultNoCVMLimits[currency]; ok && amount <= limit {
		return CVMNone
	}
	return CVMFailed
}

// isChipEntry tells whether field 22 says the ICC was read (contact 05x, contactless 07x).
func isChipEntry(entry string) bool {
	return strings.HasPrefix(entry, "05") || strings.HasPrefix(entry, "07")
}
