package ledger

// billPaymentRule: a bill payment or credit repayment (e.g. a Huabei repayment) at a biller. The
// cardholder's issuer owes us A and we owe the biller (a merchant in the ledger) A less its fee,
// which follows the biller's merchant settings (often 0 bp).
//
//	Dr issuer_receivable:<issuer>    A
//	Cr merchant_payable:<biller>     A − f
//	Cr fee_income                    f
func billPaymentRule(r *rules, p *plan) {
	m := r.merchant(p.b.Merchant)
	p.fee = Fee(p.b.Amount, m.feeRule())
	p.book(salePostings(p.b.Issuer, p.b.Merchant, p.b.Currency, p.b.Amount, p.fee))
}
