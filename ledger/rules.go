package ledger

import (
	"fmt"
	"time"
)

// The posting rules. Each kind has its own file (purchase.go, refund.go, …); this file holds what
// they share: the state a rule may read (the transactions a batch acts on) and the plan it fills.

// original is what the ledger knows about a transaction that another booking acts on: its entry,
// its postings, and what has happened to it since.
type original struct {
	key         string
	id          EntryID
	kind        Kind
	status      Status
	originalKey string
	merchant    string
	terminal    string
	issuer      string
	currency    string
	amount      int64
	fee         int64
	postings    []Posting
	consumedBy  string // key of the booked entry that reversed, voided, completed or expired it
	refunded    int64  // booked refunds not since reversed
	feeReturned int64  // fee given back by those refunds
	chargedBack int64  // booked chargebacks not since reversed
	hold        *hold  // pre-authorisations only
	cycleClosed bool   // its settlement cycle was cut over (void.go)
}

type hold struct {
	amount    int64
	expiresAt time.Time
}

// plan is one booking on its way into a batch: what the rule decided.
type plan struct {
	b           Booking
	id          EntryID
	contentHash []byte
	status      Status
	reason      string
	consumes    string // set only when booked
	merchant    string
	issuer      string
	amount      int64
	fee         int64
	postings    []Posting
	newHold     *hold
	notFound    bool
	cancelled   bool
}

func (p *plan) book(postings []Posting) {
	p.status = StatusBooked
	p.postings = postings
}

func (p *plan) noop(format string, a ...any) {
	p.status, p.reason, p.postings = StatusNoop, fmt.Sprintf(format, a...), nil
}

func (p *plan) refuse(format string, a ...any) {
	p.status, p.reason, p.postings = StatusRefused, fmt.Sprintf(format, a...), nil
}

func (p *plan) result() Result {
	return Result{EntryID: p.id, Status: p.status, Fee: p.fee, Amount: p.amount, NotFound: p.notFound,
		AlreadyCancelled: p.cancelled, Reason: p.reason}
}

// rules holds the state rules read while one batch is planned. Plans apply in order and update
// it, so a purchase and its reversal in the same batch behave as if booked one after the other.
type rules struct {
	originals map[string]*original
	merchant  func(id string) MerchantSettings
	holdTTL   time.Duration
}

// apply runs the rule for p's kind and then remembers p as a possible original for later bookings.
func (r *rules) apply(p *plan) {
	p.merchant, p.issuer, p.amount = p.b.Merchant, p.b.Issuer, p.b.Amount
	switch p.b.Kind {
	case Purchase:
		purchaseRule(r, p)
	case PreAuth:
		preAuthRule(r, p)
	case Completion:
		completionRule(r, p)
	case HoldExpiry:
		holdExpiryRule(r, p)
	case Void:
		voidRule(r, p)
	case Reversal:
		reversalRule(r, p)
	case Refund:
		refundRule(r, p)
	case BillPayment:
		billPaymentRule(r, p)
	case Chargeback:
		chargebackRule(r, p)
	default:
		p.refuse("no posting rule for %s", p.b.Kind)
	}
	if p.status != StatusBooked {
		p.amount, p.fee, p.consumes, p.newHold = 0, 0, "", nil
	}
	r.remember(p)
}

func (r *rules) remember(p *plan) {
	o := &original{key: p.b.Key, id: p.id, kind: p.b.Kind, status: p.status, originalKey: p.b.OriginalKey,
		merchant: p.merchant, terminal: p.b.Terminal, issuer: p.issuer, currency: p.b.Currency,
		amount: p.amount, fee: p.fee, postings: p.postings, hold: p.newHold}
	r.originals[p.b.Key] = o
}

// target finds the original a booking acts on and checks what every rule checks: it exists, it
// booked something, it is in the same currency and (when the booking names one) the same merchant.
// It returns nil after deciding p when there is nothing to act on.
func (r *rules) target(p *plan) *original {
	o := r.originals[p.b.OriginalKey]
	switch {
	case o == nil:
		p.notFound = true
		if p.b.Kind == Reversal || p.b.Kind == Void || p.b.Kind == HoldExpiry {
			p.noop("original transaction %s unknown: nothing to %s", p.b.OriginalKey, p.b.Kind)
		} else {
			p.refuse("original transaction %s unknown", p.b.OriginalKey)
		}
		return nil
	case o.status != StatusBooked:
		if p.b.Kind == Reversal || p.b.Kind == Void || p.b.Kind == HoldExpiry {
			p.noop("original %s was %s: nothing to %s", o.key, o.status, p.b.Kind)
		} else {
			p.refuse("original %s was %s", o.key, o.status)
		}
		return nil
	case o.currency != p.b.Currency:
		p.refuse("currency %s differs from the original's %s", p.b.Currency, o.currency)
		return nil
	case p.b.Merchant != "" && o.merchant != "" && p.b.Merchant != o.merchant:
		p.refuse("merchant %s differs from the original's %s", p.b.Merchant, o.merchant)
		return nil
	}
	p.merchant, p.issuer = o.merchant, o.issuer
	return o
}

// salePostings is the purchase shape (also completion and bill payment):
// Dr issuer_receivable A · Cr merchant_payable A − f · Cr fee_income f. Zero lines are left out.
func salePostings(issuer, merchant, cur string, amount, fee int64) []Posting {
	ps := make([]Posting, 0, 3)
	ps = append(ps, Posting{IssuerReceivable(issuer), cur, amount})
	if amount-fee != 0 {
		ps = append(ps, Posting{MerchantPayable(merchant), cur, -(amount - fee)})
	}
	if fee != 0 {
		ps = append(ps, Posting{AccountFeeIncome, cur, -fee})
	}
	return ps
}
