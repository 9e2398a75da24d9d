package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/poswitch/poswitch/switch/routing"
	"github.com/poswitch/poswitch/switch/txn"
)

func purchase() *txn.Transaction {
	return &txn.Transaction{MTI: "0200", Type: txn.TypePurchase, PAN: "4761739001010010", Amount: 1000,
		Currency: "156", TerminalID: "T1", MerchantID: "M1", STAN: "000001", Received: time.Now()}
}

func TestValidateAnswersBySwitchRules(t *testing.T) {
	v := Validate{Supported: map[txn.Type]bool{txn.TypePurchase: true, txn.TypeReversal: true, txn.TypeVoid: true,
		txn.TypeCompletion: true, txn.TypeRefund: true, txn.TypeBalanceInquiry: true}}
	cases := []struct {
		name string
		edit func(*txn.Transaction)
		want string
	}{
		{"good card passes", func(*txn.Transaction) {}, ""},
		{"bad Luhn is 14", func(t *txn.Transaction) { t.PAN = "4761739001010011" }, txn.RCInvalidCard},
		{"short PAN is 14", func(t *txn.Transaction) { t.PAN = "47617390010" }, txn.RCInvalidCard},
		{"letters in PAN are 14", func(t *txn.Transaction) { t.PAN = "47617390010100A0" }, txn.RCInvalidCard},
		{"zero amount is 13", func(t *txn.Transaction) { t.Amount = 0 }, txn.RCInvalidAmount},
		{"unsupported type is 12", func(t *txn.Transaction) { t.Type = txn.TypeBillPayment }, txn.RCInvalidTxn},
		{"month 13 is 30", func(t *txn.Transaction) { t.Expiry = "2913" }, txn.RCFormatError},
		{"negative amount is 13", func(t *txn.Transaction) { t.Amount = -1 }, txn.RCInvalidAmount},
		{"reversal without card or amount passes", func(t *txn.Transaction) { t.Type, t.PAN, t.Amount = txn.TypeReversal, "", 0 }, ""},
		{"void of zero passes", func(t *txn.Transaction) { t.Type, t.Amount = txn.TypeVoid, 0 }, ""},
		{"completion without card passes", func(t *txn.Transaction) { t.Type, t.PAN = txn.TypeCompletion, "" }, ""},
		{"reversal with a bad card is 14", func(t *txn.Transaction) { t.Type, t.PAN = txn.TypeReversal, "4761739001010011" }, txn.RCInvalidCard},
		{"refund without card is left to the refund step", func(t *txn.Transaction) { t.Type, t.PAN = txn.TypeRefund, "" }, ""},
		{"payment code skips Luhn", func(t *txn.Transaction) { t.PAN, t.EntryMode = "281234567890123456", "031" }, ""},
		{"card number fails Luhn", func(t *txn.Transaction) { t.PAN = "281234567890123456" }, txn.RCInvalidCard},
		{"inquiry of zero passes", func(t *txn.Transaction) { t.Type, t.Amount = txn.TypeBalanceInquiry, 0 }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx := purchase()
			c.edit(tx)
			v.Run(context.Background(), tx)
			if tx.Response != c.want || tx.Ended() != (c.want != "") {
				t.Fatalf("response %q ended %v, want %q", tx.Response, tx.Ended(), c.want)
			}
		})
	}
}

func TestLuhnKnownNumbers(t *testing.T) {
	for pan, want := range map[string]bool{
		"4111111111111111": true, "5555555555554444": true, "79927398713": true,
		"4111111111111112": false, "": true, "12a4": false,
	} {
		if got := Luhn(pan); got != want {
			t.Errorf("Luhn(%q) = %v", pan, got)
		}
	}
}

func TestIdentifyResolvesMerchantAndMakesRRN(t *testing.T) {
	s := &Identify{
		Terminals: map[string]string{"T1": "M1", "T2": "M2"},
		Merchants: map[string]*Merchant{
			"M1": {ID: "M1", Name: "Corner Shop", FeeBP: 45, Currencies: map[string]bool{"156": true}},
		},
	}
	tx := purchase()
	s.Run(context.Background(), tx)
	if tx.Ended() || tx.FeeBP != 45 || tx.MerchantName != "Corner Shop" || len(tx.RRN) != 12 {
		t.Fatalf("got ended=%v fee=%d name=%q rrn=%q", tx.Ended(), tx.FeeBP, tx.MerchantName, tx.RRN)
	}
	other := purchase()
	s.Run(context.Background(), other)
	if other.RRN == tx.RRN {
		t.Fatalf("two transactions got the same RRN %s", tx.RRN)
	}
	for name, edit := range map[string]func(*txn.Transaction){
		"unknown terminal":         func(t *txn.Transaction) { t.TerminalID = "T9" },
		"terminal of another MID":  func(t *txn.Transaction) { t.MerchantID = "M2" },
		"merchant not in settings": func(t *txn.Transaction) { t.TerminalID, t.MerchantID = "T2", "M2" },
	} {
		tx := purchase()
		edit(tx)
		s.Run(context.Background(), tx)
		if tx.Response != txn.RCInvalidMerchant {
			t.Errorf("%s: got %q, want 03", name, tx.Response)
		}
	}
	tx = purchase()
	tx.Currency = "392"
	s.Run(context.Background(), tx)
	if tx.Response != txn.RCInvalidTxn {
		t.Errorf("currency the merchant does not accept: got %q, want 12", tx.Response)
	}
}

func TestRouteAnswers15WithoutRouteAnd92WithoutLink(t *testing.T) {
	table, err := routing.NewTable([]routing.Entry{{Prefix: "4761", Issuer: "bank-a"}, {Prefix: "5413", Issuer: "bank-x"}})
	if err != nil {
		t.Fatal(err)
	}
	s := Route{Router: routing.NewRouter(table), Links: map[string]bool{"bank-a": true}}
	for pan, want := range map[string]string{"4761739001010010": "", "3000000000000004": txn.RCNoSuchIssuer, "5413330000000019": txn.RCUnableToRoute} {
		tx := purchase()
		tx.PAN = pan
		s.Run(context.Background(), tx)
		if tx.Response != want {
			t.Errorf("%s: got %q, want %q", txn.Mask(pan), tx.Response, want)
		}
		if want == "" && tx.IssuerID != "bank-a" {
			t.Errorf("routed to %q", tx.IssuerID)
		}
	}
}

func TestPipelineStopsAtTheStepThatEnds(t *testing.T) {
	ran := []string{}
	rec := func(name string, end bool) Step { return recorder{name: name, end: end, ran: &ran} }
	p := New(nil, rec("a", false), rec("b", true), rec("c", false))
	tx := purchase()
	p.Process(context.Background(), tx)
	if len(ran) != 2 || ran[1] != "b" || tx.Response != txn.RCDoNotHonour {
		t.Fatalf("ran %v, response %q", ran, tx.Response)
	}
	// A pipeline that never answers is a bug; the terminal still gets 96.
	tx = purchase()
	New(nil, rec("a", false)).Process(context.Background(), tx)
	if tx.Response != txn.RCSystemError {
		t.Fatalf("unanswered transaction got %q", tx.Response)
	}
}

type recorder struct {
	name string
	end  bool
	ran  *[]string
}

func (r recorder) Name() string { return r.name }
func (r recorder) Run(_ context.Context, t *txn.Transaction) {
	*r.ran = append(*r.ran, r.name)
	if r.end {
		t.End(txn.RCDoNotHonour, "test")
	}
}

func TestPINStepWithoutHSMIs88(t *testing.T) {
	tx := purchase()
	tx.PINBlock = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	PIN{}.Run(context.Background(), tx)
	if tx.Response != txn.RCCryptoFailure {
		t.Fatalf("got %q", tx.Response)
	}
}

func TestLedgerOutcomesBecomeResponseCodes(t *testing.T) {
	for _, c := range []struct {
		name string
		b    Booked
		want string
	}{
		{"booked is 00", Booked{Status: StatusBooked}, txn.RCApproved},
		{"reversal of the unknown or the reversed is 00", Booked{Status: StatusNoop}, txn.RCApproved},
		{"refund or completion of the unknown is 25", Booked{Status: StatusRefused, Refusal: RefusalNoOriginal}, txn.RCNoRecord},
		{"refund above what is left is 13", Booked{Status: StatusRefused, Refusal: RefusalAmount}, txn.RCInvalidAmount},
		{"refund of a reversed sale is 12", Booked{Status: StatusRefused, Refusal: RefusalCancelled}, txn.RCInvalidTxn},
		{"other refusals are 12", Booked{Status: StatusRefused, Refusal: RefusalOther}, txn.RCInvalidTxn},
	} {
		if got := LedgerAnswer(c.b); got != c.want {
			t.Errorf("%s: got %s", c.name, got)
		}
	}
}

// References follow the clock's share of the hour, so a node restarted later in the hour starts
// past what its previous run handed out at the clock's pace; within a run they only increase.
func TestRRNSequenceNeverFallsBehindTheClock(t *testing.T) {
	at := time.Date(2025, 6, 14, 12, 30, 0, 0, time.UTC)
	s := &Identify{NodeID: 3}
	if got := s.newRRN(at); got != "516512"+"3"+"50000" {
		t.Fatalf("first reference at half past %s, want 516512350000", got)
	}
	if got := s.newRRN(at); got != "516512350001" {
		t.Fatalf("second reference %s", got)
	}
	restarted := &Identify{NodeID: 3}
	if got := restarted.newRRN(at.Add(time.Minute)); got != "516512351666" {
		t.Fatalf("after a restart a minute later: %s, want 516512351666", got)
	}
	if got := s.newRRN(at.Add(30 * time.Minute)); got != "516513300000" {
		t.Fatalf("next hour: %s", got)
	}
}
