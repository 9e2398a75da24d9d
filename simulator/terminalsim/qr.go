package terminalsim

import (
	"fmt"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
)

// EntryQR is field 22 of a payment paid with a wallet payment code the terminal scanned (ISO 8583
// PAN entry mode 03: bar code / QR; PIN entry capability 1). The code travels in field 2 in place
// of a PAN; the switch routes it by prefix and length to the wallet, without a check digit.
const EntryQR = "031"

// BillerHuabei is the biller ID (field 48's first part) of a Huabei credit-line repayment.
const BillerHuabei = "HUABEI"

// maxInstalments bounds field 63 (two digits).
const maxInstalments = 99

// NewQRPurchase builds an 0200 purchase from terminal t paid with a wallet payment code the
// customer shows and the terminal scans: the code in field 2, entry mode 031, amount minor units of
// currency (ISO 4217 numeric), STAN stan. instalments > 0 asks the wallet to spread the payment
// over that many months of its credit line (Huabei: 3, 6 or 12) in field 63; 0 sends no field 63.
// The answer's field 63 says "<WALLET>|<FUNDING>|<nn>" (e.g. "ALIPAY|HUABEI|03").
func NewQRPurchase(t Terminal, code string, amount int64, currency string, instalments, stan int) *iso8583.Message {
	return build("0200", qrPurchase(t, code, amount, currency, instalments, stan, time.Now()))
}

func qrPurchase(t Terminal, code string, amount int64, currency string, instalments, stan int, now time.Time) map[int]string {
	if instalments < 0 || instalments > maxInstalments {
		panic(fmt.Sprintf("terminalsim: %d instalments: field 63 holds 0 to %d", instalments, maxInstalments))
	}
	f := map[int]string{
		2: code, 3: ProcPurchase, 4: fmt.Sprintf("%012d", amount), 7: now.UTC().Format("0102150405"),
		11: fmt.Sprintf("%06d", stan%1_000_000), 12: now.Format("150405"), 13: now.Format("0102"), 22: EntryQR,
		25: "00", 41: t.TID, 42: t.MID, 49: currency,
	}
	if instalments > 0 {
		f[63] = fmt.Sprintf("%02d", instalments)
	}
	if t.Name != "" {
		f[43] = fmt.Sprintf("%-40.40s", t.Name)
	}
	return f
}

// NewQRRefund builds an 0200 refund (processing code 20) of amount (part or all) of the QR payment
// orig. It carries no field 2: the payment code was good for one payment and the terminal keeps
// none; field 90 names the payment, and the switch sends the refund to the wallet it was paid from,
// which gives the money back to the funding source it came from.
func NewQRRefund(orig *iso8583.Message, amount int64, stan int) *iso8583.Message {
	f := onOriginal(orig, ProcRefund, amount, stan, time.Now())
	delete(f, 2)
	return build("0200", f)
}

// NewWalletRepayment builds an 0200 bill payment (processing code 50) of amount paid by card at t
// to a wallet biller: field 48 "<biller>|<account>", account being the customer's account at the
// wallet (digits). The switch books it to the wallet's payable and tells the wallet, which reduces
// what the customer owes on its credit line.
func NewWalletRepayment(t Terminal, card cards.Card, biller, account string, amount int64, currency string, stan int) *iso8583.Message {
	f := cardRequest(t, card, ProcBillPayment, amount, currency, stan, time.Now())
	f[48] = biller + "|" + account
	return build("0200", f)
}

// NewHuabeiRepayment is NewWalletRepayment to the Huabei biller: a customer repays the Huabei
// credit line of wallet account account by card at a POS.
func NewHuabeiRepayment(t Terminal, card cards.Card, account string, amount int64, currency string, stan int) *iso8583.Message {
	return NewWalletRepayment(t, card, BillerHuabei, account, amount, currency, stan)
}
