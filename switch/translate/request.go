package translate

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moov-io/iso8583"
	moovErrors "github.com/moov-io/iso8583/errors"

	"github.com/poswitch/poswitch/switch/txn"
)

// FormatError is a request the switch can read the frame of but not the content; the answer is 30.
type FormatError struct {
	Field  int // 0 when the problem is not one field's
	Reason string
}

func (e *FormatError) Error() string {
	if e.Field > 0 {
		return fmt.Sprintf("field %d: %s", e.Field, e.Reason)
	}
	return e.Reason
}

// UnpackFailure describes a moov unpack error without its content: the error text of a field can hold
// the field's value (a PAN, a track), so only the field number and the kind of failure are kept.
func UnpackFailure(err error) *FormatError {
	var ue *moovErrors.UnpackError
	if errors.As(err, &ue) {
		id, _ := strconv.Atoi(ue.FieldID)
		return &FormatError{Field: id, Reason: "cannot be unpacked"}
	}
	return &FormatError{Reason: "message cannot be unpacked"}
}

func formatErr(fieldID int, format string, args ...any) error {
	return &FormatError{Field: fieldID, Reason: fmt.Sprintf(format, args...)}
}

// typeOf tells the transaction type from the MTI, the processing code's first two digits and
// whether field 90 names an original (an 0220 with it completes a pre-authorisation, one without it
// is an offline sale the terminal advises).
func typeOf(mti, proc string, hasOriginal bool) (txn.Type, bool) {
	kind := ""
	if len(proc) >= 2 {
		kind = proc[:2]
	}
	switch mti {
	case "0100", "0101":
		if kind == "31" {
			return txn.TypeBalanceInquiry, true
		}
		return txn.TypePreAuth, true
	case "0120", "0121":
		if kind == "31" {
			return txn.TypeUnknown, false // an inquiry has nothing to advise
		}
		return txn.TypePreAuth, true
	case "0200", "0201":
		switch kind {
		case "00":
			return txn.TypePurchase, true
		case "20":
			return txn.TypeRefund, true
		case "02":
			return txn.TypeVoid, true
		case "31":
			return txn.TypeBalanceInquiry, true
		case "40", "50":
			return txn.TypeBillPayment, true
		}
		return txn.TypeUnknown, false
	case "0220", "0221":
		if kind != "00" && kind != "" {
			return txn.TypeUnknown, false
		}
		if hasOriginal {
			return txn.TypeCompletion, true
		}
		return txn.TypePurchase, true
	case "0400", "0401", "0420", "0421":
		return txn.TypeReversal, true
	case "0500", "0501":
		return txn.TypeBatchSettlement, true
	case "0320", "0321":
		return txn.TypeBatchUpload, true
	case "0800", "0801":
		return txn.TypeNetwork, true
	case "0820", "0821":
		return txn.TypeSignatureUpload, true // Request checks field 70 = 850
	case "0600", "0601":
		switch kind {
		case ProcOrderCreate[:2]:
			return txn.TypeOrderCreate, true
		case ProcOrderStatus[:2]:
			return txn.TypeOrderStatus, true
		case ProcOrderCancel[:2]:
			return txn.TypeOrderCancel, true
		}
	}
	return txn.TypeUnknown, false
}

// needsOriginal are the types that act on an earlier transaction named by field 90. A refund may
// come without one; the switch then declines it (see pipeline.Validate).
var needsOriginal = map[txn.Type]bool{txn.TypeReversal: true, txn.TypeVoid: true, txn.TypeCompletion: true,
	txn.TypeBatchUpload: true, txn.TypeSignatureUpload: true}

// Processing codes of the merchant-presented QR order messages (0600, docs/channels.md).
const (
	ProcOrderCreate = "710000"
	ProcOrderStatus = "720000"
	ProcOrderCancel = "730000"
)

// NetworkSignatureUpload is field 70 of an 0820 carrying an e-signature chunk.
const NetworkSignatureUpload = "850"

// Request reads a terminal's request into a Transaction. Any error is a *FormatError: the message was
// framed correctly but a field is missing or malformed.
func Request(m *iso8583.Message, received time.Time) (*txn.Transaction, error) {
	t := &txn.Transaction{Received: received}
	var err error
	str := func(id int, dst *string) {
		if err != nil {
			return
		}
		var e error
		*dst, _, e = getString(m, id)
		if e != nil {
			err = formatErr(id, "%v", e)
		}
	}
	if t.MTI, err = m.GetMTI(); err != nil || len(t.MTI) != 4 || !isDigits(t.MTI) {
		return t, formatErr(0, "MTI %q is not 4 digits", t.MTI)
	}
	str(3, &t.ProcessingCode)
	str(2, &t.PAN)
	str(7, &t.TransmissionTime)
	str(11, &t.STAN)
	str(12, &t.LocalTime)
	str(13, &t.LocalDate)
	str(14, &t.Expiry)
	str(18, &t.MCC)
	str(22, &t.EntryMode)
	str(23, &t.CardSequence)
	str(25, &t.ConditionCode)
	str(32, &t.AcquirerID)
	str(35, &t.Track2)
	str(37, &t.RRN)
	str(41, &t.TerminalID)
	str(42, &t.MerchantID)
	str(49, &t.Currency)
	str(53, &t.SecurityControl)
	str(70, &t.NetworkCode)
	str(90, &t.OriginalData)
	var amount, ksn, f48, f63, chunk, chunkNo, chunkLast string
	str(62, &ksn)
	str(4, &amount)
	str(48, &f48)
	str(63, &f63)
	str(71, &chunkNo)
	str(72, &chunkLast)
	if err != nil {
		return t, err
	}
	if t.PINBlock, _, err = getBytes(m, 52); err != nil {
		return t, formatErr(52, "%v", err)
	}
	if t.EMV, _, err = getBytes(m, 55); err != nil {
		return t, formatErr(55, "%v", err)
	}
	if strings.HasPrefix(t.MTI, "082") {
		// An 0820 carries an e-signature chunk in field 62, not a KSN.
		chunk, ksn = ksn, ""
	}
	if ksn != "" {
		// DUKPT PIN pads send their key serial number in field 62 as hex: 20 digits (TDES, X9.24-1)
		// or 24 (AES, X9.24-3).
		if t.KSN, err = hex.DecodeString(ksn); err != nil || (len(t.KSN) != 10 && len(t.KSN) != 12) {
			return t, formatErr(62, "KSN must be 20 or 24 hex digits")
		}
	}
	t.TerminalID = strings.TrimRight(t.TerminalID, " ")
	t.MerchantID = strings.TrimRight(t.MerchantID, " ")

	if t.OriginalData != "" {
		if _, err := txn.ParseOriginalData(t.OriginalData); err != nil {
			return t, formatErr(90, "%v", err)
		}
	}
	var known bool
	if t.Type, known = typeOf(t.MTI, t.ProcessingCode, t.OriginalData != ""); !known {
		return t, formatErr(0, "MTI %s with processing code %q is not a transaction this switch knows", t.MTI, t.ProcessingCode)
	}
	if t.Type == txn.TypeNetwork {
		return t, nil
	}
	if t.Type == txn.TypeSignatureUpload {
		return t, signatureChunk(t, chunk, chunkNo, chunkLast)
	}
	if err := privateData(t, f48, f63); err != nil {
		return t, err
	}
	// Fields every request but network management carries.
	if t.STAN == "" || len(t.STAN) != 6 || !isDigits(t.STAN) {
		return t, formatErr(11, "STAN must be 6 digits")
	}
	if t.TerminalID == "" {
		return t, formatErr(41, "terminal ID is required")
	}
	if t.MerchantID == "" {
		return t, formatErr(42, "merchant ID is required")
	}
	if t.TransmissionTime == "" || len(t.TransmissionTime) != 10 || !isDigits(t.TransmissionTime) {
		return t, formatErr(7, "transmission date and time must be 10 digits MMDDhhmmss")
	}
	if needsOriginal[t.Type] && t.OriginalData == "" {
		return t, formatErr(90, "a %s names its original in field 90", t.Type)
	}
	if t.Type == txn.TypeBatchSettlement {
		return t, batchTotals(m, t)
	}
	switch {
	case amount == "" && (t.Type == txn.TypeBalanceInquiry || t.Type == txn.TypeOrderStatus || t.Type == txn.TypeOrderCancel):
		// An inquiry moves no money; terminals often leave the amount out.
	case len(amount) != 12 || !isDigits(amount):
		return t, formatErr(4, "amount must be 12 digits")
	default:
		if t.Amount, err = strconv.ParseInt(amount, 10, 64); err != nil {
			return t, formatErr(4, "amount: %v", err)
		}
	}
	if (t.Currency != "" || !isOrderQuery(t.Type)) && (len(t.Currency) != 3 || !isDigits(t.Currency)) {
		return t, formatErr(49, "currency must be an ISO 4217 numeric code")
	}
	if t.PAN == "" && t.Track2 != "" {
		pan, expiry, ok := splitTrack2(t.Track2)
		if !ok {
			return t, formatErr(35, "track 2 has no separator")
		}
		t.PAN = pan
		if t.Expiry == "" {
			t.Expiry = expiry
		}
	}
	if t.Advice() || t.Type == txn.TypeBatchUpload {
		// An advice or an uploaded transaction carries the authorization code the terminal holds.
		var auth string
		str(38, &auth)
		if err != nil {
			return t, err
		}
		t.AuthCode = strings.TrimSpace(auth)
	}
	return t, nil
}

// batchTotals reads a 0500's totals (fields 74-89, 97) and its processing code (920000 or 960000,
// 920000 when absent). Currency (49) is optional: without it the totals cover every currency.
func isOrderQuery(k txn.Type) bool { return k == txn.TypeOrderStatus || k == txn.TypeOrderCancel }

// privateData reads field 48 (a bill payment's "<biller>|<account>", an order query's order ID) and
// field 63 (a QR purchase's instalment months, two digits).
func privateData(t *txn.Transaction, f48, f63 string) error {
	switch {
	case t.Type == txn.TypeBillPayment && f48 != "":
		biller, account, ok := strings.Cut(f48, "|")
		if !ok || biller == "" || account == "" {
			return formatErr(48, "bill payment names its biller as <biller>|<account>")
		}
		t.BillerID, t.BillerAccount = biller, account
	case isOrderQuery(t.Type):
		if f48 == "" {
			return formatErr(48, "an order %s names the order in field 48", t.Type)
		}
		t.OrderID = f48
	}
	if f63 != "" {
		n, err := strconv.Atoi(f63)
		if err != nil || len(f63) != 2 || !isDigits(f63) {
			return formatErr(63, "instalments must be 2 digits")
		}
		t.Instalments = n
	}
	return nil
}

// maxSignatureChunks bounds one image's chunks (999 base64 characters each: ~730 KiB at most).
const maxSignatureChunks = 1000

// signatureChunk reads an 0820's fields 70 (850), 71/72 (chunk n of m) and 62 (base64 chunk).
func signatureChunk(t *txn.Transaction, chunk, no, last string) error {
	if t.NetworkCode != NetworkSignatureUpload {
		return formatErr(70, "an 0820 to this switch carries an e-signature (field 70 = %s)", NetworkSignatureUpload)
	}
	n, err1 := strconv.Atoi(no)
	m, err2 := strconv.Atoi(last)
	switch {
	case err1 != nil || n < 1:
		return formatErr(71, "chunk number must be 1 or more")
	case err2 != nil || m < n || m > maxSignatureChunks:
		return formatErr(72, "last chunk number must be between the chunk number and %d", maxSignatureChunks)
	}
	b, err := base64.StdEncoding.DecodeString(chunk)
	if err != nil || len(b) == 0 {
		return formatErr(62, "signature chunk must be non-empty base64")
	}
	t.ChunkNumber, t.ChunkLast, t.SignatureChunk = n, m, b
	return nil
}

func batchTotals(m *iso8583.Message, t *txn.Transaction) error {
	switch t.ProcessingCode {
	case "":
		t.ProcessingCode = txn.ProcSettlement
	case txn.ProcSettlement, txn.ProcSettlementTrailer:
	default:
		return formatErr(3, "batch settlement processing code must be %s or %s", txn.ProcSettlement, txn.ProcSettlementTrailer)
	}
	if t.Currency != "" && (len(t.Currency) != 3 || !isDigits(t.Currency)) {
		return formatErr(49, "currency must be an ISO 4217 numeric code")
	}
	tot := &txn.BatchTotals{Sent: map[int]bool{}}
	fields := []struct {
		id       int
		dst      *int64
		required bool
	}{
		{74, &tot.CreditsCount, true}, {75, &tot.CreditsReversalCount, true}, {76, &tot.DebitsCount, true},
		{77, &tot.DebitsReversalCount, true}, {78, &tot.TransferCount, false}, {79, &tot.TransferReversalCount, false},
		{80, &tot.InquiriesCount, false}, {81, &tot.AuthorizationsCount, false}, {82, &tot.CreditsProcessingFee, false},
		{83, &tot.CreditsTransactionFee, false}, {84, &tot.DebitsProcessingFee, false}, {85, &tot.DebitsTransactionFee, false},
		{86, &tot.CreditsAmount, true}, {87, &tot.CreditsReversalAmount, true}, {88, &tot.DebitsAmount, true},
		{89, &tot.DebitsReversalAmount, true},
	}
	for _, f := range fields {
		v, present, err := getString(m, f.id)
		if err != nil {
			return formatErr(f.id, "%v", err)
		}
		if !present {
			if f.required {
				return formatErr(f.id, "batch settlement needs fields 74-77, 86-89 and 97")
			}
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || !isDigits(v) {
			return formatErr(f.id, "not a number")
		}
		*f.dst = n
		tot.Sent[f.id] = true
	}
	net, present, err := getString(m, 97)
	if err != nil {
		return formatErr(97, "%v", err)
	}
	if !present {
		return formatErr(97, "batch settlement needs fields 74-77, 86-89 and 97")
	}
	if len(net) != 17 || (net[0] != 'C' && net[0] != 'D') || !isDigits(net[1:]) {
		return formatErr(97, "net settlement amount must be C or D and 16 digits")
	}
	if tot.NetAmount, err = strconv.ParseInt(net[1:], 10, 64); err != nil {
		return formatErr(97, "net settlement amount: %v", err)
	}
	if net[0] == 'D' {
		tot.NetAmount = -tot.NetAmount
	}
	tot.Sent[97] = true
	t.Totals = tot
	return nil
}

// splitTrack2 reads PAN and expiry from ISO 7813 track 2 ("PAN=YYMM…" or with 'D' as separator).
func splitTrack2(tr string) (pan, expiry string, ok bool) {
	i := strings.IndexAny(tr, "=D")
	if i < 0 {
		return "", "", false
	}
	pan = tr[:i]
	if len(tr) >= i+5 {
		expiry = tr[i+1 : i+5]
	}
	return pan, expiry, true
}

// ResponseMTI is the answer's MTI: request (function 0) → 1, advice (2) → 3, notification (4) → 5, and
// the origin digit (repeat) back to 0. Any other function digit is not a request and is answered as a
// request of its class would be (xx10), so the answer is always a valid MTI.
func ResponseMTI(mti string) (string, error) {
	if len(mti) != 4 || !isDigits(mti) {
		return "", errors.New("MTI is not 4 digits")
	}
	switch fn := mti[2]; fn {
	case '0', '2', '4':
		return mti[:2] + string(fn+1) + "0", nil
	default:
		return mti[:2] + "10", nil
	}
}
