// Package txn is the switch's one canonical transaction model. Terminal dialects are translated into a
// Transaction and back; issuer specs are translated out of it. Pipeline steps read and enrich it and
// never touch wire fields.
package txn

import (
	"fmt"
	"time"
)

// Type is what the cardholder or the terminal asked for, independent of the wire.
type Type int

const (
	TypeUnknown Type = iota
	TypePurchase
	TypePreAuth
	TypeCompletion
	TypeRefund
	TypeVoid
	TypeBalanceInquiry
	TypeBillPayment
	TypeReversal
	TypeNetwork
	TypeBatchSettlement // 0500: the terminal's batch totals
	TypeBatchUpload     // 0320: one transaction of the terminal's batch, after a totals mismatch
	// Merchant-presented QR (0600/0610, docs/channels.md): the terminal asks for an order of an
	// amount, polls its status, or cancels it; the customer pays it from a wallet.
	TypeOrderCreate
	TypeOrderStatus
	TypeOrderCancel
	TypeSignatureUpload // 0820 (field 70 = 850): one chunk of an e-signature image for an approval
)

var typeNames = [...]string{"unknown", "purchase", "preauth", "completion", "refund", "void",
	"balance_inquiry", "bill_payment", "reversal", "network", "batch_settlement", "batch_upload",
	"order_create", "order_status", "order_cancel", "signature_upload"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", int(t))
}

// Transaction is one request travelling through the switch, with what the steps learnt about it.
// PAN, Track2 and PINBlock are held in memory only: String, MarshalLogObject and every store see the
// masked PAN (see Mask) and never the rest.
type Transaction struct {
	// Request, as the terminal sent it (after translation).
	MTI              string // e.g. "0200"
	Type             Type
	ProcessingCode   string       // field 3
	TerminalID       string       // field 41
	MerchantID       string       // field 42
	STAN             string       // field 11, the terminal's trace number
	TransmissionTime string       // field 7, MMDDhhmmss
	LocalTime        string       // field 12, hhmmss
	LocalDate        string       // field 13, MMDD
	RRN              string       // field 37
	AcquirerID       string       // field 32
	PAN              string       // field 2 (or from track 2); clear, memory only
	Expiry           string       // field 14, YYMM
	Track2           string       // field 35; clear, memory only, never forwarded to logs or the ledger
	EntryMode        string       // field 22
	CardSequence     string       // field 23
	ConditionCode    string       // field 25
	MCC              string       // field 18
	Amount           int64        // field 4, minor units of Currency
	Currency         string       // field 49, ISO 4217 numeric
	PINBlock         []byte       // field 52, encrypted under the terminal's key; memory only
	KSN              []byte       // field 62: DUKPT key serial number of the PIN pad, when it uses DUKPT
	SecurityControl  string       // field 53
	EMV              []byte       // field 55, BER-TLV
	OriginalData     string       // field 90
	NetworkCode      string       // field 70
	Totals           *BatchTotals // fields 74-89 and 97 of a 0500
	// MAC is field 64 (or 128) as the terminal sent it; MACData the bytes it covers (the frame body
	// from the MTI up to the MAC field, as received). Set by the listener; memory only.
	MAC     []byte
	MACData []byte
	// Wallet and QR (docs/channels.md). Instalments is field 63 of a QR purchase: months the
	// customer asked to spread a credit-line (Huabei) payment over, 0 for none.
	Instalments int
	// BillerID and BillerAccount are field 48 of a bill payment, "<biller>|<account>": whom the bill
	// is paid to (a configured biller, e.g. a wallet's credit line) and the customer's reference there.
	BillerID      string
	BillerAccount string
	OrderID       string // field 48 of an order status or cancel request
	// Signature upload (0820): field 71 chunk number, field 72 last chunk number (1-based), field 62
	// the chunk, base64 on the wire.
	ChunkNumber    int
	ChunkLast      int
	SignatureChunk []byte

	Received time.Time

	// Learnt by the steps.
	MerchantName string
	FeeBP        int    // the merchant's fee in basis points, resolved by identify
	IssuerID     string // resolved by route
	IssuerSTAN   string // the switch's own trace number on the issuer link
	IssuerTime   string // field 7 the issuer link sent, MMDDhhmmss (with IssuerSTAN: the issuer trace)
	StandIn      bool   // the switch approved on the issuer's behalf (stand-in processing)
	// IssuerOriginalData is field 90 towards the issuer: the original as the issuer link sent it
	// (its link MTI, STAN and time), set by the step that looked the original up in the ledger.
	IssuerOriginalData string
	AuthCode           string // field 38 of the answer
	Response           string // field 39 of the answer; set means the transaction has ended
	Reason             string // why the switch itself ended it (for logs; never card data)
	Aborted            bool   // a step ended the transaction; later steps do not run
	Fee                int64  // booked fee, minor units
	Booked             bool
	Duplicate          bool
	AdditionalAmounts  string // field 54 of the answer
	ResponseEMV        []byte // field 55 of the answer
	// Wallet answers (field 63 of the answer: "<wallet>|<funding>|<instalments>"): which wallet took
	// the payment and from what (e.g. "ALIPAY", "HUABEI", 3), for the receipt.
	Wallet        string
	FundingSource string
	// Orders: field 48 of the answer is the order ID, field 62 the EMVCo QR payload to show.
	QRPayload string
	// WorkingKeys is field 62 of a sign-on answer: the fresh PIN and MAC keys under the terminal's
	// master key, with check values (docs/channels.md, Terminal keys).
	WorkingKeys string
}

// End ends the transaction with a response code made by the switch, and says why.
func (t *Transaction) End(code, reason string) {
	t.Response = code
	t.Reason = reason
	t.Aborted = true
}

// Ended tells whether a step has ended the transaction, so the rest of the pipeline is skipped.
func (t *Transaction) Ended() bool { return t.Aborted }

// Approved tells whether the answer so far is an approval.
func (t *Transaction) Approved() bool { return t.Response == RCApproved }

// PaymentCode tells whether field 2 is a wallet's payment code the terminal scanned (entry mode 03x)
// rather than a card number: routed by prefix like a BIN, with no check digit.
func (t *Transaction) PaymentCode() bool { return len(t.EntryMode) >= 2 && t.EntryMode[:2] == "03" }

// MaskedPAN is the only form of the card number that leaves memory.
func (t *Transaction) MaskedPAN() string { return Mask(t.PAN) }

// Key is the transaction's identity: acquirer, terminal, STAN, transmission time and MTI class
// (see MTIClass). Repeats (xxx1) share the key of their original; it is the ledger's idempotency key.
func (t *Transaction) Key() string {
	return IdentityKey(t.AcquirerID, t.TerminalID, t.STAN, t.TransmissionTime, MTIClass(t.MTI))
}

// IdentityKey builds the key from its parts; reversals use it to name their original.
func IdentityKey(acquirer, terminal, stan, transmission, class string) string {
	return acquirer + "|" + terminal + "|" + stan + "|" + transmission + "|" + class
}

// MTIClass is the message class and function group without version, response or repeat: "20" for
// 0200/0201/0210, "22" for 0220/0221/0230, "40" for 0400/0401, "42" for 0420/0421. A repeat therefore
// shares its original's identity, and an advice does not share its request's.
func MTIClass(mti string) string {
	if len(mti) != 4 {
		return mti
	}
	function := mti[2]
	if function >= '0' && function <= '9' {
		function -= (function - '0') % 2 // responses (odd) belong to their request or advice
	}
	return string([]byte{mti[1], function})
}

// String is safe for logs: no clear PAN, track or PIN data.
func (t *Transaction) String() string {
	return fmt.Sprintf("%s %s tid=%s stan=%s pan=%s amount=%d cur=%s rc=%s", t.MTI, t.Type, t.TerminalID,
		t.STAN, t.MaskedPAN(), t.Amount, t.Currency, t.Response)
}

// Mask keeps the first 6 and last 4 digits of a PAN, as PCI DSS allows, and stars the rest.
func Mask(pan string) string {
	if len(pan) < 13 {
		if len(pan) <= 4 {
			return "****"
		}
		return "****" + pan[len(pan)-4:]
	}
	b := []byte(pan)
	for i := 6; i < len(b)-4; i++ {
		b[i] = '*'
	}
	return string(b)
}
