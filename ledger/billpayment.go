package ledger

// billPaymentRule: a bill payment or credit repayment at a biller. The cardholder's issuer owes us
// A and we owe the biller A less its fee. A biller that is a merchant in the ledger follows its
// merchant settings (often 0 bp):
//
//	Dr issuer_receivable:<issuer>    A
//	Cr merchant_payable:<biller>     A − f
//	Cr fee_income                    f
//
// A wallet biller (Booking.Payee, e.g. a Huabei repayment at a POS) is owed through its own
// payable, with the biller's fee f = round_half_up(A × PayeeFeeBP / 10000); the acceptor only
// collects, so no merchant payable moves and cut-over pays the acceptor nothing for it:
//
//	Dr issuer_receivable:<issuer>    A
//	Cr wallet_payable:<wallet>       A − f
//	Cr fee_income                    f
func billPaymentRule(r *rules, p *plan) {
	if p.b.Payee != "" {
		p.fee = Fee(p.b.Amount, FeeRule{BP: p.b.PayeeFeeBP, Rounding: HalfUp})
		ps := make([]Posting, 0, 3)
		ps = append(ps, Posting{IssuerReceivable(p.b.Issuer), p.b.Currency, p.b.Amount})
		if p.b.Amount-p.fee != 0 {
			ps = append(ps, Posting{WalletPayable(p.b.Payee), p.b.Currency, -(p.b.Amount - p.fee)})
		}
		if p.fee != 0 {
			ps = append(ps, Posting{AccountFeeIncome, p.b.Currency, -p.fee})
		}
		p.book(ps)
		return
	}
	m := r.merchant(p.b.Merchant)
	p.fee = Fee(p.b.Amount, m.feeRule())
	p.book(salePostings(p.b.Issuer, p.b.Merchant, p.b.Currency, p.b.Amount, p.fee))
}
