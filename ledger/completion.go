package ledger

// completionRule: completing a pre-authorisation posts the completed amount C ≤ hold H like a
// purchase of C (fee on C) and releases H − C. Refused when there is no open hold, when it has
// lapsed, or when C exceeds it.
//
//	Dr issuer_receivable:<issuer>    C
//	Cr merchant_payable:<merchant>   C − f
//	Cr fee_income                    f
func completionRule(r *rules, p *plan) {
	o := r.target(p)
	if o == nil {
		return
	}
	switch {
	case o.kind != PreAuth || o.hold == nil:
		p.refuse("original %s is a %s, not a pre-authorisation", o.key, o.kind)
		return
	case o.consumedBy != "":
		p.cancelled = true
		p.refuse("hold %s already closed by %s", o.key, o.consumedBy)
		return
	case p.b.At.After(o.hold.expiresAt):
		p.refuse("hold %s lapsed at %s", o.key, o.hold.expiresAt.Format("2006-01-02T15:04:05Z"))
		return
	case p.b.Amount > o.hold.amount:
		p.refuse("completion %d above the hold %d", p.b.Amount, o.hold.amount)
		return
	}
	m := r.merchant(o.merchant)
	p.fee = Fee(p.b.Amount, m.feeRule())
	p.consumes = o.key
	o.consumedBy = p.b.Key
	p.book(salePostings(o.issuer, o.merchant, o.currency, p.b.Amount, p.fee))
}
