package ledger

import "strings"

// The chart of accounts (docs/ledger.md). An account is a name and a currency; names with a
// party carry it after a colon.
const (
	AccountFeeIncome      = "fee_income"      // income: merchant discount fees
	AccountSettlementBank = "settlement_bank" // asset: the acquirer's settlement account at its bank
	AccountSuspense       = "suspense"        // suspense: money the rules cannot place yet
	prefixIssuer          = "issuer_receivable:"
	prefixMerchant        = "merchant_payable:"
	prefixWallet          = "wallet_payable:"
)

// IssuerReceivable is what issuer owes us for its cardholders' purchases.
func IssuerReceivable(issuer string) string { return prefixIssuer + issuer }

// MerchantPayable is what we owe the merchant until its payout.
func MerchantPayable(merchant string) string { return prefixMerchant + merchant }

// WalletPayable is what we owe a wallet for the credit-line repayments (bill payments to a wallet
// biller, e.g. Huabei) its customers made at our terminals, until we settle with the wallet.
func WalletPayable(wallet string) string { return prefixWallet + wallet }

// accountKind is the type stored in account.kind.
func accountKind(name string) string {
	switch {
	case strings.HasPrefix(name, prefixIssuer), name == AccountSettlementBank:
		return "asset"
	case strings.HasPrefix(name, prefixMerchant), strings.HasPrefix(name, prefixWallet):
		return "liability"
	case name == AccountFeeIncome:
		return "income"
	default:
		return "suspense"
	}
}

// Posting is one line of an entry: a debit (Amount > 0) or credit (Amount < 0) of an account, in
// minor units of Currency.
type Posting struct {
	Account  string `json:"account"`
	Currency string `json:"currency"`
	Amount   int64  `json:"amount"`
}

// balanced says whether postings sum to zero in every currency.
func balanced(ps []Posting) bool {
	sums := map[string]int64{}
	for _, p := range ps {
		if p.Amount == 0 {
			return false
		}
		sums[p.Currency] += p.Amount
	}
	for _, s := range sums {
		if s != 0 {
			return false
		}
	}
	return true
}

func mirror(ps []Posting) []Posting {
	out := make([]Posting, len(ps))
	for i, p := range ps {
		out[i] = Posting{Account: p.Account, Currency: p.Currency, Amount: -p.Amount}
	}
	return out
}
