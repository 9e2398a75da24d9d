package terminalsim

import (
	"encoding/binary"
	"fmt"
	"strings"
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
)

// entryModeFor picks how a card is presented: magstripe-only cards (service code 1xx) are swiped,
// chip cards are inserted, and every fourth chip transaction is a tap.
func entryModeFor(card cards.Card, stan int) string {
	switch {
	case strings.HasPrefix(card.ServiceCode, "1"):
		return EntrySwipe
	case stan%4 == 3:
		return EntryContactless
	default:
		return EntryChip
	}
}

// NewPurchase builds an 0200 purchase (processing code 000000) from terminal t for amount minor units
// of currency (ISO 4217 numeric; "" means the card's account currency) with STAN stan. The message is
// built in the iso87a spec; Client.Send re-encodes it for its own dialect.
func NewPurchase(t Terminal, card cards.Card, amount int64, currency string, stan int) *iso8583.Message {
	return newPurchaseAt(t, card, amount, currency, stan, time.Now())
}

func newPurchaseAt(t Terminal, card cards.Card, amount int64, currency string, stan int, now time.Time) *iso8583.Message {
	if currency == "" {
		currency = card.Currency
	}
	stan = stan % 1_000_000
	entry := entryModeFor(card, stan)
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
	if entry == EntrySwipe {
		fields[35] = card.Track2()
	}
	m := iso8583.NewMessage(specs.ISO87A)
	m.MTI("0200")
	for id, v := range fields {
		// The values above are built to the field widths; an error here is a programming error.
		if err := m.Field(id, v); err != nil {
			panic(fmt.Sprintf("terminalsim: building purchase field %d: %v", id, err))
		}
	}
	if entry != EntrySwipe {
		if err := m.BinaryField(55, iccData(amount, currency, now, stan)); err != nil {
			panic(fmt.Sprintf("terminalsim: building purchase field 55: %v", err))
		}
	}
	return m
}

// iccData is a minimal EMV BER-TLV for field 55: amount (9F02), currency (5F2A), date (9A),
// transaction type (9C), ATC (9F36) and a placeholder cryptogram (9F26) a later issue will compute.
func iccData(amount int64, currency string, now time.Time, stan int) []byte {
	bcd := func(digits string) []byte {
		out := make([]byte, len(digits)/2)
		for i := range out {
			out[i] = (digits[2*i]-'0')<<4 | (digits[2*i+1] - '0')
		}
		return out
	}
	tlv := func(dst []byte, tag []byte, value []byte) []byte {
		dst = append(dst, tag...)
		dst = append(dst, byte(len(value)))
		return append(dst, value...)
	}
	var atc [2]byte
	binary.BigEndian.PutUint16(atc[:], uint16(stan))
	var out []byte
	out = tlv(out, []byte{0x9F, 0x02}, bcd(fmt.Sprintf("%012d", amount)))
	out = tlv(out, []byte{0x5F, 0x2A}, bcd("0"+currency))
	out = tlv(out, []byte{0x9A}, bcd(now.Format("060102")))
	out = tlv(out, []byte{0x9C}, []byte{0x00})
	out = tlv(out, []byte{0x9F, 0x36}, atc[:])
	out = tlv(out, []byte{0x9F, 0x26}, []byte{0, 0, 0, 0, 0, 0, 0, 0})
	return out
}
