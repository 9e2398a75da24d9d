// Package emvqr builds and parses the EMVCo merchant-presented QR payload (EMV QR Code Specification
// for Payment Systems, Merchant-Presented Mode, "QRCPS") that poswitch shows on a terminal for a
// dynamic order: the customer's wallet scans it, reads the merchant, amount and order reference, and
// pays. A payload is a string of data objects, each a two-digit ID, a two-digit length (in
// characters) and the value; templates (IDs 26 and 62) nest the same form. ID 63 closes the payload
// with a CRC-16/CCITT-FALSE over everything before its four hex digits. docs/channels.md lists the
// IDs poswitch uses.
package emvqr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Data object IDs used by poswitch (QRCPS table 3.x numbering).
const (
	IDPayloadFormat      = "00"
	IDInitiationMethod   = "01"
	IDMerchantAccount    = "26" // the first of the "templates 26-51" slots; poswitch uses this one
	IDMCC                = "52"
	IDCurrency           = "53"
	IDAmount             = "54"
	IDCountry            = "58"
	IDMerchantName       = "59"
	IDMerchantCity       = "60"
	IDAdditionalData     = "62"
	IDCRC                = "63"
	subGUID              = "00" // within 26: globally unique identifier of the acquirer's scheme
	subMerchantID        = "01" // within 26: merchant ID under that scheme (our field 42)
	subReferenceLabel    = "05" // within 62: reference label (our order ID)
	subTerminalLabel     = "07" // within 62: terminal label (our field 41)
	payloadFormatVersion = "01"
	// InitiationStatic and InitiationDynamic are the values of ID 01: a static code is shown for
	// many payments, a dynamic code for one (poswitch builds only dynamic codes).
	InitiationStatic  = "11"
	InitiationDynamic = "12"
)

// Bounds from QRCPS: a data object's value is at most 99 characters; a whole payload at most 512.
const (
	maxValueChars   = 99
	MaxPayloadChars = 512
	maxGUIDChars    = 32
	maxLabelChars   = 25
	maxAmountChars  = 13
	maxNameChars    = 25
	maxCityChars    = 15
)

// Payload is what poswitch puts into, and reads back from, a merchant-presented QR.
type Payload struct {
	AcquirerGUID string // ID 26 sub 00
	MerchantID   string // ID 26 sub 01 (field 42)
	TerminalID   string // ID 62 sub 07
	OrderID      string // ID 62 sub 05 (reference label)
	MCC          string // ID 52
	Currency     string // ID 53, ISO 4217 numeric
	Amount       string // ID 54, decimal with the currency's exponent ("12.34", "1200", "1.234")
	Country      string // ID 58
	MerchantName string // ID 59
	MerchantCity string // ID 60
}

// ErrCRC is returned by Parse when the payload's ID 63 does not match its content.
var ErrCRC = errors.New("emvqr: CRC does not match")

// Build returns the payload string of a dynamic merchant-presented QR: ID 00 "01", ID 01 "12", the
// merchant account template 26, 52, 53, 54, 58, 59, 60, the additional data template 62, and the CRC
// (ID 63) last. It refuses a field that QRCPS would not accept rather than emit a code a wallet
// rejects.
func Build(p Payload) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	var account, additional strings.Builder
	writeObject(&account, subGUID, p.AcquirerGUID)
	writeObject(&account, subMerchantID, p.MerchantID)
	writeObject(&additional, subReferenceLabel, p.OrderID)
	if p.TerminalID != "" {
		writeObject(&additional, subTerminalLabel, p.TerminalID)
	}
	for name, tmpl := range map[string]string{"merchant account (ID 26)": account.String(),
		"additional data (ID 62)": additional.String()} {
		if n := utf8.RuneCountInString(tmpl); n > maxValueChars {
			return "", fmt.Errorf("emvqr: %s template is %d characters, at most %d", name, n, maxValueChars)
		}
	}
	var b strings.Builder
	writeObject(&b, IDPayloadFormat, payloadFormatVersion)
	writeObject(&b, IDInitiationMethod, InitiationDynamic)
	writeObject(&b, IDMerchantAccount, account.String())
	writeObject(&b, IDMCC, p.MCC)
	writeObject(&b, IDCurrency, p.Currency)
	writeObject(&b, IDAmount, p.Amount)
	writeObject(&b, IDCountry, p.Country)
	writeObject(&b, IDMerchantName, p.MerchantName)
	writeObject(&b, IDMerchantCity, p.MerchantCity)
	writeObject(&b, IDAdditionalData, additional.String())
	b.WriteString(IDCRC + "04")
	s := b.String()
	s += CRC(s)
	if n := utf8.RuneCountInString(s); n > MaxPayloadChars {
		return "", fmt.Errorf("emvqr: payload is %d characters, at most %d", n, MaxPayloadChars)
	}
	return s, nil
}

// check validates each field against its QRCPS format and length.
func (p Payload) check() error {
	type rule struct {
		name, value string
		min, max    int
		digits      bool
	}
	rules := []rule{
		{"acquirer GUID (ID 26/00)", p.AcquirerGUID, 1, maxGUIDChars, false},
		{"merchant ID (ID 26/01)", p.MerchantID, 1, maxLabelChars, false},
		{"order ID (ID 62/05)", p.OrderID, 1, maxLabelChars, false},
		{"terminal ID (ID 62/07)", p.TerminalID, 0, maxLabelChars, false},
		{"MCC (ID 52)", p.MCC, 4, 4, true},
		{"currency (ID 53)", p.Currency, 3, 3, true},
		{"country (ID 58)", p.Country, 2, 2, false},
		{"merchant name (ID 59)", p.MerchantName, 1, maxNameChars, false},
		{"merchant city (ID 60)", p.MerchantCity, 1, maxCityChars, false},
	}
	for _, r := range rules {
		n := utf8.RuneCountInString(r.value)
		switch {
		case !utf8.ValidString(r.value):
			return fmt.Errorf("emvqr: %s is not valid UTF-8", r.name)
		case n < r.min || n > r.max:
			return fmt.Errorf("emvqr: %s %q: length %d, want %d..%d", r.name, r.value, n, r.min, r.max)
		case r.digits && !allDigits(r.value):
			return fmt.Errorf("emvqr: %s %q: digits only", r.name, r.value)
		}
		for _, c := range r.value {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("emvqr: %s holds a control character", r.name)
			}
		}
	}
	if err := checkAmount(p.Amount); err != nil {
		return err
	}
	return nil
}

// checkAmount accepts QRCPS's amount format: digits, at most one ".", at most 13 characters.
func checkAmount(a string) error {
	if a == "" || len(a) > maxAmountChars {
		return fmt.Errorf("emvqr: amount (ID 54) %q: length %d, want 1..%d", a, len(a), maxAmountChars)
	}
	whole, frac, dot := strings.Cut(a, ".")
	if whole == "" || !allDigits(whole) || (dot && (frac == "" || !allDigits(frac))) {
		return fmt.Errorf("emvqr: amount (ID 54) %q is not a decimal number", a)
	}
	return nil
}

func writeObject(b *strings.Builder, id, value string) {
	b.WriteString(id)
	fmt.Fprintf(b, "%02d", utf8.RuneCountInString(value))
	b.WriteString(value)
}

// Parse reads a merchant-presented payload: ID 00 "01" first, ID 63 last with a matching CRC, every
// data object's length within the payload, and the mandatory objects 52, 53, 58, 59 and 60 present.
// Objects poswitch does not use (other account templates, tips, ID 64, 80-99) are skipped; Payload
// fields whose objects are absent stay empty, and the caller decides whether it can pay without them.
func Parse(s string) (Payload, error) {
	var p Payload
	if !utf8.ValidString(s) {
		return p, errors.New("emvqr: payload is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > MaxPayloadChars {
		return p, fmt.Errorf("emvqr: payload is %d characters, at most %d", n, MaxPayloadChars)
	}
	objects, err := splitObjects(s)
	if err != nil {
		return p, err
	}
	if len(objects) < 2 || objects[0].id != IDPayloadFormat {
		return p, errors.New("emvqr: payload does not start with ID 00")
	}
	if objects[0].value != payloadFormatVersion {
		return p, fmt.Errorf("emvqr: payload format indicator %q, want %q", objects[0].value, payloadFormatVersion)
	}
	last := objects[len(objects)-1]
	if last.id != IDCRC || len(last.value) != 4 {
		return p, errors.New("emvqr: payload does not end with the CRC (ID 63, length 04)")
	}
	body := s[:len(s)-4]
	if !strings.EqualFold(CRC(body), last.value) {
		return p, fmt.Errorf("%w: payload says %s, content gives %s", ErrCRC, last.value, CRC(body))
	}
	seen := map[string]bool{}
	for _, o := range objects[1 : len(objects)-1] {
		if seen[o.id] {
			return p, fmt.Errorf("emvqr: ID %s appears twice", o.id)
		}
		seen[o.id] = true
		switch o.id {
		case IDPayloadFormat, IDCRC:
			return p, fmt.Errorf("emvqr: ID %s out of place", o.id)
		case IDInitiationMethod:
			if o.value != InitiationStatic && o.value != InitiationDynamic {
				return p, fmt.Errorf("emvqr: point of initiation method %q, want 11 or 12", o.value)
			}
		case IDMerchantAccount:
			subs, err := splitTemplate(o)
			if err != nil {
				return p, err
			}
			p.AcquirerGUID, p.MerchantID = subs[subGUID], subs[subMerchantID]
		case IDAdditionalData:
			subs, err := splitTemplate(o)
			if err != nil {
				return p, err
			}
			p.OrderID, p.TerminalID = subs[subReferenceLabel], subs[subTerminalLabel]
		case IDMCC:
			p.MCC = o.value
		case IDCurrency:
			p.Currency = o.value
		case IDAmount:
			if err := checkAmount(o.value); err != nil {
				return p, err
			}
			p.Amount = o.value
		case IDCountry:
			p.Country = o.value
		case IDMerchantName:
			p.MerchantName = o.value
		case IDMerchantCity:
			p.MerchantCity = o.value
		}
	}
	for _, id := range []string{IDMCC, IDCurrency, IDCountry, IDMerchantName, IDMerchantCity} {
		if !seen[id] {
			return p, fmt.Errorf("emvqr: mandatory ID %s missing", id)
		}
	}
	if len(p.MCC) != 4 || !allDigits(p.MCC) {
		return p, fmt.Errorf("emvqr: MCC (ID 52) %q is not four digits", p.MCC)
	}
	if len(p.Currency) != 3 || !allDigits(p.Currency) {
		return p, fmt.Errorf("emvqr: currency (ID 53) %q is not three digits", p.Currency)
	}
	return p, nil
}

type object struct{ id, value string }

// splitObjects cuts s into its data objects. Lengths count characters, so a multi-byte name
// (ID 64's local-language template) is walked rune by rune.
func splitObjects(s string) ([]object, error) {
	var out []object
	rest := s
	for pos := 0; rest != ""; {
		if len(rest) < 4 {
			return nil, fmt.Errorf("emvqr: truncated data object at character %d", pos)
		}
		id, lenText := rest[:2], rest[2:4]
		if !allDigits(id) || !allDigits(lenText) {
			return nil, fmt.Errorf("emvqr: bad ID or length %q at character %d", rest[:4], pos)
		}
		n, _ := strconv.Atoi(lenText)
		if n == 0 {
			return nil, fmt.Errorf("emvqr: ID %s has length 00 at character %d", id, pos)
		}
		rest = rest[4:]
		end := 0
		for i := 0; i < n; i++ {
			if end >= len(rest) {
				return nil, fmt.Errorf("emvqr: ID %s says %d characters, only %d left", id, n, i)
			}
			_, size := utf8.DecodeRuneInString(rest[end:])
			end += size
		}
		out = append(out, object{id: id, value: rest[:end]})
		rest = rest[end:]
		pos += 4 + n
	}
	return out, nil
}

func splitTemplate(o object) (map[string]string, error) {
	subs, err := splitObjects(o.value)
	if err != nil {
		return nil, fmt.Errorf("emvqr: template ID %s: %w", o.id, err)
	}
	m := make(map[string]string, len(subs))
	for _, s := range subs {
		if _, dup := m[s.id]; dup {
			return nil, fmt.Errorf("emvqr: template ID %s: sub-ID %s appears twice", o.id, s.id)
		}
		m[s.id] = s.value
	}
	return m, nil
}

// CRC returns the CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection, no final
// XOR) of s's UTF-8 bytes as four upper-case hex digits, as QRCPS ID 63 carries it. s is the payload
// up to and including "6304".
func CRC(s string) string {
	crc := uint16(0xFFFF)
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for bit := 0; bit < 8; bit++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return fmt.Sprintf("%04X", crc)
}

// FormatAmount writes minor units as the ID 54 decimal with the currency's exponent (1234, 2 →
// "12.34"; 1200, 0 → "1200"; 1234, 3 → "1.234").
func FormatAmount(minor int64, exponent int) (string, error) {
	if minor < 0 || exponent < 0 || exponent > 3 {
		return "", fmt.Errorf("emvqr: amount %d with exponent %d cannot be shown", minor, exponent)
	}
	digits := strconv.FormatInt(minor, 10)
	if exponent > 0 {
		for len(digits) <= exponent {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-exponent] + "." + digits[len(digits)-exponent:]
	}
	if err := checkAmount(digits); err != nil {
		return "", err
	}
	return digits, nil
}

// ParseAmount reads an ID 54 decimal back into minor units of a currency with the given exponent.
// More decimals than the exponent allows is an error (a wallet must not round an order's amount);
// fewer are padded ("12.3" with exponent 2 is 1230).
func ParseAmount(a string, exponent int) (int64, error) {
	if err := checkAmount(a); err != nil {
		return 0, err
	}
	whole, frac, _ := strings.Cut(a, ".")
	if len(frac) > exponent {
		return 0, fmt.Errorf("emvqr: amount %q has more than %d decimals", a, exponent)
	}
	frac += strings.Repeat("0", exponent-len(frac))
	v, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("emvqr: amount %q: %w", a, err)
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
