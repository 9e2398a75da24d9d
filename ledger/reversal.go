package ledger

// reversalRule: a reversal books the exact mirror of the entry it cancels (every posting with its
// sign flipped), so the pair nets to zero on every account. A second reversal of the same
// transaction, or a reversal of a transaction never seen, books nothing and says so. Reversing a
// pre-authorisation releases its hold. Reversing a refund or chargeback makes its amount
// refundable again.
func reversalRule(r *rules, p *plan) { cancel(r, p) }

// cancel is shared by reversal and void.
func cancel(r *rules, p *plan) {
	o := r.target(p)
	if o == nil {
		return
	}
	switch o.kind {
	case Reversal, Void, HoldExpiry, Payout, IssuerSettlement:
		p.refuse("a %s cannot be cancelled; book a new transaction instead", o.kind)
		return
	}
	if o.consumedBy != "" {
		p.cancelled = true
		p.noop("%s already closed by %s: nothing to %s", o.key, o.consumedBy, p.b.Kind)
		return
	}
	p.amount, p.fee = o.amount, o.fee
	p.consumes = o.key
	o.consumedBy = p.b.Key
	if parent := r.originals[o.originalKey]; parent != nil {
		switch o.kind {
		case Refund:
			parent.refunded -= o.amount
			parent.feeReturned -= o.fee
		case Chargeback:
			parent.chargedBack -= o.amount
		}
	}
	if o.kind == PreAuth {
		if o.hold != nil {
			p.amount = o.hold.amount
		}
		p.book(nil)
		return
	}
	p.book(mirror(o.postings))
}
