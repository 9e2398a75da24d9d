package cards

// Currencies beyond the catalogue's USD and CNY accounts, for multi-currency tests: amounts are in
// each currency's minor units (ISO 4217 exponent: JPY 0, KWD 3).
const (
	JPY = "392"
	KWD = "414"
)

// Accounts in JPY and KWD, appended to the catalogue (cards.go keeps the USD and CNY ones). Their
// BINs are the issuers' UnionPay-like ones; the balance and limit are in the account's minor units.
func init() {
	catalogue = append(catalogue,
		// bank-a, BIN 622609, JPY: ¥100,000,000 balance, ¥500,000 per transaction.
		approve("6226093000000018", BankA, JPY, "201", "1234", "chip card, JPY account, approves"),
		// bank-b, BIN 625001, KWD: KWD 100,000.000 balance, KWD 500.000 per transaction.
		approve("6250013000000015", BankB, KWD, "201", "1234", "chip card, KWD account, approves"),
	)
}
