package ledger

// voidRule: a void (the merchant cancels a transaction, usually before its batch closes) books
// the exact mirror of the original, as a reversal does; voiding a pre-authorisation releases its
// hold. A void of something already cancelled, or unknown, books nothing.
func voidRule(r *rules, p *plan) { cancel(r, p) }
