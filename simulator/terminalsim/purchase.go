package terminalsim

import (
	"context"
	"fmt"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/specs"
)

// Terminal is a POS terminal: its terminal ID (field 41, 8 characters) and merchant ID (field 42,
// 15 characters), and optionally the merchant's name and location (field 43, up to 40 characters).
type Terminal struct {
	TID, MID string
	Name     string
	// Keys is the terminal's secure element when it has a master key: sign on with Keys.SignOn, then
	// Client.UseKeys MACs its requests; nil for a terminal without one (keys.go).
	Keys *TerminalKeys
}

// DefaultTerminals returns n terminals TERM0001, TERM0002, … with four terminals per merchant
// (MERCHANT0000001 owns TERM0001-TERM0004). The demo configuration lists the same IDs.
func DefaultTerminals(n int) []Terminal {
	ts := make([]Terminal, n)
	for i := range ts {
		ts[i] = Terminal{
			TID:  fmt.Sprintf("TERM%04d", i+1),
			MID:  fmt.Sprintf("MERCHANT%07d", i/4+1),
			Name: fmt.Sprintf("POSWITCH TEST SHOP %03d   SHANGHAI   CN", i/4+1),
		}
	}
	return ts
}

// Entry modes (field 22: PAN entry mode and PIN entry capability 1).
const (
	EntrySwipe       = "901" // full magnetic stripe read
	EntryChip        = "051"
	EntryContactless = "071"
	// EntryFallback is a chip card's stripe read after its chip could not be (ISO 8583 "80"): the
	// issuer sees the fallback in field 22.
	EntryFallback = "801"
)

// entryModeFor picks how a card is presented to a non-purchase request: magstripe-only cards
// (service code 1xx) are swiped, chip cards are inserted.
func entryModeFor(card cards.Card, stan int) string {
	if !card.HasChip() {
		return EntrySwipe
	}
	return EntryChip
}

// purchaseEntryMode picks how a card is presented to a purchase: as entryModeFor, except that every
// fourth purchase of a contactless card is a tap when the amount is within the terminal's no-CVM
// limit (a terminal asks for the chip above it).
func purchaseEntryMode(card cards.Card, stan int, amount int64, currency string) string {
	entry := entryModeFor(card, stan)
	if entry == EntryChip && card.Contactless && stan%4 == 3 && contactlessCVM(amount, currency) == CVMNone {
		return EntryContactless
	}
	return entry
}

// Presentation is how the cardholder presents the card to a purchase.
type Presentation struct {
	Entry string // EntryChip, EntryContactless, EntrySwipe or EntryFallback
	// PIN is the terminal's PIN pad; nil means no PIN was entered (a signature on a contact chip,
	// no CVM on a tap).
	PIN PINPad
}

// NewPurchase builds an 0200 purchase (processing code 000000) from terminal t for amount minor units
// of currency (ISO 4217 numeric; "" means the card's account currency) with STAN stan, the card
// presented as purchaseEntryMode picks and without a PIN. Its chip data carries no cryptogram (the
// estate's card keys are not known here): issuers that check chip data decline it; NewCardPurchase
// makes keyed chip data. The message is built in the iso87a spec; Client.Send re-encodes it for its
// own dialect.
func NewPurchase(t Terminal, card cards.Card, amount int64, currency string, stan int) *iso8583.Message {
	return newPurchaseAt(t, card, amount, currency, stan, time.Now())
}

func newPurchaseAt(t Terminal, card cards.Card, amount int64, currency string, stan int, now time.Time) *iso8583.Message {
	if currency == "" {
		currency = card.Currency
	}
	p := Presentation{Entry: purchaseEntryMode(card, stan%1_000_000, amount, currency)}
	m, err := buildCardPurchase(context.Background(), t, nil, card, p, amount, currency, stan, now)
	if err != nil {
		// Without keys and a PIN pad nothing fails but a programming error.
		panic(fmt.Sprintf("terminalsim: building purchase: %v", err))
	}
	return m
}

// NewCardPurchase builds an 0200 purchase of card presented as p: a swipe or fallback carries track
// 2 (field 35); a chip read or tap carries the PAN, expiry, card sequence number (23) and the ICC data
// (field 55) with an ARQC the card computes with its ICC key from chips; a PIN from p.PIN is field 52
// and the CVM results (9F34) say online PIN. chips may be nil for unkeyed chip data (as NewPurchase).
func NewCardPurchase(ctx context.Context, t Terminal, chips *Chips, card cards.Card, p Presentation, amount int64,
	currency string, stan int) (*iso8583.Message, error) {
	if currency == "" {
		currency = card.Currency
	}
	return buildCardPurchase(ctx, t, chips, card, p, amount, currency, stan, time.Now())
}

func buildCardPurchase(ctx context.Context, t Terminal, chips *Chips, card cards.Card, p Presentation, amount int64,
	currency string, stan int, now time.Time) (*iso8583.Message, error) {
	stan = stan % 1_000_000
	entry := p.Entry
	switch entry {
	case EntrySwipe, EntryFallback, EntryChip, EntryContactless:
	default:
		return nil, fmt.Errorf("entry mode %q: want %s, %s, %s or %s", entry, EntryChip, EntryContactless, EntrySwipe, EntryFallback)
	}
	chip := isChipEntry(entry)
	if chip && !card.HasChip() {
		return nil, fmt.Errorf("card %s has no chip to read (service code %s)", card.Masked(), card.ServiceCode)
	}
	if entry == EntryContactless && !card.Contactless {
		return nil, fmt.Errorf("card %s has no contactless interface", card.Masked())
	}
	utc := now.UTC()
	fields := map[int]string{
		2:  card.PAN,
		3:  "000000",
		4:  fmt.Sprintf("%012d", amount),
		7:  utc.Format("0102150405"),
		11: fmt.Sprintf("%06d", stan),
		12: now.Format("150405"),
		13: now.Format("0102"),
		14: card.Expiry,
		22: entry,
		25: "00",
		// No RRN (37): the acquirer host assigns it and the answer carries it, as on UnionPay-style
		// POS networks; a terminal's own STAN-based reference would repeat across terminals.
		41: t.TID,
		42: t.MID,
		49: currency,
	}
	if t.Name != "" {
		fields[43] = fmt.Sprintf("%-40.40s", t.Name)
	}
	if chip {
		if card.PSN != "" {
			fields[23] = "0" + card.PSN
		}
	} else {
		fields[35] = card.Track2()
	}
	m := iso8583.NewMessage(specs.ISO87A)
	m.MTI("0200")
	for id, v := range fields {
		// The values above are built to the field widths; an error here is a programming error.
		if err := m.Field(id, v); err != nil {
			return nil, fmt.Errorf("building purchase field %d: %w", id, err)
		}
	}
	if chip {
		cvm := CVMSignature
		switch {
		case p.PIN != nil:
			cvm = CVMOnlinePIN
		case entry == EntryContactless:
			cvm = contactlessCVM(amount, currency)
		}
		icc, err := chips.field55(ctx, chipPurchase{card: card, entry: entry, amount: amount, currency: currency, now: now, cvm: cvm})
		if err != nil {
			return nil, fmt.Errorf("building ICC data: %w", err)
		}
		if err := m.BinaryField(55, icc); err != nil {
			return nil, fmt.Errorf("building purchase field 55: %w", err)
		}
	}
	if p.PIN != nil {
		if err := WithPIN(ctx, m, p.PIN, card.PAN, card.PIN); err != nil {
			return nil, err
		}
	}
	return m, nil
}
