package ledger

import "time"

// preAuthRule: a pre-authorisation is a pending hold, not money: no postings, a hold row. The hold
// is closed by exactly one completion, void, reversal or hold expiry.
func preAuthRule(r *rules, p *plan) {
	exp := p.b.HoldExpiresAt
	if exp.IsZero() {
		exp = p.b.At.Add(r.holdTTL)
	}
	p.newHold = &hold{amount: p.b.Amount, expiresAt: exp.UTC().Truncate(time.Microsecond)}
	p.book(nil)
}
