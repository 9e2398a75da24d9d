package issuersim

import (
	"fmt"
	"sync"
	"time"

	"github.com/poswitch/poswitch/simulator/cards"
)

// account is one cardholder account of the simulated issuer.
type account struct {
	card cards.Card

	mu      sync.Mutex
	balance int64 // minor units of card.Currency
}

// maxRememberedTxns bounds the authorizations the simulator remembers for duplicate detection and
// reversals; the oldest are forgotten first.
const maxRememberedTxns = 1 << 20

// authorization is what the simulator remembers of an answered financial request.
type authorization struct {
	pan      string
	amount   int64
	code     string
	authCode string
	debited  bool // the balance was debited (approved purchase)
	reversed bool
}

// txnKey identifies a request the way field 90 of a reversal names it (STAN, transmission date and
// time, acquiring institution) plus the card acceptor terminal, so that terminals talking to the
// simulator directly, each with its own STAN sequence, do not collide.
type txnKey struct {
	stan, transmission, acquirer, terminal string
}

// ledger holds the accounts and the remembered authorizations of one simulator.
type ledger struct {
	accounts map[string]*account

	mu      sync.Mutex
	txns    map[txnKey]*authorization
	order   []txnKey // ring of keys in arrival order, for eviction
	next    int
	authSeq int // source of approval codes (field 38)
}

func newLedger(cs []cards.Card, issuer string) *ledger {
	l := &ledger{accounts: make(map[string]*account), txns: make(map[txnKey]*authorization)}
	for _, c := range cs {
		if c.NotOnFile || (issuer != "" && c.Issuer != issuer) {
			continue
		}
		l.accounts[c.PAN] = &account{card: c, balance: c.Balance}
	}
	return l
}

// decision is the outcome of an authorization request.
type decision struct {
	code       string
	noResponse bool // the magic amount that is never answered
}

// authorize decides a purchase (debit) or pre-authorization and applies it to the balance.
// expiry is the card's YYMM from the request (field 14 or track 2), "" when absent.
func (l *ledger) authorize(pan string, amount int64, currency, expiry string, debit bool, now time.Time) decision {
	acct, ok := l.accounts[pan]
	if !ok {
		return decision{code: cards.InvalidCardNumber}
	}
	c := acct.card
	if expiry == "" {
		expiry = c.Expiry
	}
	switch {
	case expiry < now.Format("0601") || c.Expiry < now.Format("0601"):
		return decision{code: cards.ExpiredCard}
	case c.Blocked:
		return decision{code: cards.DoNotHonour}
	case c.Restricted:
		return decision{code: cards.RestrictedCard}
	case currency != "" && currency != c.Currency:
		return decision{code: cards.NotPermitted}
	case amount == cards.NoResponseAmount:
		return decision{noResponse: true}
	case amount >= cards.MagicAmountBase && amount < cards.MagicAmountBase+100:
		return decision{code: fmt.Sprintf("%02d", amount-cards.MagicAmountBase)}
	case amount > c.Limit:
		return decision{code: cards.ExceedsWithdrawLimit}
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	if amount > acct.balance {
		return decision{code: cards.InsufficientFunds}
	}
	if debit {
		acct.balance -= amount
	}
	return decision{code: cards.Approved}
}

// credit returns amount to the account (reversal of a debit, or a refund).
func (l *ledger) credit(pan string, amount int64) bool {
	acct, ok := l.accounts[pan]
	if !ok {
		return false
	}
	acct.mu.Lock()
	acct.balance += amount
	acct.mu.Unlock()
	return true
}

// balance returns the current balance of a PAN's account.
func (l *ledger) balance(pan string) (int64, bool) {
	acct, ok := l.accounts[pan]
	if !ok {
		return 0, false
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	return acct.balance, true
}

// authorizeOnce decides a request unless one with the same key was decided before, in which case it
// returns the stored answer with dup set: a retransmission or repeat books nothing twice. The ledger
// lock is held throughout so two copies racing on different connections cannot both debit.
func (l *ledger) authorizeOnce(k txnKey, pan string, amount int64, currency, expiry string, debit bool, now time.Time) (a authorization, dup bool, noResponse bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.txns[k]; ok {
		return *old, true, false
	}
	d := l.authorize(pan, amount, currency, expiry, debit, now)
	if d.noResponse {
		return authorization{}, false, true
	}
	stored := &authorization{pan: pan, amount: amount, code: d.code}
	if d.code == cards.Approved {
		l.authSeq++
		stored.authCode = fmt.Sprintf("%06d", l.authSeq%1_000_000)
		stored.debited = debit
	}
	if len(l.order) < maxRememberedTxns {
		l.order = append(l.order, k)
	} else {
		delete(l.txns, l.order[l.next])
		l.order[l.next] = k
		l.next = (l.next + 1) % maxRememberedTxns
	}
	l.txns[k] = stored
	return *stored, false, false
}

// reverse cancels the authorization under k once: it reports whether money was restored.
func (l *ledger) reverse(k txnKey) bool {
	l.mu.Lock()
	a, ok := l.txns[k]
	if !ok || a.reversed || !a.debited {
		if ok {
			a.reversed = true
		}
		l.mu.Unlock()
		return false
	}
	a.reversed = true
	l.mu.Unlock()
	return l.credit(a.pan, a.amount)
}
