package cards

import (
	"fmt"
	"strings"
)

// The ICC profile of the catalogue's chip cards, shared by the card (terminal-sim) and its issuer
// (issuer-sim) so that both read the same bytes into the cryptogram. It follows the VIS / UICS layout
// of issuer application data with a cryptogram version of the simulators' own (docs/channels.md):
//
//   - 9F10 issuer application data = 06 ‖ DKI 01 ‖ CVN 01 ‖ CVR (4 bytes: 03 ‖ 3 bytes);
//   - CVN 01: the ICC master key from the issuer master key by EMV Book 2 A1.4 (option A up to 16
//     digits), the EMV common session key from the ATC (A1.3), TDES MAC (ISO 9797-1 algorithm 3,
//     padding method 2) over CryptogramData, ARPC method 1 under the session key with
//     ARC = field 39 as two ASCII bytes.
const (
	CVN01 byte = 0x01
	DKI01 byte = 0x01
)

// EMV tags field 55 carries (EMV Book 3 Annex A).
const (
	TagAID            uint32 = 0x84   // application identifier (terminal)
	TagAIP            uint32 = 0x82   // application interchange profile
	TagARC            uint32 = 0x8A   // authorisation response code (issuer)
	TagIssuerAuthData uint32 = 0x91   // ARPC ‖ ARC (method 1)
	TagTVR            uint32 = 0x95   // terminal verification results
	TagTxnDate        uint32 = 0x9A   // YYMMDD, BCD
	TagTxnType        uint32 = 0x9C   // 00 goods and services
	TagCurrency       uint32 = 0x5F2A // transaction currency, n4 BCD
	TagPSN            uint32 = 0x5F34 // PAN sequence number, n2 BCD
	TagAmount         uint32 = 0x9F02 // amount authorised, n12 BCD
	TagAmountOther    uint32 = 0x9F03 // amount other (cashback), n12 BCD
	TagIAD            uint32 = 0x9F10 // issuer application data
	TagCountry        uint32 = 0x9F1A // terminal country code, n4 BCD
	TagARQC           uint32 = 0x9F26 // application cryptogram
	TagCID            uint32 = 0x9F27 // cryptogram information data (80: ARQC)
	TagTermCaps       uint32 = 0x9F33 // terminal capabilities
	TagCVMResults     uint32 = 0x9F34 // CVM results
	TagTermType       uint32 = 0x9F35 // terminal type
	TagATC            uint32 = 0x9F36 // application transaction counter
	TagUN             uint32 = 0x9F37 // unpredictable number
)

// cryptogramTags are the objects the ARQC covers, in order: the data EMV Book 2 8.1.1 recommends
// (amount, amount other, country, TVR, currency, date, type, unpredictable number, AIP, ATC),
// followed by the CVR taken out of the issuer application data.
var cryptogramTags = []struct {
	tag uint32
	n   int
}{
	{TagAmount, 6}, {TagAmountOther, 6}, {TagCountry, 2}, {TagTVR, 5}, {TagCurrency, 2}, {TagTxnDate, 3},
	{TagTxnType, 1}, {TagUN, 4}, {TagAIP, 2}, {TagATC, 2},
}

// IADLen is the length of the catalogue's issuer application data.
const IADLen = 7

// CryptogramData is what the ICC MACs into its ARQC, read from the objects of field 55. A missing or
// wrongly sized object, or issuer application data of another cryptogram version, is an error.
func CryptogramData(objs []TLV) ([]byte, error) {
	var out []byte
	for _, c := range cryptogramTags {
		v, ok := FindTLV(objs, c.tag)
		if !ok {
			return nil, fmt.Errorf("ICC data without tag %X", c.tag)
		}
		if len(v) != c.n {
			return nil, fmt.Errorf("ICC data tag %X: %d bytes, want %d", c.tag, len(v), c.n)
		}
		out = append(out, v...)
	}
	iad, ok := FindTLV(objs, TagIAD)
	if !ok {
		return nil, fmt.Errorf("ICC data without issuer application data (9F10)")
	}
	if len(iad) != IADLen || iad[0] != IADLen-1 || iad[2] != CVN01 {
		return nil, fmt.Errorf("issuer application data is not cryptogram version %02X", CVN01)
	}
	return append(out, iad[3:7]...), nil
}

// BCD packs an even number of decimal digits two to a byte (EMV format n).
func BCD(digits string) []byte {
	if len(digits)%2 == 1 {
		digits = "0" + digits
	}
	out := make([]byte, len(digits)/2)
	for i := range out {
		out[i] = (digits[2*i]-'0')<<4 | (digits[2*i+1] - '0')
	}
	return out
}

// UnBCD unpacks format n back to its digits.
func UnBCD(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		s.WriteByte('0' + c>>4)
		s.WriteByte('0' + c&0x0F)
	}
	return s.String()
}

// AID is the application the terminal selects for a card: UnionPay (62), Visa (4) or Mastercard (5)
// debit/credit, by the card number's first digits.
func AID(pan string) []byte {
	switch {
	case strings.HasPrefix(pan, "62"):
		return []byte{0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01}
	case strings.HasPrefix(pan, "4"):
		return []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10}
	case strings.HasPrefix(pan, "5"):
		return []byte{0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10}
	default:
		return []byte{0xA0, 0x00, 0x00, 0x00, 0x00, 0x10, 0x10}
	}
}
