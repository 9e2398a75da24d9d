package terminalsim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/ledger/currency"
	"github.com/poswitch/poswitch/simulator/cards"
)

// Receipt is the slip a terminal prints for one transaction. It never holds a clear PAN: Card is the
// card number (or a wallet's payment code) masked to its first 6 and last 4 digits.
type Receipt struct {
	MerchantName, MerchantID, TerminalID string
	Type                                 string // SALE, PRE-AUTH, REFUND, VOID, BALANCE, BILL PAYMENT, ...
	Card                                 string // masked PAN ("622202******1234"); for a wallet payment the masked code
	Wallet                               string // ALIPAY, WECHAT, UNIONPAY ("" for a card)
	Funding                              string // BALANCE, HUABEI, ... ("" for a card)
	Instalments                          int
	EntryMode                            string // CHIP, CONTACTLESS, SWIPE, FALLBACK, QR, MANUAL (from field 22)
	Amount                               int64  // minor units of Currency
	Currency                             string // alphabetic (CNY); the amount is printed with its exponent
	AuthCode, RRN, STAN, ResponseCode    string
	Approved                             bool
	NoSignatureRequired                  bool // PIN given, contactless within the no-CVM limit, or a wallet/QR payment
	SignatureRequired                    bool // approved and none of the above: the terminal uploads an e-signature

	exponent int
}

// DefaultNoCVMLimits are the contactless no-CVM limits a terminal applies when it prints a receipt:
// ISO 4217 numeric currency → minor units (CNY 1,000.00), as the switch's channels.no_cvm_limits
// default. Contactless amounts up to and including the limit need no PIN and no signature.
var DefaultNoCVMLimits = map[string]int64{"156": 100000}

// Entry mode names of a receipt, by the first two digits of field 22.
var entryModeNames = map[string]string{
	"01": "MANUAL", "02": "SWIPE", "03": "QR", "05": "CHIP", "07": "CONTACTLESS", "80": "FALLBACK",
	"90": "SWIPE", "91": "CONTACTLESS",
}

// NewReceipt is the receipt of the request req that terminal t sent and the answer resp it got
// (resp nil: no answer, printed as not approved). No-CVM limits are DefaultNoCVMLimits.
func NewReceipt(t Terminal, req, resp *iso8583.Message) Receipt {
	return NewReceiptWithLimits(t, req, resp, DefaultNoCVMLimits)
}

// NewReceiptWithLimits is NewReceipt with the terminal's own contactless no-CVM limits (ISO 4217
// numeric currency → minor units; a currency without a limit needs a CVM for every amount).
func NewReceiptWithLimits(t Terminal, req, resp *iso8583.Message, noCVMLimits map[string]int64) Receipt {
	mti, _ := req.GetMTI()
	proc := get(req, 3)
	entry := get(req, 22)
	r := Receipt{
		MerchantName: merchantName(t, req),
		MerchantID:   strings.TrimSpace(firstOf(t.MID, get(req, 42))),
		TerminalID:   strings.TrimSpace(firstOf(t.TID, get(req, 41))),
		Type:         receiptType(mti, proc, get(req, 90) != ""),
		Card:         maskedCard(req),
		Amount:       amountOf(req),
		STAN:         get(req, 11),
		AuthCode:     strings.TrimSpace(get(resp, 38)),
		RRN:          strings.TrimSpace(get(resp, 37)),
		ResponseCode: get(resp, 39),
	}
	if len(entry) >= 2 {
		r.EntryMode = entryModeNames[entry[:2]]
	}
	numeric := firstOf(get(resp, 49), get(req, 49))
	r.Currency, r.exponent = numeric, cards.CurrencyExponent(numeric)
	if c, ok := currency.ByNumeric(numeric); ok {
		r.Currency, r.exponent = c.Alpha, c.Exponent
	}
	if f63 := get(resp, 63); f63 != "" {
		parts := strings.SplitN(f63, "|", 3)
		if len(parts) == 3 {
			r.Wallet, r.Funding = strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
			r.Instalments, _ = strconv.Atoi(parts[2])
		}
	}
	r.Approved = r.ResponseCode == "00"
	if !movesCustomerMoney(r.Type) {
		return r
	}
	order := get(resp, 48) != "" && r.Type == "QR ORDER"
	pin := req.GetField(52) != nil
	contactless := strings.HasPrefix(entry, "07") || strings.HasPrefix(entry, "91")
	limit, hasLimit := noCVMLimits[numeric]
	switch {
	case pin, order, strings.HasPrefix(entry, "03"), r.Wallet != "":
		r.NoSignatureRequired = true
	case contactless && hasLimit && r.Amount <= limit:
		r.NoSignatureRequired = true
	}
	r.SignatureRequired = r.Approved && !r.NoSignatureRequired
	return r
}

// movesCustomerMoney are the receipt types the cardholder pays by, the ones a CVM applies to.
func movesCustomerMoney(typ string) bool {
	switch typ {
	case "SALE", "PRE-AUTH", "BILL PAYMENT", "COMPLETION", "QR ORDER":
		return true
	}
	return false
}

func receiptType(mti, proc string, hasOriginal bool) string {
	p := ""
	if len(proc) >= 2 {
		p = proc[:2]
	}
	switch {
	case len(mti) < 3:
		return "UNKNOWN"
	case mti[:3] == "040" || mti[:3] == "042":
		return "REVERSAL"
	case mti[:3] == "010":
		return "PRE-AUTH"
	case mti[:3] == "022" && hasOriginal:
		return "COMPLETION"
	case mti[:3] == "022":
		return "ADVICE"
	case mti[:3] == "060":
		return "QR ORDER"
	case mti[:3] == "082":
		return "SIGNATURE"
	}
	switch p {
	case "00":
		return "SALE"
	case "02":
		return "VOID"
	case "20":
		return "REFUND"
	case "31":
		return "BALANCE"
	case "50":
		return "BILL PAYMENT"
	}
	return "PROC " + proc
}

// maskedCard is field 2 (or track 2's PAN) masked 6+4; a receipt never shows a clear number.
func maskedCard(req *iso8583.Message) string {
	pan := get(req, 2)
	if pan == "" {
		pan, _, _ = strings.Cut(get(req, 35), "=")
	}
	if pan == "" {
		return ""
	}
	return cards.MaskPAN(pan)
}

// merchantName is the name part of field 43 (its first 25 characters) or the terminal's name.
func merchantName(t Terminal, req *iso8583.Message) string {
	name := firstOf(t.Name, get(req, 43))
	if len(name) > 25 {
		name = name[:25]
	}
	return strings.TrimSpace(name)
}

func firstOf(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}

// FormattedAmount is the amount in major units with the currency's exponent ("12.34", "1200",
// "1.234").
func (r Receipt) FormattedAmount() string {
	if c, ok := currency.ByAlpha(r.Currency); ok {
		return c.Format(r.Amount)
	}
	return FormatAmount(r.Amount, r.exponent)
}

// String is the printed slip, one field per line.
func (r Receipt) String() string {
	var b strings.Builder
	line := func(label, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-12s %s\n", label, v)
		}
	}
	line("MERCHANT", r.MerchantName)
	line("MERCHANT ID", r.MerchantID)
	line("TERMINAL ID", r.TerminalID)
	line("TYPE", r.Type)
	line("CARD", r.Card)
	line("WALLET", r.Wallet)
	line("FUNDING", r.Funding)
	if r.Instalments > 0 {
		line("INSTALMENTS", strconv.Itoa(r.Instalments))
	}
	line("ENTRY", r.EntryMode)
	line("AMOUNT", strings.TrimSpace(r.Currency+" "+r.FormattedAmount()))
	line("STAN", r.STAN)
	line("AUTH CODE", r.AuthCode)
	line("RRN", r.RRN)
	result := "DECLINED"
	if r.Approved {
		result = "APPROVED"
	}
	line("RESULT", fmt.Sprintf("%s %s (%s)", result, r.ResponseCode, strings.ToUpper(cards.ResponseText(r.ResponseCode))))
	switch {
	case r.SignatureRequired:
		b.WriteString("SIGNATURE: ______________________\n")
	case r.NoSignatureRequired && r.Approved:
		b.WriteString("NO SIGNATURE REQUIRED\n")
	}
	return b.String()
}
