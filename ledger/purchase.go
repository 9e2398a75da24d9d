package ledger

// purchaseRule: a purchase of A with fee f = Fee(A, merchant's rule), 60 bp half-up by default.
//
//	Dr issuer_receivable:<issuer>    A
//	Cr merchant_payable:<merchant>   A − f
//	Cr fee_income                    f
func purchaseRule(r *rules, p *plan) {
	m := r.merchant(p.b.Merchant)
	p.fee = Fee(p.b.Amount, m.feeRule())
	p.book(salePostings(p.b.Issuer, p.b.Merchant, p.b.Currency, p.b.Amount, p.fee))
}
