package ledger

// voidRule: a void (the merchant cancels a transaction before its settlement cycle is cut over)
// books the exact mirror of the original, as a reversal does; voiding a pre-authorisation releases
// its hold. A void of something already cancelled, or unknown, books nothing. Once the original's
// cycle was cut over its money has been settled: the void is refused, and the merchant refunds it
// instead (the switch answers 12 before this; this rule is the second guard).
func voidRule(r *rules, p *plan) {
	if o := r.originals[p.b.OriginalKey]; o != nil && o.status == StatusBooked && o.consumedBy == "" && o.cycleClosed &&
		o.kind != PreAuth {
		p.refuse("original %s was settled at a cut-over: refund it instead of voiding", o.key)
		return
	}
	cancel(r, p)
}
