package ledger

// chargebackRule: the issuer disputes a purchase and takes back C ≤ A − refunds − earlier
// chargebacks from the merchant. The fee is not returned.
//
//	Dr merchant_payable:<merchant>   C
//	Cr issuer_receivable:<issuer>    C
func chargebackRule(r *rules, p *plan) {
	o := r.target(p)
	if o == nil {
		return
	}
	switch {
	case o.kind != Purchase && o.kind != Completion && o.kind != BillPayment:
		p.refuse("cannot charge back a %s", o.kind)
		return
	case o.consumedBy != "":
		p.cancelled = true
		p.refuse("original %s was cancelled by %s", o.key, o.consumedBy)
		return
	}
	left := o.amount - o.refunded - o.chargedBack
	if p.b.Amount > left {
		p.refuse("chargeback %d exceeds what is left of the original (%d of %d)", p.b.Amount, left, o.amount)
		return
	}
	o.chargedBack += p.b.Amount
	p.book([]Posting{
		{MerchantPayable(o.merchant), o.currency, p.b.Amount},
		{IssuerReceivable(o.issuer), o.currency, -p.b.Amount},
	})
}
