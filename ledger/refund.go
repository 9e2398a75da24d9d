package ledger

// refundRule: a refund of R against an original purchase, completion or bill payment of A books
// the reverse direction. The refunds of one original never exceed A minus its earlier refunds and
// chargebacks. If the merchant's settings say refunds return the fee, the returned fee is the
// original fee's share of R (half-up), and the last refund returns exactly what is left of it.
//
//	Dr merchant_payable:<merchant>   R − fr
//	Dr fee_income                    fr        (0 unless refunds return the fee)
//	Cr issuer_receivable:<issuer>    R
func refundRule(r *rules, p *plan) {
	o := r.target(p)
	if o == nil {
		return
	}
	switch {
	case o.kind != Purchase && o.kind != Completion && o.kind != BillPayment:
		p.refuse("cannot refund a %s", o.kind)
		return
	case o.merchant == "":
		// A wallet repayment owes no merchant: it is reversed or voided, never refunded.
		p.refuse("a %s without a merchant (a wallet repayment) is reversed or voided, not refunded", o.kind)
		return
	case o.consumedBy != "":
		p.cancelled = true
		p.refuse("original %s was cancelled by %s", o.key, o.consumedBy)
		return
	}
	left := o.amount - o.refunded - o.chargedBack
	if p.b.Amount > left {
		p.refuse("refund %d exceeds what is left to refund (%d of %d)", p.b.Amount, left, o.amount)
		return
	}
	var fr int64
	if r.merchant(o.merchant).RefundsReturnFee {
		fr = proportionalFee(o.fee, p.b.Amount, o.amount)
		if p.b.Amount == left || fr > o.fee-o.feeReturned {
			fr = o.fee - o.feeReturned
		}
	}
	o.refunded += p.b.Amount
	o.feeReturned += fr
	p.fee = fr
	ps := make([]Posting, 0, 3)
	if p.b.Amount-fr != 0 {
		ps = append(ps, Posting{MerchantPayable(o.merchant), o.currency, p.b.Amount - fr})
	}
	if fr != 0 {
		ps = append(ps, Posting{AccountFeeIncome, o.currency, fr})
	}
	ps = append(ps, Posting{IssuerReceivable(o.issuer), o.currency, -p.b.Amount})
	p.book(ps)
}
