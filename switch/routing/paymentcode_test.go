package routing

import (
	"errors"
	"testing"
)

// The wallet routes of docs/configuration.md: Alipay-style codes 25-30 (18 digits), WeChat-style
// 10-15 (18 digits), UnionPay QR codes 62 with 19 digits, next to card routes on the same digits.
func walletTable(t *testing.T) *Table {
	t.Helper()
	table, err := NewTable([]Entry{
		{Prefix: "62", Issuer: "cup-cards"},
		{Prefix: "622202", Issuer: "icbc"},
		{Prefix: "62", Length: 19, PaymentCodes: true, Issuer: "unionpay-wallet"},
		{Range: "25-30", Length: 18, PaymentCodes: true, Issuer: "alipay"},
		{Range: "10-15", Length: 18, PaymentCodes: true, Issuer: "wechat"},
		{Prefix: "4", Issuer: "visa"},
		{Prefix: "45", Length: 16, Issuer: "visa-16"},
		{Default: true, Issuer: "fallback"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func TestPaymentCodesGoToTheirWalletAndCardsToTheirBanks(t *testing.T) {
	table := walletTable(t)
	cases := []struct {
		name, number string
		code         bool
		want         string
	}{
		{"UnionPay QR code of 19 digits", "6200001234567890123", true, "unionpay-wallet"},
		{"19-digit 62 card stays with the card route", "6200001234567890123", false, "cup-cards"},
		{"longer card prefix still wins for a card", "6222021234567890123", false, "icbc"},
		{"a payment-code route beats a longer card prefix for a code", "6222021234567890123", true, "unionpay-wallet"},
		{"16-digit 62 code is not a UnionPay QR code", "6200001234567890", true, "cup-cards"},
		{"Alipay code", "281234567890123456", true, "alipay"},
		{"Alipay range low bound", "251234567890123456", true, "alipay"},
		{"Alipay range high bound", "301234567890123456", true, "alipay"},
		{"WeChat code", "131234567890123456", true, "wechat"},
		{"Alipay-looking card number goes to the default", "281234567890123456", false, "fallback"},
		{"17-digit 28 code does not match the 18-digit route", "28123456789012345", true, "fallback"},
		{"code outside every wallet range", "161234567890123456", true, "fallback"},
		{"a card route serves a code with no code route", "4111111111111111", true, "visa"},
		{"length route beats the plain prefix of the same digits", "4512345678901234", false, "visa-16"},
		{"length route ignores other lengths", "4512345678901", false, "visa"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lookup := table.Lookup
			if c.code {
				lookup = table.LookupPaymentCode
			}
			got, ok := lookup(c.number)
			if !ok || got != c.want {
				t.Errorf("lookup(%q, code=%v) = %q, %v; want %q", c.number, c.code, got, ok, c.want)
			}
		})
	}
}

func TestPaymentCodeAndCardRoutesOnTheSamePrefixAreNotDuplicates(t *testing.T) {
	table, err := NewTable([]Entry{
		{Prefix: "62", Issuer: "cards"},
		{Prefix: "62", PaymentCodes: true, Issuer: "codes"},
		{Prefix: "62", PaymentCodes: true, Length: 19, Issuer: "codes-19"},
		{Range: "620-629", Issuer: "cards-range"},
		{Range: "620-629", PaymentCodes: true, Issuer: "codes-range"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		number string
		code   bool
		want   string
	}{
		{"6212345678901234", false, "cards-range"},
		{"6212345678901234", true, "codes-range"},
		{"6212345678901234567", true, "codes-range"},
		{"62", true, "codes"},
	} {
		lookup := table.Lookup
		if c.code {
			lookup = table.LookupPaymentCode
		}
		if got, _ := lookup(c.number); got != c.want {
			t.Errorf("lookup(%s, code=%v) = %q, want %q", c.number, c.code, got, c.want)
		}
	}
}

func TestTableRefusesBadPaymentCodeRoutes(t *testing.T) {
	cases := []struct {
		name    string
		entries []Entry
		field   string
	}{
		{"length shorter than the prefix", []Entry{{Prefix: "622202", Length: 4, Issuer: "a"}}, "length"},
		{"length shorter than the range", []Entry{{Range: "6221-6229", Length: 3, Issuer: "a"}}, "length"},
		{"length above 19", []Entry{{Prefix: "62", Length: 20, Issuer: "a"}}, "length"},
		{"negative length", []Entry{{Prefix: "62", Length: -1, Issuer: "a"}}, "length"},
		{"default for payment codes", []Entry{{Default: true, PaymentCodes: true, Issuer: "a"}}, "default"},
		{"same payment-code prefix twice", []Entry{
			{Prefix: "62", PaymentCodes: true, Length: 19, Issuer: "a"},
			{Prefix: "62", PaymentCodes: true, Length: 19, Issuer: "b"}}, "prefix"},
		{"overlapping payment-code ranges", []Entry{
			{Range: "25-30", PaymentCodes: true, Length: 18, Issuer: "a"},
			{Range: "29-31", PaymentCodes: true, Length: 18, Issuer: "b"}}, "range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewTable(c.entries)
			var ee *EntryError
			if !errors.As(err, &ee) || ee.Field != c.field {
				t.Fatalf("got %v, want an *EntryError on %s", err, c.field)
			}
		})
	}
}

func TestRouterRoutesPaymentCodesWithTheTableInForce(t *testing.T) {
	a, _ := NewTable([]Entry{{Prefix: "62", Issuer: "cards"}})
	r := NewRouter(a)
	if is, _ := r.LookupPaymentCode("6200001234567890123"); is != "cards" {
		t.Fatalf("before reload got %q", is)
	}
	r.Replace(walletTable(t))
	if is, _ := r.LookupPaymentCode("6200001234567890123"); is != "unionpay-wallet" {
		t.Fatalf("after reload got %q", is)
	}
	if is, _ := r.Lookup("6200001234567890123"); is != "cup-cards" {
		t.Fatalf("card after reload got %q", is)
	}
}
