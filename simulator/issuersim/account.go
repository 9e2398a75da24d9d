package issuersim

import (
	"fmt"
	"sync"
	"time"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/recall"
)

// account is one cardholder account of the simulated issuer; its fields are guarded by ledger.mu.
type account struct {
	card    cards.Card
	balance int64 // ledger balance, minor units of card.Currency
	held    int64 // open pre-authorisation holds
}

// available is what the cardholder may still spend: the ledger balance less the open holds.
func (a *account) available() int64 { return a.balance - a.held }

// defaultMaxRecords bounds the financial requests and advices the simulator remembers (for
// duplicates, reversals, voids, completions and Records); the oldest are forgotten first. A record
// costs about 650 bytes (measured with its map entry), so the default holds up to about 650 MB.
const defaultMaxRecords = 1_000_000

// keyClass separates the namespaces of remembered identities.
type keyClass byte

const (
	// classLink is a request or advice by its own link identity (fields 11, 7, 32, 41): what field 90
	// of a reversal, void or completion names.
	classLink keyClass = 'L'
	// classAuthAdvice and classFinAdvice are 0120 and 0220 advices by their advice identity (see
	// adviceKey), which stays the same across the repeats a store-and-forward queue sends.
	classAuthAdvice keyClass = '1'
	classFinAdvice  keyClass = '2'
)

// txnKey identifies a message the way field 90 names an original (STAN, transmission date and time,
// acquiring institution) plus the card acceptor terminal, so that terminals talking to the simulator
// directly, each with its own STAN sequence, do not collide.
type txnKey struct {
	class                                  keyClass
	stan, transmission, acquirer, terminal string
}

// entry is what the simulator remembers of one financial request or advice. Guarded by ledger.mu.
type entry struct {
	rec  Record
	keys []txnKey
	pan  string // the account's PAN, for restoring money; never leaves the process

	debit, credit, hold int64 // what it did to the account when rec.Applied
	holdOpen            bool  // its hold still reduces the available balance
	cancelled           bool  // reversed or voided (or a void that was itself reversed)
	voided              *entry
	rrn                 string // field 37 given in the answer when the request had none
	addl                string // field 54 of a balance inquiry's answer
}

// outcome is the answer to one request, copied out of the ledger lock.
type outcome struct {
	code, authCode, rrn, addl string
	dup                       bool
	e                         *entry // for marking the answer's fate; touch only under ledger.mu
}

func (e *entry) outcome(dup bool) outcome {
	return outcome{code: e.rec.Response, authCode: e.rec.AuthCode, rrn: e.rrn, addl: e.addl, dup: dup, e: e}
}

// ledger holds the accounts and the remembered requests of one simulator. One mutex guards all of it:
// the decisions are microseconds, and one lock makes "a repeat racing its original on another
// connection books once" obvious.
type ledger struct {
	accounts map[string]*account

	mu sync.Mutex
	// memory holds the remembered requests and advices, for duplicates, reversals and Records.
	memory  *recall.Memory[txnKey, *entry]
	authSeq int    // source of approval codes (field 38)
	rrnSeq  uint64 // source of retrieval reference numbers (field 37) for requests without one
}

func newLedger(cs []cards.Card, issuer string, maxRecords int) *ledger {
	l := &ledger{accounts: make(map[string]*account),
		memory: recall.New(maxRecords, func(e *entry) []txnKey { return e.keys })}
	for _, c := range cs {
		if c.NotOnFile || (issuer != "" && c.Issuer != issuer) {
			continue
		}
		l.accounts[c.PAN] = &account{card: c, balance: c.Balance}
	}
	return l
}

// known reports whether a request with this identity was answered before.
func (l *ledger) known(k txnKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.memory.Get(k)
	return ok
}

// check applies the card rules of docs/test-cards.md; "" means the card may be used. withAmount adds
// the amount rules (magic amounts, per-transaction limit) for requests that take money.
func (l *ledger) check(pan string, amount int64, currency, expiry string, withAmount bool, now time.Time) (code string, noResponse bool) {
	acct, ok := l.accounts[pan]
	if !ok {
		return cards.InvalidCardNumber, false
	}
	c := acct.card
	if expiry == "" {
		expiry = c.Expiry
	}
	switch {
	case expiry < now.Format("0601") || c.Expiry < now.Format("0601"):
		return cards.ExpiredCard, false
	case c.Blocked:
		return cards.DoNotHonour, false
	case c.Restricted:
		return cards.RestrictedCard, false
	case currency != "" && currency != c.Currency:
		return cards.NotPermitted, false
	case !withAmount:
		return "", false
	case amount == cards.NoResponseAmount:
		return "", true
	case amount >= cards.MagicAmountBase && amount < cards.MagicAmountBase+100:
		return fmt.Sprintf("%02d", amount-cards.MagicAmountBase), false
	case amount > c.Limit:
		return cards.ExceedsWithdrawLimit, false
	}
	return "", false
}

// post applies an entry's effect to its account.
func (l *ledger) post(e *entry, debit, credit, hold int64) {
	a := l.accounts[e.pan]
	a.balance += credit - debit
	a.held += hold
	e.debit, e.credit, e.hold = debit, credit, hold
	e.holdOpen = hold > 0
	e.rec.Applied = true
}

// cancel undoes an entry once (a reversal or a void): it reports whether money or a hold came back.
// Cancelling a void puts back the original the void cancelled.
func (l *ledger) cancel(e *entry) bool {
	if e.cancelled {
		return false
	}
	e.cancelled = true
	if o := e.voided; o != nil {
		o.cancelled, o.rec.Voided = false, false
		a := l.accounts[o.pan]
		a.balance += o.credit - o.debit
		if o.hold > 0 && !o.rec.Completed {
			a.held += o.hold
			o.holdOpen = true
		}
		return true
	}
	if !e.rec.Applied {
		return false
	}
	a := l.accounts[e.pan]
	restored := e.debit != 0 || e.credit != 0 || e.holdOpen
	a.balance += e.debit - e.credit
	if e.holdOpen {
		a.held -= e.hold
		e.holdOpen = false
	}
	return restored
}

// approve gives an approved entry its authorization code.
func (l *ledger) approve(e *entry) {
	l.authSeq++
	e.rec.Response = cards.Approved
	e.rec.AuthCode = fmt.Sprintf("%06d", l.authSeq%1_000_000)
}

func (l *ledger) newEntry(r *request) *entry {
	e := &entry{pan: r.pan, rec: Record{
		MTI: r.mti, ProcessingCode: r.proc, STAN: r.own.stan, TransmissionTime: r.own.transmission,
		Acquirer: r.own.acquirer, Terminal: r.own.terminal, Original: r.original, MaskedPAN: cards.MaskPAN(r.pan),
		Amount: r.amount, Currency: r.currency, Copies: 1,
	}}
	if r.rrn == "" {
		l.rrnSeq++
		e.rrn = fmt.Sprintf("%012d", l.rrnSeq%1_000_000_000_000)
	}
	return e
}

// Transaction types (processing code positions 1-2) the simulator knows.
const (
	typePurchase    = "00"
	typeCash        = "01"
	typeVoid        = "02"
	typeCashback    = "09"
	typeRefund      = "20"
	typeBalance     = "31"
	typeTransfer    = "40" // bill payment from the card account
	typeBillPayment = "50"
)

// takesMoney reports whether a transaction type debits the account (or holds funds when authorised).
func takesMoney(typ string) bool {
	switch typ {
	case typePurchase, typeCash, typeCashback, typeTransfer, typeBillPayment:
		return true
	}
	return false
}

// decide answers a financial request (0100/0200 and repeats) unless its identity was answered
// before, in which case the stored answer is returned with dup set: a retransmission books nothing
// twice. pinCode is the PIN check's decline, "" when the PIN was right or absent. noResponse is the
// magic amount that is never answered (and not remembered).
func (l *ledger) decide(r *request, pinCode string, now time.Time) (out outcome, noResponse bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.memory.Get(r.own); ok {
		old.rec.Copies++
		return old.outcome(true), false
	}
	e := l.newEntry(r)
	e.keys = []txnKey{r.own}
	typ := r.proc[:2]
	authorisation := r.mti[1] == '1' // 0100: holds funds instead of debiting them
	code := ""
	switch {
	case pinCode != "":
		code = pinCode
	case takesMoney(typ):
		if code, noResponse = l.check(r.pan, r.amount, r.currency, r.expiry, true, now); noResponse {
			return outcome{}, true
		}
		if code == "" && r.amount > l.accounts[r.pan].available() {
			code = cards.InsufficientFunds
		}
		if code == "" {
			if authorisation {
				l.post(e, 0, 0, r.amount)
			} else {
				l.post(e, r.amount, 0, 0)
			}
		}
	case typ == typeRefund && !authorisation:
		if code, _ = l.check(r.pan, 0, r.currency, r.expiry, false, now); code == "" {
			l.post(e, 0, r.amount, 0)
		}
	case typ == typeBalance:
		if code, _ = l.check(r.pan, 0, "", r.expiry, false, now); code == "" {
			a := l.accounts[r.pan]
			e.addl = additionalAmounts(r.proc[2:4], a.card.Currency, a.balance, a.available())
		}
	case typ == typeVoid && !authorisation:
		code = l.void(e, r)
	default:
		code = cards.InvalidTransaction
	}
	if code == "" {
		l.approve(e)
	} else {
		e.rec.Response = code
	}
	l.memory.Remember(e)
	return e.outcome(false), false
}

// Response codes the simulator gives besides the card outcomes.
const (
	formatError    = "30"
	recordNotFound = "25" // ISO 8583:1987 "unable to locate record on file": a void of an unknown original
	declineSignOn  = "91" // sign-on refused by fault injection
)

// void cancels the original named by field 90 once. A void of an original already reversed or voided
// is approved and changes nothing; one the issuer never saw is 25.
func (l *ledger) void(e *entry, r *request) string {
	if !r.hasOrig {
		return formatError
	}
	o, ok := l.memory.Get(r.orig)
	switch {
	case !ok:
		return recordNotFound
	case o.pan != r.pan:
		return cards.InvalidTransaction
	}
	if l.cancel(o) {
		o.rec.Voided = true
		e.voided = o
		e.rec.Applied = true
	}
	return ""
}

// advise books an 0120/0121 or 0220/0221 advice once per advice identity: the acquirer already
// approved it, so the issuer posts it whatever the balance. An 0220 naming (field 90) an open hold
// completes it: the hold is released and the completed amount posted. An 0120 holds funds, as the
// 0100 it stands for would have.
func (l *ledger) advise(r *request, key txnKey) outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.memory.Get(key); ok {
		old.rec.Copies++
		return old.outcome(true)
	}
	e := l.newEntry(r)
	e.keys = []txnKey{key, r.own}
	typ := r.proc[:2]
	a, ok := l.accounts[r.pan]
	switch {
	case !ok:
		e.rec.Response = cards.InvalidCardNumber
		l.memory.Remember(e)
		return e.outcome(false)
	case r.mti[1] == '1':
		if takesMoney(typ) {
			l.post(e, 0, 0, r.amount)
		}
	default:
		if o := l.openHold(r); o != nil {
			a.held -= o.hold
			o.holdOpen, o.rec.Completed = false, true
			l.post(e, r.amount, 0, 0)
			e.rec.Completes = true
		} else if takesMoney(typ) {
			l.post(e, r.amount, 0, 0)
		} else if typ == typeRefund {
			l.post(e, 0, r.amount, 0)
		}
	}
	l.approve(e)
	l.memory.Remember(e)
	return e.outcome(false)
}

// openHold is the pre-authorisation an 0220 completes: named by field 90, same card, hold still open.
func (l *ledger) openHold(r *request) *entry {
	if !r.hasOrig {
		return nil
	}
	o, ok := l.named(r.orig)
	if !ok || !o.holdOpen || o.cancelled || o.pan != r.pan {
		return nil
	}
	return o
}

// named finds what a field 90 names: a request as the link sent it, else an advice that named the
// same identity in its own field 90 — a stand-in approval or pre-authorisation the issuer knows only
// from the switch's 0220 or 0120. Callers hold l.mu.
func (l *ledger) named(orig txnKey) (*entry, bool) {
	for _, class := range []keyClass{orig.class, classFinAdvice, classAuthAdvice} {
		k := orig
		k.class = class
		if o, ok := l.memory.Get(k); ok {
			return o, true
		}
	}
	return nil, false
}

// reverse handles one reversal message naming orig: it counts the message on the original and
// cancels it the first time. known is false for an original the simulator never saw (or forgot).
func (l *ledger) reverse(orig txnKey) (known, restored bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.named(orig)
	if !ok {
		return false, false
	}
	o.rec.ReversalsNamed++
	if !l.cancel(o) {
		return true, false
	}
	o.rec.ReversalsApplied++
	return true, true
}

// mark records what happened to the answer of e.
func (l *ledger) mark(e *entry, f fate) {
	if e == nil || f == fateAnswer {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch f {
	case fateDrop:
		e.rec.Dropped++
	case fateDelay:
		e.rec.Delayed++
	case fateClose:
		e.rec.Closed++
	}
}

// balance returns the ledger and available balance of a PAN's account.
func (l *ledger) balance(pan string) (ledgerBalance, available int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.accounts[pan]
	if !ok {
		return 0, 0, false
	}
	return a.balance, a.available(), true
}

// additionalAmounts is field 54 of a balance inquiry's answer in the ISO 8583 additional-amounts form:
// per amount, account type (2), amount type (2: 01 ledger, 02 available), currency (3), C or D, and
// 12 digits.
func additionalAmounts(accountType, currency string, ledgerBalance, available int64) string {
	amount := func(typ string, v int64) string {
		sign := "C"
		if v < 0 {
			sign, v = "D", -v
		}
		return fmt.Sprintf("%s%s%s%s%012d", accountType, typ, currency, sign, v)
	}
	return amount("01", ledgerBalance) + amount("02", available)
}
