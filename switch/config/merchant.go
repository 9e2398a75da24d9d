package config

import "fmt"

// Where a merchant is, as its merchant-presented QR says it (EMV QRCPS ID 58 country code, ID 60
// merchant city). Both are optional: the QR order desk puts CN and BEIJING in their place
// (qrorder.DefaultCountry, qrorder.DefaultCity).

// maxMerchantCityChars is EMV QRCPS ID 60's maximum length.
const maxMerchantCityChars = 15

// validateMerchantPlace checks a merchant's city and country; key is "merchants[i]".
func (c *Config) validateMerchantPlace(m Merchant, key string) error {
	bad := func(line int, key, format string, args ...any) error {
		return &Error{File: c.path, Line: line, Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	if cc := m.Country; cc != "" && (len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z') {
		return bad(m.line.of("country"), key+".country", "must be an ISO 3166-1 alpha-2 code in upper case like CN or SG, is %q", cc)
	}
	if m.City == "" {
		return nil
	}
	if len(m.City) > maxMerchantCityChars {
		return bad(m.line.of("city"), key+".city", "must be at most %d characters (EMV QRCPS ID 60), is %d", maxMerchantCityChars, len(m.City))
	}
	for _, r := range m.City {
		if r < 0x20 || r > 0x7e {
			return bad(m.line.of("city"), key+".city", "must be printable ASCII (EMV QRCPS ID 60: the common character set), is %q", m.City)
		}
	}
	return nil
}
