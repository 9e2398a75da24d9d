package txn

// Response codes (field 39, ISO 8583:1987). The switch makes the ones listed in DESIGN.md itself; the
// rest come from issuers and are passed through.
const (
	RCApproved          = "00"
	RCReferToIssuer     = "01"
	RCInvalidMerchant   = "03"
	RCDoNotHonour       = "05"
	RCInProgress        = "09" // an order not paid yet
	RCCustomerCancelled = "17" // an order the terminal cancelled
	RCInvalidTxn        = "12"
	RCInvalidAmount     = "13"
	RCInvalidCard       = "14"
	RCNoSuchIssuer      = "15"
	RCNoRecord          = "25" // unable to locate the original (refund, completion)
	RCFormatError       = "30"
	RCInsufficientFunds = "51"
	RCExpiredCard       = "54"
	RCWrongPIN          = "55"
	RCNotPermittedCard  = "57"
	RCNotPermittedTerm  = "58"
	RCExceedsAmount     = "61"
	RCExceedsCount      = "65"
	RCSecurityViolation = "63" // bad MAC
	RCLateResponse      = "68" // an order that expired unpaid
	RCPINTriesExceeded  = "75"
	// RCInsertCard is a soft decline: the terminal must ask for the chip (or a PIN) and try again
	// (contactless above the no-CVM limit without a PIN, a chip card swiped without fallback).
	RCInsertCard        = "1A"
	RCCryptoFailure     = "88"
	RCIssuerUnavailable = "91"
	RCUnableToRoute     = "92"
	RCDuplicate         = "94"
	RCReconcileError    = "95" // batch totals differ from the host's: upload the batch
	RCSystemError       = "96"
)

var meanings = map[string]string{
	RCApproved: "approved", RCReferToIssuer: "refer to card issuer", RCInvalidMerchant: "invalid merchant",
	RCDoNotHonour: "do not honour", RCInvalidTxn: "invalid transaction", RCInvalidAmount: "invalid amount",
	RCInvalidCard: "invalid card number", RCNoRecord: "unable to locate record",
	RCNoSuchIssuer: "no such issuer", RCFormatError: "format error",
	RCInsufficientFunds: "insufficient funds", RCExpiredCard: "expired card", RCWrongPIN: "incorrect PIN",
	RCNotPermittedCard: "not permitted to cardholder", RCNotPermittedTerm: "not permitted to terminal",
	RCExceedsAmount: "exceeds amount limit", RCExceedsCount: "exceeds frequency limit",
	RCPINTriesExceeded: "PIN tries exceeded", RCCryptoFailure: "cryptographic failure",
	RCIssuerUnavailable: "issuer or switch inoperative", RCUnableToRoute: "unable to route",
	RCDuplicate: "duplicate transmission", RCReconcileError: "reconcile error", RCSystemError: "system malfunction",
	RCInProgress: "in progress", RCCustomerCancelled: "customer cancellation",
	RCSecurityViolation: "security violation", RCLateResponse: "expired", RCInsertCard: "insert card / additional authentication",
	"62": "restricted card", "06": "error", "43": "stolen card", "41": "lost card",
}

// Meaning is a short human text for a response code, for receipts and logs.
func Meaning(code string) string {
	if m, ok := meanings[code]; ok {
		return m
	}
	return "code " + code
}
