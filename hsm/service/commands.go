package service

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/poswitch/poswitch/hsm"
)

// handler parses one command's fields from f, runs it, and appends the response fields (those after
// the error code) to out. A returned error becomes the error code; its fields are then dropped.
type handler func(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error)

// commands is the command table: the 2-letter code and its handler. Adding a command is one line
// here and one function below.
var commands = map[string]handler{
	"NC": diagnostics,
	"A0": generateKey,
	"BU": keyCheckValue,
	"A6": importKey,
	"A8": exportKey,
	"CA": translatePIN, // TPK → ZPK
	"CC": translatePIN, // ZPK → ZPK
	"G0": translateDUKPT,
	"DA": verifyOffset, // TPK, IBM 3624 offset
	"EA": verifyOffset, // ZPK, IBM 3624 offset
	"DC": verifyPVV,    // TPK, Visa PVV
	"EC": verifyPVV,    // ZPK, Visa PVV
	"CW": generateCVV,
	"CY": verifyCVV,
	"M6": generateMAC,
	"M8": verifyMAC,
	"KQ": arqc,
}

// responseCode is the command code with its second character incremented: CA → CB, A0 → A1.
func responseCode(cmd []byte) [2]byte {
	return [2]byte{cmd[0], cmd[1] + 1}
}

// execute runs one command (code and fields, header already stripped) and appends the response
// (response code, 2-character error code, fields) to out. It never panics on any input: the
// fuzz test holds it to that.
func execute(ctx context.Context, h *hsm.HSM, cmd []byte, out []byte) []byte {
	if len(cmd) < 2 {
		return append(out, "ZZ15"...)
	}
	rc := responseCode(cmd[:2])
	out = append(out, rc[0], rc[1])
	run, ok := commands[string(cmd[:2])]
	if !ok {
		return append(out, "15"...)
	}
	f := &fields{b: cmd[2:]}
	mark := len(out)
	out = append(out, "00"...)
	out, err := run(ctx, h, f, out)
	if err == nil && f.err != nil {
		err = f.err
	}
	if err != nil {
		out = append(out[:mark], errorCode(err)...)
	}
	return out
}

// errorCode maps an error to its payShield code.
func errorCode(err error) string {
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe.code
	}
	return hsm.Code(err)
}

// appendKey writes a key block field with its 'S' scheme tag.
func appendKey(out []byte, prefix byte, kb string) []byte {
	out = append(out, prefix)
	return append(out, kb...)
}

func appendHex(out []byte, b []byte) []byte {
	const digits = "0123456789ABCDEF"
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0x0F])
	}
	return out
}

// NC: diagnostics. Response: LMK check value (16 H, our 6-character KCV padded with 0) and
// firmware version (9 A).
func diagnostics(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	f.done()
	out = append(out, string(h.LMKCheckValue())+strings.Repeat("0", 10)...)
	return append(out, fmt.Sprintf("%-9.9s", hsm.FirmwareVersion)...), nil
}

// keyAlgorithms maps the payShield key block algorithm field to ours.
var keyAlgorithms = map[string]struct {
	alg    hsm.KeyAlgorithm
	length int
}{
	"T2": {hsm.TDES, 16}, "T3": {hsm.TDES, 24},
	"A1": {hsm.AES, 16}, "A2": {hsm.AES, 24}, "A3": {hsm.AES, 32},
}

// A0: generate a key. Fields: mode (0 generate, 1 generate and export), key type ("FFF"), LMK key
// scheme ("S"), [mode 1: KEK], then '#', usage (2), algorithm (2: T2 T3 A1 A2 A3), mode of use (1),
// key version (2), exportability (1), optional block count ("00"). Response: key under LMK,
// [key under KEK with scheme 'R'], KCV (6 H).
func generateKey(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	mode := f.text(1, "mode")
	f.text(3, "key type")
	f.expect('S', "key scheme (LMK)")
	var kek hsm.KeyBlock
	switch {
	case f.err != nil:
	case mode == "1":
		kek = f.key("KEK", "S")
	case mode != "0":
		f.fail("15", "mode %q", mode)
	}
	f.expect('#', "key block attributes delimiter")
	usage := f.text(2, "key usage")
	algName := f.text(2, "algorithm")
	modeOfUse := f.text(1, "mode of use")
	version := f.text(2, "key version")
	export := f.text(1, "exportability")
	optional := f.text(2, "optional blocks")
	f.done()
	if f.err != nil {
		return out, nil
	}
	alg, ok := keyAlgorithms[algName]
	if !ok {
		return out, fmt.Errorf("algorithm %q: %w", algName, hsm.ErrKeyAlgorithm)
	}
	if optional != "00" {
		return out, fmt.Errorf("optional blocks %q: %w", optional, hsm.ErrInvalidInput)
	}
	if export != "E" && export != "N" && export != "S" {
		return out, fmt.Errorf("exportability %q: %w", export, hsm.ErrKeyExport)
	}
	spec := hsm.KeySpec{Usage: hsm.KeyUsage(usage), Algorithm: alg.alg, Length: alg.length, ModeOfUse: hsm.ModeOfUse(modeOfUse[0]), NotExportable: export != "E", KeyVersion: version}
	kb, kcv, err := h.GenerateKey(ctx, spec)
	if err != nil {
		return out, err
	}
	out = appendKey(out, 'S', string(kb))
	if kek != "" {
		wrapped, _, err := h.ExportKey(ctx, kek, kb)
		if err != nil {
			return out, err
		}
		out = appendKey(out, 'R', wrapped)
	}
	return append(out, kcv...), nil
}

// BU: key check value. Fields: key type code (2, "FF"), key length flag (1, "F"), key. Response:
// KCV (6 H).
func keyCheckValue(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	f.text(2, "key type code")
	f.text(1, "key length flag")
	kb := f.key("key", "S")
	f.done()
	if f.err != nil {
		return out, nil
	}
	kcv, err := h.KeyCheckValue(ctx, kb)
	if err != nil {
		return out, err
	}
	return append(out, kcv...), nil
}

// A6: import a key. Fields: key type ("FFF"), KEK, key under KEK ('R' or 'S' + TR-31 block), LMK
// key scheme ("S"). Response: key under LMK, KCV (6 H).
func importKey(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	f.text(3, "key type")
	kek := f.key("KEK", "S")
	wrapped := f.key("key under KEK", "RS")
	f.expect('S', "key scheme (LMK)")
	f.done()
	if f.err != nil {
		return out, nil
	}
	kb, kcv, err := h.ImportKey(ctx, kek, string(wrapped))
	if err != nil {
		return out, err
	}
	out = appendKey(out, 'S', string(kb))
	return append(out, kcv...), nil
}

// A8: export a key. Fields: key type ("FFF"), KEK, key, KEK key scheme ('R' or 'S'). Response:
// key under KEK ('R' + TR-31 block), KCV (6 H).
func exportKey(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	f.text(3, "key type")
	kek := f.key("KEK", "S")
	kb := f.key("key", "S")
	scheme := f.text(1, "key scheme (KEK)")
	f.done()
	if f.err != nil {
		return out, nil
	}
	if scheme != "R" && scheme != "S" {
		return out, fmt.Errorf("key scheme %q: %w", scheme, hsm.ErrInvalidInput)
	}
	wrapped, kcv, err := h.ExportKey(ctx, kek, kb)
	if err != nil {
		return out, err
	}
	out = appendKey(out, 'R', wrapped)
	return append(out, kcv...), nil
}

// keyAlgorithm reads the algorithm byte of a key block header without unwrapping it; the PIN
// block field that follows is 32 hex characters under an AES key and 16 under a TDES key.
func keyAlgorithm(kb hsm.KeyBlock) hsm.KeyAlgorithm {
	if len(kb) < 8 {
		return 0
	}
	return hsm.KeyAlgorithm(kb[7])
}

func pinBlockChars(kb hsm.KeyBlock) int {
	if keyAlgorithm(kb) == hsm.AES {
		return 32
	}
	return 16
}

// CA / CC: translate a PIN block from a TPK (CA) or ZPK (CC) to a ZPK. Fields: source key,
// destination key, maximum PIN length (2 N), source PIN block (16 H, 32 H under an AES key),
// source format (2 N), destination format (2 N), account number (12 N; with format 48 on either
// side: PAN length (2 N) and PAN). Response: PIN length (2 N), PIN block, destination format (2 N).
func translatePIN(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	src := f.key("source key", "S")
	dst := f.key("destination key", "S")
	maxLen := f.number(2, "maximum PIN length")
	block := f.hexBytes(pinBlockChars(src), "source PIN block")
	from := f.pinFormat("source PIN block format")
	to := f.pinFormat("destination PIN block format")
	card := f.card(from == hsm.ISO4 || to == hsm.ISO4, "account number")
	f.done()
	if f.err != nil {
		return out, nil
	}
	t, err := h.TranslatePINBlock(ctx, hsm.TranslatePIN{SourceKey: src, SourceFormat: from, PINBlock: block, DestKey: dst, DestFormat: to, Card: card, MaxPINLength: maxLen})
	if err != nil {
		return out, err
	}
	return appendTranslated(out, t, to), nil
}

func appendTranslated(out []byte, t hsm.Translated, to hsm.PINFormat) []byte {
	out = append(out, fmt.Sprintf("%02d", t.PINLength)...)
	out = appendHex(out, t.PINBlock)
	return append(out, formatCode(to)...)
}

// G0: translate a PIN block from DUKPT to a ZPK. Fields: BDK, ZPK, KSN descriptor (3 H, not
// interpreted), KSN (20 H for a TDES BDK, 24 H for an AES BDK), PIN block (16 H; 32 H for format 48
// under an AES BDK), source format, destination format, account number (as CA). An AES BDK's PIN pad
// may also send formats 01/05/47 under a 2TDEA working key (X9.24-3): then the block is 16 H, which
// the command's remaining length tells (16 + 2 + 2 + 12 characters).
// Response as CA.
func translateDUKPT(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	bdk := f.key("BDK", "S")
	dst := f.key("ZPK", "S")
	f.hexNumber(3, "KSN descriptor")
	aes := keyAlgorithm(bdk) == hsm.AES
	ksnChars, blockChars := 20, 16
	if aes {
		ksnChars = 24
	}
	ksn := f.hexBytes(ksnChars, "KSN")
	if aes && f.remaining() != 16+2+2+12 {
		blockChars = 32
	}
	block := f.hexBytes(blockChars, "PIN block")
	from := f.pinFormat("source PIN block format")
	to := f.pinFormat("destination PIN block format")
	card := f.card(from == hsm.ISO4 || to == hsm.ISO4, "account number")
	f.done()
	if f.err != nil {
		return out, nil
	}
	if aes && (blockChars == 32) != (from == hsm.ISO4) {
		return out, fmt.Errorf("AES DUKPT over G0: format 48 blocks are 32 H, others 16 H: %w", hsm.ErrPINFormat)
	}
	t, err := h.TranslatePINBlockFromDUKPT(ctx, hsm.TranslateDUKPT{BDK: bdk, KSN: ksn, SourceFormat: from, PINBlock: block, DestKey: dst, DestFormat: to, Card: card})
	if err != nil {
		return out, err
	}
	return appendTranslated(out, t, to), nil
}

// DA / EA: verify a PIN by the IBM 3624 offset. Fields: TPK (DA) or ZPK (EA), PVK, maximum PIN
// length (2 N), PIN block, format (2 N), check length (2 N), account number, decimalisation table
// (16 N), PIN validation data (12 A, 'N' marks where the last 5 account digits go), offset (12 H,
// digits left-aligned and padded with F). Response: error code only (00 or 01).
func verifyOffset(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	pinKey := f.key("PIN key", "S")
	pvk := f.key("PVK", "S")
	maxLen := f.number(2, "maximum PIN length")
	block := f.hexBytes(pinBlockChars(pinKey), "PIN block")
	format := f.pinFormat("PIN block format")
	checkLen := f.number(2, "check length")
	card := f.card(format == hsm.ISO4, "account number")
	table := f.digits(16, "decimalisation table")
	vdata := f.text(12, "PIN validation data")
	offset := f.text(12, "offset")
	f.done()
	if f.err != nil {
		return out, nil
	}
	if checkLen < 4 || checkLen > 12 || (maxLen != 0 && checkLen > maxLen) {
		return out, fmt.Errorf("check length %d: %w", checkLen, hsm.ErrInvalidInput)
	}
	acct := card.AccountNumber
	if acct == "" {
		acct = accountNumber(card.PAN)
	}
	validation, err := expandValidationData(vdata, acct)
	if err != nil {
		return out, err
	}
	off := strings.TrimRight(offset, "F")
	if len(off) != checkLen {
		return out, fmt.Errorf("offset of %d digits, check length %d: %w", len(off), checkLen, hsm.ErrInvalidInput)
	}
	err = h.VerifyPINOffset(ctx, hsm.VerifyPINOffset{PINKey: pinKey, PVK: pvk, PINBlock: block, Format: format, Card: card,
		Method: hsm.IBM3624{DecimalisationTable: table, ValidationData: validation, CheckLength: checkLen}, Offset: off})
	return out, err
}

// expandValidationData puts the last 5 account-number digits where the 'N' is, as payShield does.
func expandValidationData(vdata, acct string) (string, error) {
	i := strings.IndexByte(vdata, 'N')
	if i < 0 {
		return vdata, nil
	}
	if len(acct) < 5 {
		return "", fmt.Errorf("account number too short for validation data: %w", hsm.ErrInvalidInput)
	}
	return vdata[:i] + acct[len(acct)-5:] + vdata[i+1:], nil
}

// accountNumber is the 12 rightmost PAN digits excluding the check digit.
func accountNumber(pan string) string {
	if len(pan) < 13 {
		return ""
	}
	return pan[len(pan)-13 : len(pan)-1]
}

// DC / EC: verify a PIN by the Visa PVV. Fields: TPK (DC) or ZPK (EC), PVK, PIN block, format
// (2 N), account number, PVKI (1 N), PVV (4 N). Response: error code only.
func verifyPVV(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	pinKey := f.key("PIN key", "S")
	pvk := f.key("PVK", "S")
	block := f.hexBytes(pinBlockChars(pinKey), "PIN block")
	format := f.pinFormat("PIN block format")
	card := f.card(format == hsm.ISO4, "account number")
	pvki := f.number(1, "PVKI")
	pvv := f.digits(4, "PVV")
	f.done()
	if f.err != nil {
		return out, nil
	}
	return out, h.VerifyPINPVV(ctx, hsm.VerifyPINPVV{PINKey: pinKey, PVK: pvk, PINBlock: block, Format: format, Card: card, PVKI: pvki, PVV: pvv})
}

// CW: generate a CVV. Fields: CVK, PAN (up to 19 N) and ';', expiry (4 N, YYMM), service code (3 N).
// Response: CVV (3 N).
func generateCVV(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	cvk := f.key("CVK", "S")
	pan := f.until(';', 19, "PAN")
	expiry := f.digits(4, "expiry")
	sc := f.digits(3, "service code")
	f.done()
	if f.err != nil {
		return out, nil
	}
	v, err := h.GenerateCVV(ctx, hsm.GenerateCVV{CVK: cvk, PAN: pan, Expiry: expiry, ServiceCode: sc})
	if err != nil {
		return out, err
	}
	return append(out, v...), nil
}

// CY: verify a CVV. Fields: CVK, CVV (3 N), PAN and ';', expiry (4 N), service code (3 N).
// Response: error code only.
func verifyCVV(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	cvk := f.key("CVK", "S")
	v := f.digits(3, "CVV")
	pan := f.until(';', 19, "PAN")
	expiry := f.digits(4, "expiry")
	sc := f.digits(3, "service code")
	f.done()
	if f.err != nil {
		return out, nil
	}
	return out, h.VerifyCVV(ctx, hsm.VerifyCVV{CVK: cvk, PAN: pan, Expiry: expiry, ServiceCode: sc, CVV: v})
}

// macAlgorithms ties the M6/M8 algorithm field to the key usage that must carry it.
var macAlgorithms = map[string]hsm.KeyUsage{
	"01": hsm.UsageMACAlg1, // ISO 9797-1 algorithm 1
	"03": hsm.UsageMACAlg3, // ISO 9797-1 algorithm 3 (X9.19)
	"05": hsm.UsageMACCMAC, // ISO 9797-1:2011 algorithm 5 (CMAC)
}

// macRequest reads the fields M6 and M8 share: mode flag (1 N, 0), input format (1 N: 0 binary,
// 1 hex, 2 text), MAC algorithm (2 N), padding method (1 N), key type (3, "FFF"), key, message
// length (4 H, characters of the message field as sent), message.
func macRequest(f *fields) (hsm.KeyBlock, int, []byte, string) {
	mode := f.text(1, "mode flag")
	input := f.text(1, "input format flag")
	alg := f.text(2, "MAC algorithm")
	padding := f.number(1, "padding method")
	f.text(3, "key type")
	kb := f.key("MAC key", "S")
	n := f.hexNumber(4, "message length")
	msg := f.take(n, "message")
	if f.err != nil {
		return "", 0, nil, ""
	}
	if mode != "0" {
		f.fail("15", "mode flag %q: only 0 (single block) is supported", mode)
	}
	switch input {
	case "0", "2":
	case "1":
		b := make([]byte, len(msg)/2)
		if len(msg)%2 != 0 {
			f.fail("15", "hex message of odd length")
		} else if _, err := hex.Decode(b, msg); err != nil {
			f.fail("15", "message is not hex")
		}
		msg = b
	default:
		f.fail("15", "input format flag %q", input)
	}
	return kb, padding, msg, alg
}

func checkMACAlgorithm(alg string, kb hsm.KeyBlock) error {
	usage, ok := macAlgorithms[alg]
	if !ok {
		return fmt.Errorf("MAC algorithm %q: %w", alg, hsm.ErrInvalidInput)
	}
	if len(kb) < 7 || hsm.KeyUsage(kb[5:7]) != usage {
		return fmt.Errorf("MAC algorithm %s needs a %s key: %w", alg, usage, hsm.ErrKeyUsage)
	}
	return nil
}

// M6: generate a MAC. Fields as macRequest. Response: MAC (16 H).
func generateMAC(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	kb, padding, msg, alg := macRequest(f)
	f.done()
	if f.err != nil {
		return out, nil
	}
	if err := checkMACAlgorithm(alg, kb); err != nil {
		return out, err
	}
	m, err := h.GenerateMAC(ctx, hsm.GenerateMAC{Key: kb, Padding: padding, Data: msg, Length: 8})
	if err != nil {
		return out, err
	}
	return appendHex(out, m), nil
}

// M8: verify a MAC. Fields as macRequest, then the MAC (8 to 32 H, its leftmost bytes compared).
// Response: error code only.
func verifyMAC(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	kb, padding, msg, alg := macRequest(f)
	n := f.remaining()
	if f.err == nil && (n < 8 || n > 32 || n%2 != 0) {
		f.fail("15", "MAC of %d characters", n)
	}
	m := f.hexBytes(n, "MAC")
	f.done()
	if f.err != nil {
		return out, nil
	}
	if err := checkMACAlgorithm(alg, kb); err != nil {
		return out, err
	}
	return out, h.VerifyMAC(ctx, hsm.VerifyMAC{Key: kb, Padding: padding, Data: msg, MAC: m})
}

// KQ: verify an ARQC and/or generate an ARPC. Fields: mode (1 N: 0 verify, 1 verify and ARPC, 2 ARPC
// only), scheme (1 N: 0 ICC master key used directly, 1 session key from R = ATC‖0000‖UN,
// 2 EMV common session key R = ATC‖000000000000), MK-AC (E0 key), PAN/PSN (8 B: the rightmost 16
// digits of PAN ‖ PSN, packed BCD), ATC (2 B), UN (4 B), transaction data length (2 H, bytes),
// transaction data (B; the HSM applies padding method 2), ';', ARQC (8 B), ARC (2 B, modes 1 and 2).
// Response: ARPC (8 B, modes 1 and 2; method 1, under the cryptogram key).
func arqc(ctx context.Context, h *hsm.HSM, f *fields, out []byte) ([]byte, error) {
	mode := f.number(1, "mode")
	scheme := f.number(1, "scheme ID")
	imk := f.key("MK-AC", "S")
	panPSN := f.take(8, "PAN/PSN")
	atc := f.take(2, "ATC")
	un := f.take(4, "UN")
	n := f.hexNumber(2, "transaction data length")
	data := f.take(n, "transaction data")
	f.expect(';', "delimiter")
	cryptogram := f.take(8, "ARQC")
	var arc []byte
	if mode == 1 || mode == 2 {
		arc = f.take(2, "ARC")
	}
	f.done()
	if f.err != nil {
		return out, nil
	}
	if mode > 2 {
		return out, fmt.Errorf("KQ mode %d: %w", mode, hsm.ErrInvalidInput)
	}
	digits := hex.EncodeToString(panPSN)
	for _, c := range digits {
		if c < '0' || c > '9' {
			return out, fmt.Errorf("PAN/PSN is not BCD: %w", hsm.ErrInvalidInput)
		}
	}
	card := hsm.EMVCard{IMK: imk, PAN: digits[:14], PSN: digits[14:], MasterKeyOption: hsm.MasterKeyOptionA, ATC: uint16(atc[0])<<8 | uint16(atc[1])}
	switch scheme {
	case 0:
		card.SessionKey = hsm.SessionKeyNone
	case 1:
		card.Diversifier = []byte{atc[0], atc[1], 0, 0, un[0], un[1], un[2], un[3]}
	case 2:
	default:
		return out, fmt.Errorf("KQ scheme %d: %w", scheme, hsm.ErrInvalidInput)
	}
	var arpc []byte
	var err error
	switch mode {
	case 0:
		_, err = h.VerifyARQC(ctx, hsm.VerifyARQC{Card: card, Data: data, ARQC: cryptogram})
	case 1:
		arpc, err = h.VerifyARQC(ctx, hsm.VerifyARQC{Card: card, Data: data, ARQC: cryptogram, ARPCMethod: hsm.ARPCMethod1, ARC: arc})
	case 2:
		arpc, err = h.GenerateARPC(ctx, hsm.GenerateARPC{Card: card, ARQC: cryptogram, ARPCMethod: hsm.ARPCMethod1, ARC: arc})
	}
	if err != nil {
		return out, err
	}
	return append(out, arpc...), nil
}
