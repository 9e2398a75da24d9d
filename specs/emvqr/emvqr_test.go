package emvqr

import (
	"errors"
	"strings"
	"testing"
)

// emvcoExample is the merchant-presented example payload of the EMVCo QRCPS specification
// (Appendix A), with local-language names in ID 64 and its published CRC A13A.
const emvcoExample = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678" +
	"520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.72" +
	"53031565502016233030412340603***0708A60086670902ME91320016A011223344998877070812345678" +
	"6304A13A"

func TestCRCMatchesPublishedVectors(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"CRC-16/CCITT-FALSE check value", "123456789", "29B1"},
		{"EMVCo QRCPS appendix example", strings.TrimSuffix(emvcoExample, "A13A"), "A13A"},
		{"empty input is the initial value", "", "FFFF"},
	} {
		if got := CRC(c.in); got != c.want {
			t.Errorf("%s: CRC = %s, want %s", c.name, got, c.want)
		}
	}
}

func TestParseReadsTheEMVCoExample(t *testing.T) {
	p, err := Parse(emvcoExample)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Payload{MCC: "4111", Currency: "156", Amount: "23.72", Country: "CN",
		MerchantName: "BEST TRANSPORT", MerchantCity: "BEIJING", TerminalID: "A6008667"}
	if p != want {
		t.Errorf("Parse = %+v\nwant    %+v", p, want)
	}
}

func samplePayload() Payload {
	return Payload{AcquirerGUID: "CN.POSWITCH.ACQ", MerchantID: "M00000000000001", TerminalID: "T0000001",
		OrderID: "0123456789ABCDEF0123", MCC: "5411", Currency: "156", Amount: "12.34", Country: "CN",
		MerchantName: "Best Noodles", MerchantCity: "Shanghai"}
}

func TestBuildIsDynamicWithCRCLast(t *testing.T) {
	s, err := Build(samplePayload())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if !strings.HasPrefix(s, "000201010212") {
		t.Errorf("payload %q does not start with ID 00 \"01\" and ID 01 \"12\"", s)
	}
	if !strings.Contains(s, "26380015CN.POSWITCH.ACQ0115M00000000000001") {
		t.Errorf("payload %q lacks the merchant account template", s)
	}
	if !strings.Contains(s, "62360520"+"0123456789ABCDEF0123"+"0708T0000001") {
		t.Errorf("payload %q lacks the additional data template", s)
	}
	body, crc := s[:len(s)-4], s[len(s)-4:]
	if !strings.HasSuffix(body, "6304") || CRC(body) != crc {
		t.Errorf("payload %q: CRC %s, want %s over everything up to 6304", s, crc, CRC(body))
	}
}

func TestBuildParseRoundTrip(t *testing.T) {
	cases := map[string]func(*Payload){
		"as built":                 func(*Payload) {},
		"yen has no decimals":      func(p *Payload) { p.Currency, p.Amount = "392", "1200" },
		"dinar has three":          func(p *Payload) { p.Currency, p.Amount = "414", "1.234" },
		"no terminal label":        func(p *Payload) { p.TerminalID = "" },
		"chinese merchant name":    func(p *Payload) { p.MerchantName, p.MerchantCity = "最佳运输", "北京" },
		"longest order id":         func(p *Payload) { p.OrderID = strings.Repeat("9", 25) },
		"longest acquirer GUID":    func(p *Payload) { p.AcquirerGUID = strings.Repeat("G", 32) },
		"largest amount":           func(p *Payload) { p.Amount = "9999999999.99" },
		"name with EMVCo specials": func(p *Payload) { p.MerchantName = "A&B Café (No.1)" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			in := samplePayload()
			edit(&in)
			s, err := Build(in)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			out, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			if out != in {
				t.Errorf("round trip\n got %+v\nwant %+v", out, in)
			}
		})
	}
}

func TestBuildRefusesFieldsQRCPSWouldNot(t *testing.T) {
	cases := map[string]func(*Payload){
		"no order id":            func(p *Payload) { p.OrderID = "" },
		"order id of 26":         func(p *Payload) { p.OrderID = strings.Repeat("1", 26) },
		"letters in MCC":         func(p *Payload) { p.MCC = "54A1" },
		"alpha currency":         func(p *Payload) { p.Currency = "CNY" },
		"negative amount":        func(p *Payload) { p.Amount = "-1.00" },
		"amount of 14 chars":     func(p *Payload) { p.Amount = "99999999999.99" },
		"amount ending in a dot": func(p *Payload) { p.Amount = "12." },
		"empty amount":           func(p *Payload) { p.Amount = "" },
		"control character":      func(p *Payload) { p.MerchantName = "Best\nNoodles" },
		"city of 16":             func(p *Payload) { p.MerchantCity = strings.Repeat("c", 16) },
		"no merchant ID":         func(p *Payload) { p.MerchantID = "" },
		"account template of 100": func(p *Payload) {
			p.AcquirerGUID, p.MerchantID = strings.Repeat("G", 32), strings.Repeat("M", 25)
			p.OrderID = strings.Repeat("O", 25)
			p.TerminalID = strings.Repeat("T", 25) + "x"
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			p := samplePayload()
			edit(&p)
			if s, err := Build(p); err == nil {
				t.Errorf("Build accepted %+v: %q", p, s)
			}
		})
	}
}

func TestParseRejectsDamagedPayloads(t *testing.T) {
	good, err := Build(samplePayload())
	if err != nil {
		t.Fatal(err)
	}
	withCRC := func(body string) string { return body + CRC(body) }
	cases := map[string]struct {
		in     string
		crcErr bool
	}{
		"one digit of the amount changed": {strings.Replace(good, "12.34", "12.35", 1), true},
		"CRC missing":                     {good[:len(good)-8], false},
		"truncated":                       {good[:len(good)-1], false},
		"empty":                           {"", false},
		"length longer than the rest":     {withCRC("000201010212529941116304"), false},
		"not starting with ID 00":         {withCRC("010212000201520441115303156580" + "2CN5901X6001Y6304"), false},
		"format indicator 02":             {withCRC("0002025204411153031565802CN5901X6001Y6304"), false},
		"MCC missing":                     {withCRC("00020153031565802CN5901X6001Y6304"), false},
		"ID twice":                        {withCRC("0002015204411152044111530315658" + "02CN5901X6001Y6304"), false},
		"initiation method 13":            {withCRC("0002010102135204411153031565802CN5901X6001Y6304"), false},
		"letters in a length":             {withCRC("00020152AB41115303156" + "5802CN5901X6001Y6304"), false},
		"zero length":                     {withCRC("0002015200530315658" + "02CN5901X6001Y6304"), false},
		"bad amount":                      {withCRC("00020152044111530315654021.5802CN5901X6001Y6304"), false},
		"broken template 62":              {withCRC("0002015204411153031565802CN5901X6001Y62040599" + "6304"), false},
		"not UTF-8":                       {withCRC("0002015204411153031565802CN5901\xff6001Y6304"), false},
		"too long":                        {withCRC("000201" + strings.Repeat("9999"+strings.Repeat("x", 99), 5) + "6304"), false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(c.in)
			if err == nil {
				t.Fatalf("Parse accepted %q", c.in)
			}
			if c.crcErr != errors.Is(err, ErrCRC) {
				t.Errorf("Parse(%q) = %v; CRC error %v, want %v", c.in, err, errors.Is(err, ErrCRC), c.crcErr)
			}
		})
	}
}

func TestAmountFollowsTheCurrencyExponent(t *testing.T) {
	cases := []struct {
		minor    int64
		exponent int
		text     string
	}{
		{1234, 2, "12.34"}, {5, 2, "0.05"}, {0, 2, "0.00"}, {1200, 0, "1200"}, {1234, 3, "1.234"},
		{999999999999, 2, "9999999999.99"},
	}
	for _, c := range cases {
		got, err := FormatAmount(c.minor, c.exponent)
		if err != nil || got != c.text {
			t.Errorf("FormatAmount(%d, %d) = %q, %v; want %q", c.minor, c.exponent, got, err, c.text)
		}
		back, err := ParseAmount(c.text, c.exponent)
		if err != nil || back != c.minor {
			t.Errorf("ParseAmount(%q, %d) = %d, %v; want %d", c.text, c.exponent, back, err, c.minor)
		}
	}
	if v, err := ParseAmount("12.3", 2); err != nil || v != 1230 {
		t.Errorf("ParseAmount(12.3, 2) = %d, %v; want 1230", v, err)
	}
	for _, bad := range []struct {
		text     string
		exponent int
	}{{"12.345", 2}, {"1.5", 0}, {"abc", 2}, {"", 2}} {
		if v, err := ParseAmount(bad.text, bad.exponent); err == nil {
			t.Errorf("ParseAmount(%q, %d) = %d, want an error", bad.text, bad.exponent, v)
		}
	}
	if s, err := FormatAmount(-1, 2); err == nil {
		t.Errorf("FormatAmount(-1, 2) = %q, want an error", s)
	}
}

// FuzzParse feeds arbitrary strings to Parse: it must return, never panic, and whatever it accepts
// must carry a CRC that checks and rebuild to the same fields.
func FuzzParse(f *testing.F) {
	good, _ := Build(samplePayload())
	for _, s := range []string{emvcoExample, good, "", "0002", "000201630400", good[:40]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		if CRC(s[:len(s)-4]) != strings.ToUpper(s[len(s)-4:]) {
			t.Fatalf("Parse accepted %q with a CRC that does not check", s)
		}
		// Whatever Parse reads and Build accepts must survive a second round trip unchanged.
		if again, err := Build(p); err == nil {
			if q, err := Parse(again); err != nil || q != p {
				t.Fatalf("rebuilt %q parses to %+v, %v; want %+v", again, q, err, p)
			}
		}
	})
}
