// Package cards is the test-card catalogue shared by issuer-sim and terminal-sim: which PAN, expiry or
// amount gives which outcome. docs/test-cards.md is its public description; keep the two in step.
// These are test cards: the PINs are test data, printed in the docs on purpose.
package cards

import (
	"fmt"
	"strings"

	currencies "github.com/poswitch/poswitch/ledger/currency"
)

// Response codes the catalogue produces (ISO 8583:1987 field 39).
const (
	Approved             = "00"
	DoNotHonour          = "05"
	InvalidTransaction   = "12"
	InvalidCardNumber    = "14"
	NoSuchIssuer         = "15"
	InsufficientFunds    = "51"
	ExpiredCard          = "54"
	NotPermitted         = "57" // transaction currency differs from the account's
	ExceedsWithdrawLimit = "61"
	RestrictedCard       = "62"
	WrongPIN             = "55" // PIN verification failed
	PINTriesExceeded     = "75" // too many wrong PINs in a row
	CryptoFailure        = "88" // a PIN block that cannot be deciphered, or a key failure
)

// Issuers of the catalogue.
const (
	BankA = "bank-a" // BINs 476173, 622609
	BankB = "bank-b" // BINs 541333, 625001
)

// Currencies of the catalogue's accounts (ISO 4217 numeric) and their exponents.
const (
	USD = "840"
	CNY = "156"
)

// Magic amounts: on a card whose outcome is Approved, an amount of 9,900.xx (990000-990099 minor
// units) is answered with response code xx by issuer-sim, and NoResponseAmount is never answered
// (for issuer-timeout tests).
const (
	MagicAmountBase  int64 = 990000
	NoResponseAmount int64 = 999999
)

// StandardAmountRange is the range of amounts (minor units, inclusive) for which every card's
// Outcome holds; terminal-sim draws its amounts from it.
var StandardAmountRange = [2]int64{100, 20000}

// Card is one test card and the account behind it.
type Card struct {
	PAN         string
	Expiry      string // YYMM
	ServiceCode string
	Issuer      string // "" for a BIN no issuer owns
	Currency    string // ISO 4217 numeric of the account
	Balance     int64  // minor units
	Limit       int64  // per-transaction limit in minor units
	PIN         string
	Outcome     string // response code a purchase within StandardAmountRange gets
	DecidedBy   string // "issuer" or "switch"
	Note        string

	// Chip (EMV) data, for cards whose service code says they have an ICC (HasChip). PSN is the PAN
	// sequence number (2 digits: field 23 and tag 5F34, and part of the ICC key derivation);
	// Contactless says the ICC also answers a tap. The ICC's keys come from its issuer's master key
	// (simulator/keyceremony) and its ATC is kept by terminal-sim, the card's holder.
	PSN         string
	Contactless bool

	// How the issuer decides; these produce Outcome.
	Blocked    bool // answered 05
	Restricted bool // answered 62
	NotOnFile  bool // issuer-sim has no account: answered 14
}

// Masked is the PAN with all but the first 6 and last 4 digits hidden.
func (c Card) Masked() string { return MaskPAN(c.PAN) }

// HasChip tells whether the service code's first digit says the card has an ICC (2: international
// interchange with IC, 6: national interchange with IC), the digit a magstripe reader checks before
// it accepts a swipe.
func (c Card) HasChip() bool {
	return len(c.ServiceCode) == 3 && (c.ServiceCode[0] == '2' || c.ServiceCode[0] == '6')
}

// Track2 is the card's track 2 equivalent data (PAN = expiry service code, discretionary "0000").
func (c Card) Track2() string { return c.PAN + "=" + c.Expiry + c.ServiceCode + "0000" }

// MaskPAN hides all but the first 6 and last 4 digits; anything too short to mask is hidden whole.
func MaskPAN(pan string) string {
	if len(pan) < 13 {
		return strings.Repeat("*", len(pan))
	}
	return pan[:6] + strings.Repeat("*", len(pan)-10) + pan[len(pan)-4:]
}

// LuhnValid reports whether pan is all digits with a correct Luhn check digit.
func LuhnValid(pan string) bool {
	if len(pan) < 2 {
		return false
	}
	sum := 0
	for i := range len(pan) {
		c := pan[len(pan)-1-i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

const (
	farExpiry    = "3112"
	pastExpiry   = "2001"
	bigBalance   = int64(100_000_000)       // 1,000,000.00
	loadBalance  = int64(1_000_000_000_000) // 10,000,000,000.00: never runs out under load
	normalLimit  = int64(500_000)           // 5,000.00 per transaction
	loadLimit    = int64(1_000_000_000)     // 10,000,000.00 per transaction
	smallBalance = int64(50)                // 0.50: below every standard amount
	smallLimit   = int64(50)                // 0.50
)

func approve(pan, issuer, currency, sc, pin, note string) Card {
	return withICC(Card{PAN: pan, Expiry: farExpiry, ServiceCode: sc, Issuer: issuer, Currency: currency,
		Balance: bigBalance, Limit: normalLimit, PIN: pin, Outcome: Approved, DecidedBy: "issuer", Note: note})
}

func load(pan, issuer, currency string) Card {
	return withICC(Card{PAN: pan, Expiry: farExpiry, ServiceCode: "201", Issuer: issuer, Currency: currency,
		Balance: loadBalance, Limit: loadLimit, PIN: "1234", Outcome: Approved, DecidedBy: "issuer",
		Note: "high balance, for load"})
}

// withICC personalises the chip of a card whose service code says it has one: dual-interface
// (contact and contactless), PAN sequence number 01 for the catalogue's cards.
func withICC(c Card) Card {
	if c.HasChip() {
		c.PSN, c.Contactless = "01", true
	}
	return c
}

func with(c Card, f func(*Card)) Card { f(&c); return c }

// catalogue is built once; Catalogue hands out copies.
var catalogue = []Card{
	// bank-a, Visa-like BIN 476173, USD.
	approve("4761730000000011", BankA, USD, "201", "1234", "chip card, approves"),
	approve("4761730000000029", BankA, USD, "101", "4321", "magstripe-only card, approves"),
	with(approve("4761730000000037", BankA, USD, "201", "1234", "balance 0.50"), func(c *Card) {
		c.Balance, c.Outcome = smallBalance, InsufficientFunds
	}),
	with(approve("4761730000000045", BankA, USD, "201", "1234", "expired January 2020"), func(c *Card) {
		c.Expiry, c.Outcome = pastExpiry, ExpiredCard
	}),
	with(approve("4761730000000052", BankA, USD, "201", "1234", "account blocked"), func(c *Card) {
		c.Blocked, c.Outcome = true, DoNotHonour
	}),
	with(approve("4761730000000060", BankA, USD, "201", "1234", "per-transaction limit 0.50"), func(c *Card) {
		c.Limit, c.Outcome = smallLimit, ExceedsWithdrawLimit
	}),
	with(approve("4761730000000078", BankA, USD, "206", "1234", "restricted card"), func(c *Card) {
		c.Restricted, c.Outcome = true, RestrictedCard
	}),
	with(approve("4761730000000086", BankA, USD, "201", "1234", "Luhn-valid, unknown to the issuer"), func(c *Card) {
		c.NotOnFile, c.Outcome = true, InvalidCardNumber
	}),
	with(approve("4761730000000012", BankA, USD, "201", "1234", "bad Luhn check digit"), func(c *Card) {
		c.NotOnFile, c.Outcome, c.DecidedBy = true, InvalidCardNumber, "switch"
	}),
	load("4761739000000012", BankA, USD),
	load("4761739000000020", BankA, USD),
	load("4761739000000038", BankA, USD),
	load("4761739000000046", BankA, USD),

	// bank-a, UnionPay-like BIN 622609, CNY.
	approve("6226090000000014", BankA, CNY, "201", "1234", "chip card, approves"),
	with(approve("6226090000000022", BankA, CNY, "201", "1234", "balance 0.50"), func(c *Card) {
		c.Balance, c.Outcome = smallBalance, InsufficientFunds
	}),
	with(approve("6226090000000030", BankA, CNY, "201", "1234", "expired January 2020"), func(c *Card) {
		c.Expiry, c.Outcome = pastExpiry, ExpiredCard
	}),
	load("6226099000000015", BankA, CNY),
	load("6226099000000023", BankA, CNY),

	// bank-b, Mastercard-like BIN 541333, USD.
	approve("5413330000000019", BankB, USD, "201", "1234", "chip card, approves"),
	with(approve("5413330000000027", BankB, USD, "201", "1234", "balance 0.50"), func(c *Card) {
		c.Balance, c.Outcome = smallBalance, InsufficientFunds
	}),
	with(approve("5413330000000035", BankB, USD, "201", "1234", "expired January 2020"), func(c *Card) {
		c.Expiry, c.Outcome = pastExpiry, ExpiredCard
	}),
	with(approve("5413330000000043", BankB, USD, "201", "1234", "account blocked"), func(c *Card) {
		c.Blocked, c.Outcome = true, DoNotHonour
	}),
	with(approve("5413330000000050", BankB, USD, "201", "1234", "per-transaction limit 0.50"), func(c *Card) {
		c.Limit, c.Outcome = smallLimit, ExceedsWithdrawLimit
	}),
	load("5413339000000010", BankB, USD),
	load("5413339000000028", BankB, USD),

	// bank-b, UnionPay-like BIN 625001, CNY.
	approve("6250010000000011", BankB, CNY, "201", "1234", "chip card, approves"),
	with(approve("6250010000000029", BankB, CNY, "201", "1234", "Luhn-valid, unknown to the issuer"), func(c *Card) {
		c.NotOnFile, c.Outcome = true, InvalidCardNumber
	}),
	load("6250019000000012", BankB, CNY),
	load("6250019000000020", BankB, CNY),

	// BIN 300000: no issuer owns it, so the switch cannot route it.
	{PAN: "3000000000000004", Expiry: farExpiry, ServiceCode: "201", Currency: USD, Balance: bigBalance,
		Limit: normalLimit, PIN: "1234", Outcome: NoSuchIssuer, DecidedBy: "switch", NotOnFile: true,
		Note: "BIN owned by no issuer: switch answers 15 (no such issuer)"},
}

// Catalogue returns a copy of every test card, in catalogue order.
func Catalogue() []Card { return append([]Card(nil), catalogue...) }

// Lookup returns the catalogue card with this PAN.
func Lookup(pan string) (Card, bool) {
	for _, c := range catalogue {
		if c.PAN == pan {
			return c, true
		}
	}
	return Card{}, false
}

// MustLookup is Lookup for tests and examples that name a catalogue PAN literally.
func MustLookup(pan string) Card {
	c, ok := Lookup(pan)
	if !ok {
		panic(fmt.Sprintf("cards: %s is not in the catalogue", MaskPAN(pan)))
	}
	return c
}

// Select returns the catalogue cards for which keep is true.
func Select(keep func(Card) bool) []Card {
	var out []Card
	for _, c := range catalogue {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// ByIssuer returns the cards of one issuer (including the ones it does not have on file).
func ByIssuer(issuer string) []Card { return Select(func(c Card) bool { return c.Issuer == issuer }) }

// ByOutcome returns the cards whose purchases get this response code.
func ByOutcome(code string) []Card { return Select(func(c Card) bool { return c.Outcome == code }) }

// Load returns the high-balance cards meant for load tests.
func Load() []Card { return Select(func(c Card) bool { return c.Balance == loadBalance }) }

// IssuerDecided returns the cards whose outcome the issuer decides (valid Luhn and a routable BIN),
// the ones a test of the direct path terminal-sim → issuer-sim can use.
func IssuerDecided() []Card { return Select(func(c Card) bool { return c.DecidedBy == "issuer" }) }

// Routes is the BIN ownership of the catalogue: BIN prefix → issuer. A switch configuration for the
// simulators routes these prefixes and leaves 300000 unrouted.
func Routes() map[string]string {
	return map[string]string{"476173": BankA, "622609": BankA, "541333": BankB, "625001": BankB}
}

// CurrencyExponent is the ISO 4217 minor-unit exponent of a numeric currency (JPY 0, CNY 2, KWD 3),
// from the ledger's currency table; 2 for a code the table does not know.
func CurrencyExponent(currency string) int {
	if c, ok := currencies.ByNumeric(currency); ok {
		return c.Exponent
	}
	return 2
}

// CurrencyAlpha is the ISO 4217 alphabetic code for display.
func CurrencyAlpha(currency string) string {
	if c, ok := currencies.ByNumeric(currency); ok {
		return c.Alpha
	}
	return currency
}

// ResponseText is a short meaning of a response code, for receipts and docs.
func ResponseText(code string) string {
	switch code {
	case "00":
		return "approved"
	case "05":
		return "do not honour"
	case "12":
		return "invalid transaction"
	case "14":
		return "invalid card number"
	case "15":
		return "no such issuer"
	case "30":
		return "format error"
	case "51":
		return "insufficient funds"
	case "54":
		return "expired card"
	case "55":
		return "incorrect PIN"
	case "57":
		return "not permitted to cardholder"
	case "61":
		return "exceeds withdrawal limit"
	case "62":
		return "restricted card"
	case "65":
		return "exceeds withdrawal frequency"
	case "88":
		return "cryptographic failure"
	case "91":
		return "issuer unavailable"
	case "92":
		return "unable to route"
	case "94":
		return "duplicate transmission"
	case "96":
		return "system malfunction"
	default:
		return "code " + code
	}
}

// Selection names a set of cards for command lines: "issuer" (every card the issuer decides, the
// default), "load" (high-balance cards), "all", an issuer ID ("bank-a"), an outcome ("51"), or a
// comma-separated list of catalogue PANs.
func Selection(name string) ([]Card, error) {
	switch name {
	case "", "issuer":
		return IssuerDecided(), nil
	case "load":
		return Load(), nil
	case "all":
		return Catalogue(), nil
	case BankA, BankB:
		return Select(func(c Card) bool { return c.Issuer == name && c.DecidedBy == "issuer" }), nil
	}
	if byCode := ByOutcome(name); len(byCode) > 0 {
		return byCode, nil
	}
	var out []Card
	for _, pan := range strings.Split(name, ",") {
		c, ok := Lookup(strings.TrimSpace(pan))
		if !ok {
			return nil, fmt.Errorf("card selection %q: not issuer, load, all, %s, %s, a response code or catalogue PANs",
				name, BankA, BankB)
		}
		out = append(out, c)
	}
	return out, nil
}
