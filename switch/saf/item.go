// Package saf is the switch's store-and-forward queue: reversals (0420, repeated as 0421) and advices
// (0120/0220, repeated as 0121/0221) the switch owes an issuer, kept in PostgreSQL until the issuer
// answers, as jPOS-EE's store-and-forward and ACI's SAFTOR keep them. Several switch nodes may share
// one database: each due item is claimed by one node with FOR UPDATE SKIP LOCKED and a lease, sent
// without any database transaction open, and settled afterwards.
//
// An answer settles an item, but not every answer delivers it (Acknowledged): an advice answered
// 30, 12, 14 or 96, or a reversal answered 30 or 96, was not taken by the issuer and is flagged
// operator at once, logged at error without card data; any other answer marks it done (issuers
// acknowledge reversals of originals they never saw with 00). Unanswered attempts are repeated
// with back-off until MaxAttempts, then flagged operator.
package saf

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/moov-io/iso8583"
)

// Kind is what an item tells the issuer.
type Kind string

const (
	KindReversal Kind = "reversal" // 0420: undo what the issuer may have done for the original
	KindAdvice   Kind = "advice"   // 0120/0220: the switch approved on the issuer's behalf (stand-in)
)

// Message reason codes, ISO 8583:1993 values (field 25 there). ISO 8583:1987 has no message reason
// field, so the issuer link carries the code in private field 60 (LLLVAR, 4 digits); see docs/flows.md.
const (
	ReasonCustomerCancel  = "4000" // the terminal reversed its request (terminal 0400/0420)
	ReasonSuspectedFault  = "4002" // suspected malfunction
	ReasonLateResponse    = "4006" // the issuer's approval arrived after the switch had answered 91
	ReasonNotDelivered    = "4013" // unable to deliver the approval to the point of service (ledger failure)
	ReasonInvalidResponse = "4020" // the issuer's answer was unusable; what it decided is unknown
	ReasonTimeout         = "4021" // timeout waiting for the issuer's response
	ReasonStandIn         = "1007" // advice: stand-in processing at the acquirer's option
)

// ReasonField is the issuer-link field that carries the message reason code.
const ReasonField = 60

// Status is where an item stands.
type Status string

const (
	StatusPending   Status = "pending"   // waiting for its next attempt
	StatusDone      Status = "done"      // the issuer answered and acknowledged it
	StatusOperator  Status = "operator"  // MaxAttempts unanswered, or the issuer could not process it: an operator decides
	StatusCancelled Status = "cancelled" // never needs sending (an advice reversed before it was sent)
)

// Item is one message the switch owes an issuer: only what rebuilds it, never a clear PAN, track data,
// PIN block or CVV. The original (OrigMTI, OrigSTAN, OrigTime, AcquirerID, TerminalID) is the message
// as the issuer received it, i.e. its link-side STAN and field 7; with Issuer and Kind it is the
// item's identity, so that the reversal enqueued at a timeout and the one a late approval enqueues
// are the same item.
type Item struct {
	Kind   Kind
	Issuer string
	MTI    string // first attempt: 0420 (reversal), 0120 or 0220 (advice)

	OrigMTI    string // field 90.1: the original's MTI on the link (0100, 0200)
	OrigSTAN   string // field 90.2: the original's link STAN (field 11 as sent)
	OrigTime   string // field 90.3: the original's link field 7, MMDDhhmmss
	AcquirerID string // field 32 and field 90.4 (zero-filled to 11)
	TerminalID string // field 41

	// OriginalKey is the terminal-side identity of the original (txn.Key), for operators and to join
	// the ledger; "" when the enqueuer does not know it (a late answer).
	OriginalKey string

	ProcessingCode string // field 3
	Amount         int64  // field 4, minor units of Currency
	Currency       string // field 49, ISO 4217 numeric
	MerchantID     string // field 42
	RRN            string // field 37
	AuthCode       string // field 38: the stand-in's code on advices; the issuer's, when known, on reversals
	MCC            string // field 18 (advices)
	EntryMode      string // field 22 (advices)
	PANMasked      string // first 6 and last 4, for operators; never sent
	PANSealed      []byte // advices: the PAN sealed by the HSM, opened only to build field 2; opaque here
	Reason         string // field 60, see the Reason constants
}

// maxSealedPAN bounds PANSealed (the column allows 256 bytes).
const maxSealedPAN = 256

var (
	digitsRE   = regexp.MustCompile(`^[0-9]+$`)
	clearPANRE = regexp.MustCompile(`[0-9]{13}`)
)

func isDigits(s string, n int) bool { return len(s) == n && digitsRE.MatchString(s) }

// Validate checks an item before it is stored, so that a stored item always builds a message that
// packs, and refuses anything that looks like a clear PAN.
func (it *Item) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("saf item %s: %s", field, fmt.Sprintf(format, args...))
	}
	switch {
	case it.Kind == KindReversal && it.MTI != "0420":
		return bad("mti", "a reversal is sent as 0420, not %q", it.MTI)
	case it.Kind == KindAdvice && it.MTI != "0120" && it.MTI != "0220":
		return bad("mti", "an advice is sent as 0120 or 0220, not %q", it.MTI)
	case it.Kind != KindReversal && it.Kind != KindAdvice:
		return bad("kind", "unknown kind %q", it.Kind)
	case it.Issuer == "":
		return bad("issuer", "is required")
	case !isDigits(it.OrigMTI, 4) || it.OrigMTI[0] != '0':
		return bad("orig_mti", "must be an ISO 8583:1987 MTI, is %q", it.OrigMTI)
	case !isDigits(it.OrigSTAN, 6):
		return bad("orig_stan", "must be 6 digits, is %q", it.OrigSTAN)
	case !isDigits(it.OrigTime, 10):
		return bad("orig_time", "must be 10 digits (MMDDhhmmss), is %q", it.OrigTime)
	case it.AcquirerID == "" || len(it.AcquirerID) > 11 || !digitsRE.MatchString(it.AcquirerID):
		return bad("acquirer", "must be 1 to 11 digits, is %q", it.AcquirerID)
	case strings.TrimSpace(it.TerminalID) == "" || len(it.TerminalID) > 8:
		return bad("terminal", "must be 1 to 8 characters, is %q", it.TerminalID)
	case !isDigits(it.ProcessingCode, 6):
		return bad("processing_code", "must be 6 digits, is %q", it.ProcessingCode)
	case it.Amount < 0 || it.Amount > 999_999_999_999:
		return bad("amount", "must fit field 4 (0 to 12 digits), is %d", it.Amount)
	case !isDigits(it.Currency, 3):
		return bad("currency", "must be an ISO 4217 numeric code, is %q", it.Currency)
	case len(it.MerchantID) > 15:
		return bad("merchant", "is longer than field 42 (15)")
	case len(it.RRN) > 12:
		return bad("rrn", "is longer than field 37 (12)")
	case len(it.AuthCode) > 6:
		return bad("auth_code", "is longer than field 38 (6)")
	case it.MCC != "" && !isDigits(it.MCC, 4):
		return bad("mcc", "must be 4 digits, is %q", it.MCC)
	case it.EntryMode != "" && !isDigits(it.EntryMode, 3):
		return bad("entry_mode", "must be 3 digits, is %q", it.EntryMode)
	case clearPANRE.MatchString(it.PANMasked):
		return bad("pan_masked", "holds a run of 13 digits: a clear PAN is never stored")
	case len(it.PANSealed) > maxSealedPAN:
		return bad("pan_sealed", "is %d bytes, at most %d", len(it.PANSealed), maxSealedPAN)
	case it.Kind == KindReversal && len(it.PANSealed) > 0:
		return bad("pan_sealed", "a reversal names its original by field 90 and carries no PAN")
	case !isDigits(it.Reason, 4):
		return bad("reason", "must be a 4-digit message reason code, is %q", it.Reason)
	}
	return nil
}

// OriginalData is field 90 of the item's message: original MTI, STAN and transmission time, the
// acquirer right-justified and zero-filled to 11 digits, and 11 zeros of forwarding institution.
func (it *Item) OriginalData() string {
	return it.OrigMTI + it.OrigSTAN + it.OrigTime + strings.Repeat("0", 11-len(it.AcquirerID)) + it.AcquirerID +
		strings.Repeat("0", 11)
}

// RepeatMTI is the MTI of every attempt after the first: 0421, 0121, 0221.
func RepeatMTI(mti string) string { return mti[:3] + "1" }

// Message builds the item's message for one attempt on the issuer link. Fields 11 and 7 are the
// link's own (it sets them when it sends). pan is the opened PAN of an advice, "" for none: field 2
// is then absent and the issuer identifies the original by field 90 with 41 and 32.
func (it *Item) Message(spec *iso8583.MessageSpec, repeat bool, pan string) (*iso8583.Message, error) {
	mti := it.MTI
	if repeat {
		mti = RepeatMTI(mti)
	}
	m := iso8583.NewMessage(spec)
	m.MTI(mti)
	fields := []struct {
		id int
		v  string
	}{
		{2, pan}, {3, it.ProcessingCode}, {4, fmt.Sprintf("%012d", it.Amount)}, {18, it.MCC}, {22, it.EntryMode},
		{32, it.AcquirerID}, {37, padRight(it.RRN, 12)}, {38, padRight(it.AuthCode, 6)},
		{41, padRight(it.TerminalID, 8)}, {42, padRight(it.MerchantID, 15)}, {49, it.Currency},
		{ReasonField, it.Reason}, {90, it.OriginalData()},
	}
	for _, f := range fields {
		if f.v == "" {
			continue
		}
		if err := m.Field(f.id, f.v); err != nil {
			return nil, fmt.Errorf("building %s field %d: %w", mti, f.id, err)
		}
	}
	return m, nil
}

// padRight left-justifies s in an n-character ISO "ans" field; "" stays "" (the field is left out).
func padRight(s string, n int) string {
	if s == "" || len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}
