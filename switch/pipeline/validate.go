package pipeline

import (
	"context"

	"github.com/poswitch/poswitch/switch/txn"
)

// Validate checks what the switch can check without anyone else: the card number's shape and Luhn
// digit (14), a positive amount (13), and a supported transaction type (12). Field syntax was already
// checked when the message was translated (30). Reversals, voids and completions name their
// original in field 90 and may come without the card; a card they do carry must be valid. Their
// amount may be zero (the ledger mirrors the original whatever it says), as may an inquiry's.
type Validate struct {
	// Supported lists the transaction types this node carries end to end.
	Supported map[txn.Type]bool
}

func (Validate) Name() string { return "validate" }

func (v Validate) Run(_ context.Context, t *txn.Transaction) {
	if !v.Supported[t.Type] {
		t.End(txn.RCInvalidTxn, "transaction type "+t.Type.String()+" is not supported")
		return
	}
	if t.PAN != "" || carriesCard(t.Type) {
		if len(t.PAN) < 12 || len(t.PAN) > 19 || !allDigits(t.PAN) {
			t.End(txn.RCInvalidCard, "card number is not 12 to 19 digits")
			return
		}
		// A wallet's payment code (entry mode 03, a scanned bar code or QR) has no check digit.
		if !t.PaymentCode() && !Luhn(t.PAN) {
			t.End(txn.RCInvalidCard, "card number fails the Luhn check")
			return
		}
	}
	if t.Amount < 0 || (t.Amount == 0 && !amountOptional(t.Type)) {
		t.End(txn.RCInvalidAmount, "amount must be positive")
		return
	}
	if t.Expiry != "" && (len(t.Expiry) != 4 || !allDigits(t.Expiry) || t.Expiry[2:] < "01" || t.Expiry[2:] > "12") {
		t.End(txn.RCFormatError, "expiry is not YYMM")
	}
}

// carriesCard are the types that need a card number (or payment code): the rest name their original
// in field 90 (reversal, void, completion, signature upload), name an order, or, for a refund, may
// leave the card to the original (a QR payment's code is spent; its wallet refunds by the original).
func carriesCard(k txn.Type) bool {
	switch k {
	case txn.TypePurchase, txn.TypePreAuth, txn.TypeBalanceInquiry, txn.TypeBillPayment:
		return true
	}
	return false
}

func amountOptional(k txn.Type) bool {
	switch k {
	case txn.TypeBalanceInquiry, txn.TypeReversal, txn.TypeVoid, txn.TypeOrderStatus, txn.TypeOrderCancel,
		txn.TypeSignatureUpload:
		return true
	}
	return false
}

// Luhn reports whether a digit string passes the ISO/IEC 7812 mod-10 check.
func Luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
