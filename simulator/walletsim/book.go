package walletsim

import (
	"fmt"
	"sync"
	"time"

	"github.com/poswitch/poswitch/simulator/recall"
)

// keyClass separates the namespaces of remembered identities.
type keyClass byte

const (
	classLink   keyClass = 'L' // a request by its own link identity (fields 11, 7, 32, 41): what field 90 names
	classAdvice keyClass = 'A' // an advice by what its field 90 names, the same on every repeat
	classOrder  keyClass = 'O' // an order payment by its wallet transaction ID
)

// txnKey identifies a message the way field 90 names an original, plus the terminal (field 41).
type txnKey struct {
	class                                  keyClass
	stan, transmission, acquirer, terminal string
}

// Kinds of entry.
const (
	kindPayment   = "payment"   // a QR payment: balance or credit line debited
	kindRefund    = "refund"    // money back to the funding source of a payment
	kindVoid      = "void"      // a payment cancelled outright
	kindRepayment = "repayment" // credit line repaid (bill payment at a POS)
	kindOrder     = "order"     // a merchant-presented QR order paid (PayOrder)
)

// Record is what the wallet remembers of one request, advice or order payment, for tests. It holds
// the masked payment code only.
type Record struct {
	Kind        string // payment, refund, void, repayment, order
	MTI         string // as first received ("" for an order payment)
	Code        string // masked payment code ("" when none)
	Customer    string
	Amount      int64
	Currency    string
	Funding     string // BALANCE or HUABEI ("" for a repayment)
	Instalments int
	Response    string
	AuthCode    string
	Applied     bool  // moved money
	Cancelled   bool  // reversed or voided afterwards
	Refunded    int64 // refunds of a payment not since reversed
	Copies      int   // messages with this identity (repeats answered from memory)
}

// entry is one remembered request; guarded by book.mu.
type entry struct {
	rec  Record
	keys []txnKey
	// dBalance and dOwed are what the entry did to its customer's account; a reversal undoes them.
	dBalance, dOwed int64
	orig            *entry // a refund's or void's payment
	rrn             string
	f63             string
}

// account is one customer's state; guarded by book.mu.
type account struct{ c Customer }

type code struct {
	customer string
	expires  time.Time
	used     bool
}

// book holds one wallet's accounts, codes and remembered requests under one mutex: decisions are
// microseconds, and one lock makes "a repeat racing its original books once" obvious.
type book struct {
	wallet   string
	mu       sync.Mutex
	accounts map[string]*account
	codes    map[string]*code
	maxCodes int
	memory   *recall.Memory[txnKey, *entry] // remembered requests and advices
	authSeq  int
	rrnSeq   int
}

func newBook(wallet string, cs []Customer, maxCodes, maxRecords int) (*book, error) {
	b := &book{wallet: wallet, accounts: map[string]*account{}, codes: map[string]*code{}, maxCodes: maxCodes,
		memory: recall.New(maxRecords, func(e *entry) []txnKey { return e.keys })}
	for _, c := range cs {
		switch {
		case c.ID == "" || !digits(c.ID) || len(c.ID) > 19:
			return nil, fmt.Errorf("wallet-sim: customer ID %q must be 1 to 19 digits", c.ID)
		case b.accounts[c.ID] != nil:
			return nil, fmt.Errorf("wallet-sim: customer %s twice", c.ID)
		case c.Balance < 0 || c.CreditLimit < 0 || c.Owed < 0 || c.Owed > c.CreditLimit:
			return nil, fmt.Errorf("wallet-sim: customer %s: balance, limit and owed must be >= 0 and owed <= limit", c.ID)
		}
		if c.Currency == "" {
			c.Currency = "156"
		}
		if c.Funding == "" {
			c.Funding = FundingBalance
		}
		if c.Funding != FundingBalance && c.Funding != FundingHuabei {
			return nil, fmt.Errorf("wallet-sim: customer %s: funding %q is neither %s nor %s", c.ID, c.Funding, FundingBalance, FundingHuabei)
		}
		b.accounts[c.ID] = &account{c: c}
	}
	return b, nil
}

// issue makes a one-time code for a customer, valid until now + ttl.
func (b *book) issue(customer string, now time.Time, ttl time.Duration) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.accounts[customer] == nil {
		return "", fmt.Errorf("wallet-sim: no customer %q", customer)
	}
	if len(b.codes) >= b.maxCodes {
		for c, v := range b.codes {
			if now.After(v.expires.Add(codeRetention)) {
				delete(b.codes, c)
			}
		}
		if len(b.codes) >= b.maxCodes {
			return "", fmt.Errorf("wallet-sim: %d payment codes live (MaxCodes)", b.maxCodes)
		}
	}
	for range 8 {
		c, err := newCode(codeFormats[b.wallet])
		if err != nil {
			return "", fmt.Errorf("wallet-sim: drawing a payment code: %w", err)
		}
		if _, taken := b.codes[c]; !taken {
			b.codes[c] = &code{customer: customer, expires: now.Add(ttl)}
			return c, nil
		}
	}
	return "", fmt.Errorf("wallet-sim: no free payment code after 8 draws")
}

// apply moves money on a customer's account and records it on the entry.
func (b *book) apply(e *entry, a *account, dBalance, dOwed int64) {
	a.c.Balance += dBalance
	a.c.Owed += dOwed
	e.dBalance, e.dOwed = dBalance, dOwed
	e.rec.Applied = true
}

// giveBack returns amount to a funding source: to the credit line as far as anything is owed
// (the rest to the balance), or to the balance.
func giveBack(a *account, funding string, amount int64) (dBalance, dOwed int64) {
	if funding == FundingHuabei {
		toOwed := min(amount, a.c.Owed)
		return amount - toOwed, -toOwed
	}
	return amount, 0
}

// cancel undoes an entry once; it reports whether money moved back.
func (b *book) cancel(e *entry) bool {
	if e.rec.Cancelled || !e.rec.Applied {
		return false
	}
	e.rec.Cancelled = true
	a := b.accounts[e.rec.Customer]
	a.c.Balance -= e.dBalance
	a.c.Owed -= e.dOwed
	if e.rec.Kind == kindRefund && e.orig != nil {
		e.orig.rec.Refunded -= e.rec.Amount
	}
	if e.rec.Kind == kindVoid && e.orig != nil {
		// Reversing a void puts the payment back as it was.
		o := e.orig
		o.rec.Cancelled = false
		oa := b.accounts[o.rec.Customer]
		oa.c.Balance += o.dBalance
		oa.c.Owed += o.dOwed
	}
	return true
}

func (b *book) approve(e *entry) {
	b.authSeq++
	e.rec.Response = rcApproved
	e.rec.AuthCode = fmt.Sprintf("%06d", b.authSeq%1_000_000)
	e.f63 = fmt.Sprintf("%s|%s|%02d", b.wallet, e.rec.Funding, e.rec.Instalments)
}

func (b *book) newEntry(kind string, r *request) *entry {
	e := &entry{rec: Record{Kind: kind, MTI: r.mti, Amount: r.amount, Currency: r.currency, Copies: 1,
		Instalments: r.instalments}}
	if r.rrn == "" {
		b.rrnSeq++
		e.rrn = fmt.Sprintf("%012d", b.rrnSeq%1_000_000_000_000)
	}
	return e
}

// seen returns the stored answer of an identity answered before, counting the copy.
func (b *book) seen(k txnKey) (*entry, bool) {
	e, ok := b.memory.Get(k)
	if ok {
		e.rec.Copies++
	}
	return e, ok
}

// pay decides a QR payment (0200 purchase with a payment code in field 2).
func (b *book) pay(r *request, now time.Time) (*entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.seen(r.own); ok {
		return e, true
	}
	e := b.newEntry(kindPayment, r)
	e.keys = []txnKey{r.own}
	e.rec.Code = maskCode(r.pan)
	defer b.memory.Remember(e)
	c, ok := b.codes[r.pan]
	switch {
	case !ok || c.used:
		e.rec.Response = rcInvalidCode
		return e, false
	case !now.Before(c.expires):
		e.rec.Response = rcExpiredCode
		return e, false
	}
	a := b.accounts[c.customer]
	e.rec.Customer = a.c.ID
	funding := a.c.Funding
	if r.instalments > 0 {
		funding = FundingHuabei
	}
	e.rec.Funding = funding
	switch {
	case r.currency != a.c.Currency:
		e.rec.Response = rcNotPermitted
	case r.instalments != 0 && r.instalments != 3 && r.instalments != 6 && r.instalments != 12:
		e.rec.Response = rcInvalidTxn
	case funding == FundingHuabei && a.c.CreditLimit == 0:
		e.rec.Response = rcNotPermitted
	case funding == FundingHuabei && a.c.CreditLimit-a.c.Owed < r.amount:
		e.rec.Response = rcInsufficientFunds
	case funding == FundingBalance && a.c.Balance < r.amount:
		e.rec.Response = rcInsufficientFunds
	case funding == FundingHuabei:
		b.apply(e, a, 0, r.amount)
	default:
		b.apply(e, a, -r.amount, 0)
	}
	if e.rec.Response != "" {
		return e, false
	}
	c.used = true
	b.approve(e)
	return e, false
}

// refund gives part or all of a payment back to its funding source (0200 processing code 20, no
// field 2, field 90 the payment as the link sent it). A void (processing code 02) cancels it.
func (b *book) refund(r *request, void bool) (*entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.seen(r.own); ok {
		return e, true
	}
	kind := kindRefund
	if void {
		kind = kindVoid
	}
	e := b.newEntry(kind, r)
	e.keys = []txnKey{r.own}
	defer b.memory.Remember(e)
	if !r.hasOrig {
		e.rec.Response = rcFormatError
		return e, false
	}
	o, ok := b.memory.Get(r.orig)
	if !ok {
		e.rec.Response = rcNoRecord
		return e, false
	}
	e.orig = o
	e.rec.Customer, e.rec.Funding, e.rec.Instalments, e.rec.Code = o.rec.Customer, o.rec.Funding, o.rec.Instalments, o.rec.Code
	switch {
	case (o.rec.Kind != kindPayment && o.rec.Kind != kindOrder) || !o.rec.Applied || o.rec.Cancelled:
		e.rec.Response = rcInvalidTxn
		return e, false
	case r.currency != "" && r.currency != o.rec.Currency:
		e.rec.Response = rcNotPermitted
		return e, false
	case void:
		if o.rec.Refunded > 0 {
			e.rec.Response = rcInvalidTxn // a partly refunded payment is refunded, not voided
			return e, false
		}
		e.rec.Amount = o.rec.Amount
		b.cancel(o)
		o.rec.Cancelled = true
		e.rec.Applied = true
	default:
		if r.amount <= 0 || r.amount > o.rec.Amount-o.rec.Refunded {
			e.rec.Response = rcInvalidAmount
			return e, false
		}
		a := b.accounts[o.rec.Customer]
		dBal, dOwed := giveBack(a, o.rec.Funding, r.amount)
		b.apply(e, a, dBal, dOwed)
		o.rec.Refunded += r.amount
	}
	b.approve(e)
	return e, false
}

// repay applies a credit-line repayment once per identity: an advice (0220/0221) by what its field
// 90 names, a request (0200) by its own identity. The customer is field 2, else field 48's account.
// What is paid beyond what is owed goes to the balance.
func (b *book) repay(r *request, key txnKey) (*entry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.seen(key); ok {
		return e, true
	}
	e := b.newEntry(kindRepayment, r)
	e.keys = []txnKey{key, r.own}
	defer b.memory.Remember(e)
	a := b.accounts[r.account]
	switch {
	case a == nil:
		e.rec.Response = rcInvalidCode
		return e, false
	case r.currency != a.c.Currency:
		e.rec.Response = rcNotPermitted
		return e, false
	case r.amount <= 0:
		e.rec.Response = rcInvalidAmount
		return e, false
	}
	e.rec.Customer, e.rec.Funding = a.c.ID, FundingHuabei
	dBal, dOwed := giveBack(a, FundingHuabei, r.amount)
	b.apply(e, a, dBal, dOwed)
	b.approve(e)
	return e, false
}

// reverse cancels what field 90 names, once; known is false for an original never seen.
func (b *book) reverse(orig txnKey) (known, restored bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.memory.Get(orig)
	if !ok {
		for _, class := range []keyClass{classAdvice} {
			k := orig
			k.class = class
			if o, ok = b.memory.Get(k); ok {
				break
			}
		}
	}
	if !ok {
		if orig.class == classAdvice {
			// A reversal overtook the advice it names (the advice's first attempt went unanswered):
			// remember the repayment as cancelled, so the advice, when it comes, moves nothing.
			e := &entry{rec: Record{Kind: kindRepayment, Response: rcApproved, Cancelled: true, Copies: 0}, keys: []txnKey{orig}}
			b.memory.Remember(e)
		}
		return false, false
	}
	return true, b.cancel(o)
}

// reserve takes an order's amount from a customer's funding source (PayOrder) before the acquirer
// hears of it; release gives it back if the acquirer does not book it.
func (b *book) reserve(customer, funding, currency, walletTxnID string, amount int64, instalments int) (*entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.accounts[customer]
	switch {
	case a == nil:
		return nil, fmt.Errorf("wallet-sim: no customer %q", customer)
	case currency != a.c.Currency:
		return nil, fmt.Errorf("wallet-sim: order in %s, customer %s holds %s", currency, customer, a.c.Currency)
	case instalments != 0 && instalments != 3 && instalments != 6 && instalments != 12:
		return nil, fmt.Errorf("wallet-sim: %d instalments: 3, 6 or 12 allowed", instalments)
	}
	if funding == "" {
		funding = a.c.Funding
	}
	if instalments > 0 {
		funding = FundingHuabei
	}
	e := &entry{rec: Record{Kind: kindOrder, Customer: customer, Amount: amount, Currency: currency, Funding: funding,
		Instalments: instalments, Copies: 1}, keys: []txnKey{{class: classOrder, stan: walletTxnID}}}
	switch {
	case funding != FundingBalance && funding != FundingHuabei:
		return nil, fmt.Errorf("wallet-sim: funding %q is neither %s nor %s", funding, FundingBalance, FundingHuabei)
	case funding == FundingHuabei && a.c.CreditLimit == 0:
		return nil, fmt.Errorf("wallet-sim: customer %s has no credit line", customer)
	case funding == FundingHuabei && a.c.CreditLimit-a.c.Owed < amount:
		return nil, fmt.Errorf("wallet-sim: customer %s: credit line too small for %d", customer, amount)
	case funding == FundingBalance && a.c.Balance < amount:
		return nil, fmt.Errorf("wallet-sim: customer %s: balance too small for %d", customer, amount)
	case funding == FundingHuabei:
		b.apply(e, a, 0, amount)
	default:
		b.apply(e, a, -amount, 0)
	}
	b.memory.Remember(e)
	return e, nil
}

// settle records how the acquirer answered an order payment: captured keeps the money taken,
// otherwise it goes back. A captured payment is also remembered under the issuer trace the acquirer
// gave it (trace.stan set), as if an 0200 with that identity had come over the link, so a refund,
// void or reversal naming it in field 90 finds it.
func (b *book) settle(e *entry, captured bool, code, authCode string, trace txnKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e.rec.Response, e.rec.AuthCode = code, authCode
	if !captured {
		b.cancel(e)
		return
	}
	if trace.stan != "" {
		trace.class = classLink
		e.keys = append(e.keys, trace)
		b.memory.Index(trace, e)
	}
}

func (b *book) customer(id string) (Customer, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.accounts[id]
	if !ok {
		return Customer{}, false
	}
	return a.c, true
}

func (b *book) records() []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Record, 0, b.memory.Len())
	for e := range b.memory.All() {
		out = append(out, e.rec)
	}
	return out
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
