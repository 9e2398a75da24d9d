package ledger

// holdExpiryRule: a lapsed pre-authorisation hold is released. No postings (the hold was never
// money); the entry closes the hold so that a late completion is refused.
func holdExpiryRule(r *rules, p *plan) {
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
		p.noop("hold %s already closed by %s", o.key, o.consumedBy)
		return
	}
	p.amount = o.hold.amount
	p.consumes = o.key
	o.consumedBy = p.b.Key
	p.book(nil)
}
