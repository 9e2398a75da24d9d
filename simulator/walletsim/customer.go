package walletsim

import (
	"crypto/rand"
	"fmt"
	"math/big"
)

// Customer is one wallet account: a stored balance and optionally a Huabei-style credit line.
type Customer struct {
	// ID is the customer's account at the wallet, digits only: the account a credit-line repayment
	// names (field 48 "HUABEI|<ID>" at the terminal, field 2 of the repayment advice to the wallet).
	ID          string
	Currency    string // ISO 4217 numeric; "" is 156 (CNY)
	Balance     int64  // stored balance, minor units
	CreditLimit int64  // credit line; 0: the customer has none
	Owed        int64  // drawn on the credit line and not yet repaid
	// Funding is what pays when the terminal asks for no instalments: FundingBalance (default) or
	// FundingHuabei. Instalments (field 63) always draw on the credit line.
	Funding string
}

// DefaultCustomers are the accounts a wallet starts with when Config.Customers is nil (documented in
// docs/simulators.md): per wallet, a balance payer with a credit line, a Huabei-first payer who
// owes some, and a customer with no credit line and little money.
func DefaultCustomers(wallet string) []Customer {
	prefix := map[string]string{Alipay: "2088", WeChat: "1690", UnionPay: "3100"}[wallet]
	return []Customer{
		{ID: prefix + "000000000001", Balance: 5_000_000, CreditLimit: 2_000_000, Owed: 0, Funding: FundingBalance},
		{ID: prefix + "000000000002", Balance: 100_000, CreditLimit: 5_000_000, Owed: 300_000, Funding: FundingHuabei},
		{ID: prefix + "000000000003", Balance: 5_000, Funding: FundingBalance},
	}
}

// codeFormat is how a wallet's payment codes look: a two-digit lead in [low, high] and length digits.
type codeFormat struct {
	low, high int
	length    int
}

var codeFormats = map[string]codeFormat{
	Alipay:   {low: 25, high: 30, length: 18},
	WeChat:   {low: 10, high: 15, length: 18},
	UnionPay: {low: 62, high: 62, length: 19},
}

// newCode draws a payment code of the wallet's format from crypto/rand: a code is a bearer token for
// the customer's money for its validity, so it must not be guessable from the ones before.
func newCode(f codeFormat) (string, error) {
	lead, err := rand.Int(rand.Reader, big.NewInt(int64(f.high-f.low+1)))
	if err != nil {
		return "", err
	}
	rest := f.length - 2
	n, err := rand.Int(rand.Reader, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(rest)), nil))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%02d%0*s", f.low+int(lead.Int64()), rest, n.String()), nil
}

// maskCode keeps the first 6 and last 4 digits of a payment code, like a PAN.
func maskCode(c string) string {
	if len(c) < 13 {
		return "****"
	}
	b := []byte(c)
	for i := 6; i < len(b)-4; i++ {
		b[i] = '*'
	}
	return string(b)
}
