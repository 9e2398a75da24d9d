package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/poswitch/poswitch/ledger/currency"
)

// Kind is the transaction type a booking carries; each has its posting rule in its own file.
type Kind uint8

// Kinds of booking. Payout and IssuerSettlement are booked by cut-over only.
const (
	Purchase         Kind = iota + 1 // purchase.go
	PreAuth                          // preauth.go: a pending hold, not money yet
	Completion                       // completion.go: posts the completed amount, releases the rest
	HoldExpiry                       // holdexpiry.go
	Void                             // void.go: exact mirror of a same-cycle transaction, or hold release
	Refund                           // refund.go
	Reversal                         // reversal.go: exact mirror
	BillPayment                      // billpayment.go: bill payment / credit repayment
	Chargeback                       // chargeback.go
	Payout                           // settlement.go
	IssuerSettlement                 // settlement.go
)

var kindNames = map[Kind]string{
	Purchase: "purchase", PreAuth: "preauth", Completion: "completion", HoldExpiry: "hold_expiry",
	Void: "void", Refund: "refund", Reversal: "reversal", BillPayment: "bill_payment",
	Chargeback: "chargeback", Payout: "payout", IssuerSettlement: "issuer_settlement",
}

// String is the name stored in journal_entry.kind.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of String.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown booking kind %q", s)
}

// cancels says whether a kind cancels or completes the transaction it names (at most one such
// entry per original, enforced by the unique journal_entry.consumes).
func (k Kind) cancels() bool {
	return k == Reversal || k == Void || k == Completion || k == HoldExpiry
}

// needsOriginal says whether the booking acts on an earlier transaction.
func (k Kind) needsOriginal() bool {
	return k.cancels() || k == Refund || k == Chargeback
}

// Bounds on what a booking may carry.
const (
	maxAmountMinor = 999_999_999_999 // ISO 8583 field 4 holds 12 digits
	maxKeyBytes    = 200
	maxFieldBytes  = 64
	maxTraceDigits = 12 // issuer STAN and time; journal_entry checks the same
)

// Booking is one transaction handed to the ledger by the switch.
type Booking struct {
	Key         string // unique transaction identity (acquirer|terminal|STAN|transmission time|MTI class|RRN)
	Kind        Kind
	OriginalKey string // the transaction this one acts on (reversal, void, refund, completion, chargeback, hold expiry)
	Merchant    string
	Terminal    string
	Issuer      string
	Currency    string // ISO 4217 numeric, e.g. "156"
	Amount      int64  // minor units; for a reversal or void the mirror is exact whatever this says
	STAN        string
	RRN         string
	AuthCode    string
	EntryMode   string
	PANMasked   string    // first 6 + last 4 only; the ledger never sees a clear PAN
	PANHash     []byte    // keyed hash computed by the caller, for lookups
	At          time.Time // transaction time, recorded on the entry
	// HoldExpiresAt is when a pre-authorisation hold lapses; zero means At + WriterConfig.HoldTTL.
	HoldExpiresAt time.Time
	// IssuerSTAN and IssuerTime are the issuer trace: field 11 and field 7 of the message the
	// switch sent the issuer for this transaction ("" when it sent none). A later reversal at the
	// issuer names the original by them (IssuerTraceOf). They are stored on the entry but are not
	// part of its content hash (a retry goes out under a new trace) nor of the batch seal.
	IssuerSTAN string
	IssuerTime string
	// Payee is set on a bill payment to a wallet biller (a Huabei repayment at a POS): the wallet the
	// money is owed to. The entry credits wallet_payable:<Payee> with PayeeFeeBP (0..10000, half-up)
	// instead of a merchant's payable and fee; Merchant may then be empty, since the acceptor only
	// collects for the wallet and is not paid out for it (billpayment.go).
	Payee      string
	PayeeFeeBP int64
}

// Result is what the ledger did with a booking. Outcomes of rules (nothing to reverse, refund
// above the original) are results, not errors: the switch turns them into response codes.
type Result struct {
	EntryID   EntryID
	Status    Status // booked, noop, refused
	Fee       int64  // fee charged (purchase, completion, bill payment) or returned (refund), minor units
	Amount    int64  // amount booked (for a reversal: the mirrored amount)
	Cycle     int64  // settlement cycle of the postings
	Duplicate bool   // this identity was booked before; this is the stored answer, nothing new was booked
	NotFound  bool   // the original transaction is unknown (reversal/void of unknown: booked nothing)
	// AlreadyCancelled: the original had already been reversed, voided, completed or expired, so
	// this reversal or void booked nothing.
	AlreadyCancelled bool
	Reason           string // why a booking is noop or refused
}

// Status of a journal entry.
type Status string

// Entry statuses.
const (
	StatusBooked  Status = "booked"  // postings written (or, for a pre-authorisation, a hold)
	StatusNoop    Status = "noop"    // nothing to book; the identity is remembered
	StatusRefused Status = "refused" // a rule refused it; the identity is remembered
)

// Errors a booking can end with. Anything else is an internal or configuration error; the switch
// answers 96 for all of them.
var (
	// ErrUnavailable: the database is down or did not confirm the commit. Nothing was acknowledged;
	// the writer recovers by itself when the database returns.
	ErrUnavailable = errors.New("ledger unavailable")
	// ErrConflict: this identity was booked before with different content.
	ErrConflict = errors.New("ledger: same transaction identity with different content")
	// ErrInvalid: the booking itself is malformed (no key, bad currency, amount out of range).
	ErrInvalid = errors.New("ledger: invalid booking")
	// ErrClosed: the writer has stopped.
	ErrClosed = errors.New("ledger writer closed")
)

// validate checks a booking before it is queued, so that one bad booking never fails a batch.
func (b *Booking) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, b.Key, fmt.Sprintf(format, a...))
	}
	if b.Key == "" || len(b.Key) > maxKeyBytes {
		return fmt.Errorf("%w: key must be 1..%d bytes", ErrInvalid, maxKeyBytes)
	}
	if _, ok := kindNames[b.Kind]; !ok || b.Kind == Payout || b.Kind == IssuerSettlement {
		return bad("kind %v cannot be booked by the writer", b.Kind)
	}
	c, ok := currency.ByNumeric(b.Currency)
	if !ok {
		return bad("unknown currency %q", b.Currency)
	}
	b.Currency = c.Numeric
	if b.Amount < 0 || b.Amount > maxAmountMinor {
		return bad("amount %d out of range 0..%d", b.Amount, int64(maxAmountMinor))
	}
	if b.Amount == 0 && !b.Kind.cancels() {
		return bad("%s of zero", b.Kind)
	}
	if b.Kind.needsOriginal() && b.OriginalKey == "" {
		return bad("%s needs the original transaction's key", b.Kind)
	}
	if len(b.OriginalKey) > maxKeyBytes {
		return bad("original key longer than %d bytes", maxKeyBytes)
	}
	for name, v := range map[string]string{"merchant": b.Merchant, "terminal": b.Terminal, "issuer": b.Issuer,
		"STAN": b.STAN, "RRN": b.RRN, "auth code": b.AuthCode, "entry mode": b.EntryMode, "masked PAN": b.PANMasked} {
		if len(v) > maxFieldBytes {
			return bad("%s longer than %d bytes", name, maxFieldBytes)
		}
	}
	if (b.Kind == Purchase || b.Kind == PreAuth || b.Kind == BillPayment) && ((b.Merchant == "" && b.Payee == "") || b.Issuer == "") {
		return bad("%s needs merchant and issuer", b.Kind)
	}
	if b.Payee != "" && (b.Kind != BillPayment || b.PayeeFeeBP < 0 || b.PayeeFeeBP > 10000 || len(b.Payee) > maxFieldBytes) {
		return bad("a payee (wallet biller) is for bill payments only, with a fee of 0..10000 bp")
	}
	if strings.ContainsAny(b.Merchant+b.Issuer+b.Payee, ":") {
		return bad("merchant and issuer ids may not contain ':' (it separates account names)")
	}
	for name, v := range map[string]string{"issuer STAN": b.IssuerSTAN, "issuer time": b.IssuerTime} {
		if v != "" && (len(v) > maxTraceDigits || strings.Trim(v, "0123456789") != "") {
			return bad("%s must be 1..%d digits", name, maxTraceDigits)
		}
	}
	if looksLikeClearPAN(b.PANMasked) {
		return bad("masked PAN holds a run of 11 or more digits; pass first 6 + last 4 only")
	}
	if len(b.PANHash) > 64 {
		return bad("PAN hash longer than 64 bytes")
	}
	if b.At.IsZero() {
		b.At = time.Now()
	}
	// PostgreSQL keeps microseconds; hash what is stored.
	b.At = b.At.UTC().Truncate(time.Microsecond)
	return nil
}

func looksLikeClearPAN(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			if run >= 11 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// contentHash identifies what a booking says, so that a retry (same identity, same content) is a
// duplicate and a different transaction reusing an identity is a conflict. Time, RRN and auth code
// are left out: a repeat may carry a new transmission of the same transaction.
func (b *Booking) contentHash() []byte {
	h := sha256.New()
	var n [8]byte
	put := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put(b.Kind.String())
	put(b.OriginalKey)
	put(b.Merchant)
	put(b.Terminal)
	put(b.Issuer)
	put(b.Currency)
	binary.BigEndian.PutUint64(n[:], uint64(b.Amount))
	h.Write(n[:])
	put(string(b.PANHash))
	if b.Payee != "" {
		// Only bookings with a payee hash it, so every other booking's hash is what it always was.
		put("payee")
		put(b.Payee)
		binary.BigEndian.PutUint64(n[:], uint64(b.PayeeFeeBP))
		h.Write(n[:])
	}
	return h.Sum(nil)
}
