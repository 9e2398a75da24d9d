// Package specs holds poswitch's ISO 8583 wire dialects as moov-io MessageSpecs and the TCP framing
// every poswitch link uses. Adding a dialect touches this package only; docs/dialects.md is its
// public description.
package specs

import (
	"fmt"
	"sort"
	"strings"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"
)

// Dialect is a terminal-side (or issuer-side) wire dialect: a moov MessageSpec plus the facts a
// reader of the wire needs. Whether a TPDU follows the length prefix is a listener option, not part
// of the dialect (docs/dialects.md, "Framing").
type Dialect struct {
	Name        string
	Spec        *iso8583.MessageSpec
	Description string
}

// wireEncoding says how one dialect puts each field class on the wire. The three ISO 8583:1987
// dialects differ only in this table.
type wireEncoding struct {
	mti, numeric, llNumeric, amount, track2 encoding.Encoder
	mtiFixed                                prefix.Prefixer
	bitmap                                  encoding.Encoder
	bitmapFixed                             prefix.Prefixer
	binary                                  encoding.Encoder
	lengths                                 prefix.Prefixers // LL and LLL length prefixes
	fixed                                   prefix.Prefixer  // fixed-length numeric and character fields
}

var (
	// asciiWire is jPOS ISO87APackager: everything ASCII, bitmap and binary fields as hex ASCII.
	asciiWire = wireEncoding{
		mti: digitsASCII, numeric: digitsASCII, llNumeric: digitsASCII, amount: amountASCII, track2: track2ASCII,
		mtiFixed: prefix.ASCII.Fixed,
		bitmap:   encoding.BytesToASCIIHex, bitmapFixed: prefix.Hex.Fixed,
		binary:  encoding.BytesToASCIIHex,
		lengths: prefix.ASCII, fixed: prefix.ASCII.Fixed,
	}
	// asciiBinaryBitmapWire is asciiWire with the bitmap and the binary fields as raw bytes.
	asciiBinaryBitmapWire = wireEncoding{
		mti: digitsASCII, numeric: digitsASCII, llNumeric: digitsASCII, amount: amountASCII, track2: track2ASCII,
		mtiFixed: prefix.ASCII.Fixed,
		bitmap:   encoding.Binary, bitmapFixed: prefix.Binary.Fixed,
		binary:  encoding.Binary,
		lengths: prefix.ASCII, fixed: prefix.ASCII.Fixed,
	}
	// bcdWire is jPOS ISO87BPackager: BCD MTI, numerics and length prefixes; raw bitmap and binary
	// fields; character fields ASCII. Fixed numerics of odd length are left-padded with a zero nibble,
	// variable numerics (LLNUM, track 2) are left-aligned and right-padded with a zero nibble.
	bcdWire = wireEncoding{
		mti: encoding.BCD, numeric: encoding.BCD, llNumeric: encoding.LBCD, amount: amountBCD, track2: track2BCD,
		mtiFixed: prefix.BCD.Fixed,
		bitmap:   encoding.Binary, bitmapFixed: prefix.Binary.Fixed,
		binary:  encoding.Binary,
		lengths: prefix.BCD, fixed: prefix.BCD.Fixed,
	}
)

// fieldFor builds the moov field of one table row in one wire encoding. Numeric fields are moov
// Strings, not Numerics, so leading zeros survive a round trip (STAN "000123", n42 field 90) and the
// caller gives the exact width.
func (w wireEncoding) fieldFor(d fieldDef) field.Field {
	spec := &field.Spec{Length: d.length, Description: d.desc}
	switch d.class {
	case classMTI:
		spec.Enc, spec.Pref = w.mti, w.mtiFixed
		return field.NewString(spec)
	case classBitmap:
		spec.Enc, spec.Pref = w.bitmap, w.bitmapFixed
		return field.NewBitmap(spec)
	case classNumeric:
		spec.Enc, spec.Pref = w.numeric, w.fixed
	case classLLNumeric:
		spec.Enc, spec.Pref = w.llNumeric, w.lengths.LL
	case classChar:
		// Character fields are ASCII in every dialect, so the ASCII fixed prefixer checks their length.
		spec.Enc, spec.Pref = encoding.ASCII, prefix.ASCII.Fixed
	case classLLChar:
		spec.Enc, spec.Pref = encoding.ASCII, w.lengths.LL
	case classLLLChar:
		spec.Enc, spec.Pref = encoding.ASCII, w.lengths.LLL
	case classBinary:
		// The binary fixed prefixer checks the length in bytes before any hex expansion.
		spec.Enc, spec.Pref = w.binary, prefix.Binary.Fixed
		return field.NewBinary(spec)
	case classLLLBinary:
		spec.Enc, spec.Pref = w.binary, w.lengths.LLL
		return field.NewBinary(spec)
	case classAmount:
		spec.Enc, spec.Pref = w.amount, prefix.ASCII.Fixed
	case classTrack2:
		spec.Enc, spec.Pref = w.track2, w.lengths.LL
	default:
		panic(fmt.Sprintf("specs: field %d has unknown class %d", d.id, d.class))
	}
	return field.NewString(spec)
}

func buildSpec(name string, w wireEncoding, defs []fieldDef) *iso8583.MessageSpec {
	spec := &iso8583.MessageSpec{Name: name, Fields: make(map[int]field.Field, len(defs))}
	for _, d := range defs {
		spec.Fields[d.id] = w.fieldFor(d)
	}
	return spec
}

var (
	// ISO87A is jPOS ISO87APackager / moov spec87ascii: ASCII throughout, hex-ASCII bitmap.
	ISO87A = buildSpec("poswitch iso87a: ISO 8583:1987 ASCII", asciiWire, fields87)
	// ISO87ABinaryBitmap is jPOS ISO87APackagerBBitmap: ASCII fields, binary bitmap and raw binary fields.
	ISO87ABinaryBitmap = buildSpec("poswitch iso87a-bb: ISO 8583:1987 ASCII, binary bitmap", asciiBinaryBitmapWire, fields87)
	// ISO87B is jPOS ISO87BPackager: BCD numerics and length prefixes, binary bitmap.
	ISO87B = buildSpec("poswitch iso87b: ISO 8583:1987 BCD", bcdWire, fields87)
	// IssuerLink is the spec on switch↔issuer links: ISO 8583:1987 with ASCII fields, a binary bitmap
	// and raw binary fields (the iso87a-bb encoding), framed by a 2-byte binary length.
	IssuerLink = buildSpec("poswitch issuer-link: ISO 8583:1987 ASCII, binary bitmap", asciiBinaryBitmapWire, fields87)
)

var dialects = map[string]*Dialect{
	"iso87a": {Name: "iso87a", Spec: ISO87A,
		Description: "ISO 8583:1987, ASCII MTI and fields, hex-ASCII bitmap (jPOS ISO87APackager)"},
	"iso87a-bb": {Name: "iso87a-bb", Spec: ISO87ABinaryBitmap,
		Description: "ISO 8583:1987, ASCII MTI and fields, binary bitmap and binary fields (jPOS ISO87APackagerBBitmap)"},
	"iso87b": {Name: "iso87b", Spec: ISO87B,
		Description: "ISO 8583:1987, BCD MTI, numerics and lengths, binary bitmap (jPOS ISO87BPackager)"},
	"issuer-link": {Name: "issuer-link", Spec: IssuerLink,
		Description: "switch to issuer host: ISO 8583:1987, ASCII fields, binary bitmap"},
}

// DialectNames returns the names DialectByName accepts, sorted.
func DialectNames() []string {
	names := make([]string, 0, len(dialects))
	for n := range dialects {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DialectByName returns the named dialect; an unknown name is an error that lists the valid ones.
// The returned Dialect is shared: callers must not modify it.
func DialectByName(name string) (*Dialect, error) {
	d, ok := dialects[name]
	if !ok {
		return nil, fmt.Errorf("unknown dialect %q (valid: %s)", name, strings.Join(DialectNames(), ", "))
	}
	return d, nil
}
