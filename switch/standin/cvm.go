package standin

// tagCVMResults is EMV tag 9F34, CVM Results: the method performed (byte 1, low 6 bits), its
// condition (byte 2) and its result (byte 3: 02 successful).
var tagCVMResults = []byte{0x9F, 0x34}

// OfflinePINVerified tells whether field 55 reports that the chip verified the cardholder's PIN
// offline (plaintext or enciphered, alone or with signature) successfully. That is cardholder
// verification the switch can rely on without PIN keys. Malformed TLV counts as not verified.
func OfflinePINVerified(emv []byte) bool {
	v, ok := findTag(emv, tagCVMResults)
	if !ok || len(v) != 3 {
		return false
	}
	switch v[0] & 0x3F {
	case 0x01, 0x03, 0x04, 0x05: // plaintext PIN by ICC (+ signature), enciphered PIN by ICC (+ signature)
		return v[2] == 0x02
	}
	return false
}

// findTag scans the top level of a BER-TLV string for a tag and returns its value.
func findTag(b []byte, tag []byte) ([]byte, bool) {
	for len(b) > 0 {
		// Tag: one byte, or more when the low five bits are all set; later bytes continue while
		// their top bit is set.
		n := 1
		if b[0]&0x1F == 0x1F {
			for n < len(b) && b[n]&0x80 != 0 {
				n++
			}
			n++
		}
		if n > len(b) {
			return nil, false
		}
		t := b[:n]
		b = b[n:]
		if len(b) == 0 {
			return nil, false
		}
		// Length: short form, or 0x81/0x82 followed by one or two bytes.
		l := int(b[0])
		b = b[1:]
		switch {
		case l == 0x81 && len(b) >= 1:
			l, b = int(b[0]), b[1:]
		case l == 0x82 && len(b) >= 2:
			l, b = int(b[0])<<8|int(b[1]), b[2:]
		case l >= 0x80:
			return nil, false
		}
		if l > len(b) {
			return nil, false
		}
		if string(t) == string(tag) {
			return b[:l], true
		}
		b = b[l:]
	}
	return nil, false
}
