package standin_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/switch/standin"
	"github.com/poswitch/poswitch/switch/txn"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

const (
	pan   = "4761730000000011"
	other = "6226090000000014"
)

var rules = standin.Rules{Enabled: true, Currency: "840", MaxAmount: 5000, FloorAmount: 1000,
	DailyAmountPerCard: 6000, DailyCountPerCard: 3}

// offlinePIN is field 55 with 9F34 = enciphered PIN verified by the ICC, successful.
var offlinePIN = []byte{0x9F, 0x02, 0x06, 0, 0, 0, 0, 0x30, 0, 0x9F, 0x34, 0x03, 0x44, 0x03, 0x02}

func newDecider(t *testing.T, rs map[string]standin.Rules, now func() time.Time) *standin.Decider {
	t.Helper()
	pool := pgtest.Pool(t, pgtest.NewDatabase(t).App)
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	d, err := standin.New(pool, rs, standin.Options{Digest: hsm.NewDevelopment().PANDigest, Location: loc, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func request(edit func(*txn.Transaction)) *txn.Transaction {
	t := &txn.Transaction{MTI: "0200", Type: txn.TypePurchase, ProcessingCode: "000000", PAN: pan, Amount: 800,
		Currency: "840", TerminalID: "TERM0001", MerchantID: "M1", STAN: "000001", IssuerID: "bank-a"}
	if edit != nil {
		edit(t)
	}
	return t
}

func TestStandInDecisions(t *testing.T) {
	d := newDecider(t, map[string]standin.Rules{"bank-a": rules, "bank-b": {}}, nil)
	cases := []struct {
		name string
		edit func(*txn.Transaction)
		want string
	}{
		{"PIN-less purchase within the floor", nil, standin.Approved},
		{"pre-authorisation within the floor", func(t *txn.Transaction) { t.MTI, t.Type = "0100", txn.TypePreAuth }, standin.Approved},
		{"PIN-less above the floor", func(t *txn.Transaction) { t.Amount = 1001 }, standin.AboveFloor},
		{"offline PIN verified above the floor", func(t *txn.Transaction) { t.Amount, t.EMV = 4000, offlinePIN }, standin.Approved},
		{"offline PIN failed above the floor", func(t *txn.Transaction) {
			t.Amount, t.EMV = 4000, append(append([]byte{}, offlinePIN[:len(offlinePIN)-1]...), 0x01)
		}, standin.AboveFloor},
		{"above the maximum even with offline PIN", func(t *txn.Transaction) { t.Amount, t.EMV = 5001, offlinePIN }, standin.AboveMax},
		{"online PIN cannot be verified", func(t *txn.Transaction) { t.PINBlock = []byte{1, 2, 3, 4, 5, 6, 7, 8} }, standin.PINNotVerifiable},
		{"reversal", func(t *txn.Transaction) { t.MTI, t.Type = "0400", txn.TypeReversal }, standin.NotEligible},
		{"refund", func(t *txn.Transaction) { t.Type, t.ProcessingCode = txn.TypeRefund, "200000" }, standin.NotEligible},
		{"balance inquiry", func(t *txn.Transaction) { t.Type = txn.TypeBalanceInquiry }, standin.NotEligible},
		{"advice", func(t *txn.Transaction) { t.MTI = "0220" }, standin.NotEligible},
		{"repeat", func(t *txn.Transaction) { t.MTI = "0201" }, standin.NotEligible},
		{"another currency", func(t *txn.Transaction) { t.Currency = "156" }, standin.OtherCurrency},
		{"issuer without stand-in", func(t *txn.Transaction) { t.IssuerID = "bank-b" }, standin.NotEnabled},
		{"issuer without rules", func(t *txn.Transaction) { t.IssuerID = "bank-x" }, standin.NotEnabled},
		{"no PAN to count against", func(t *txn.Transaction) { t.PAN = "" }, standin.NoCard},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx := request(c.edit)
			if tx.PAN != "" {
				tx.PAN = fmt.Sprintf("47617300001%05d", i) // a card of its own: the counters are tested below
			}
			ok, why := d.Decide(context.Background(), tx)
			if why != c.want || ok != (c.want == standin.Approved) {
				t.Fatalf("got %v %q, want %q", ok, why, c.want)
			}
		})
	}
}

func TestDailyLimitsPerCardCountOnlyApprovals(t *testing.T) {
	day := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now := day
	d := newDecider(t, map[string]standin.Rules{"bank-a": rules}, func() time.Time { return now })
	decide := func(p string, amount int64, emv []byte) string {
		_, why := d.Decide(context.Background(), request(func(t *txn.Transaction) { t.PAN, t.Amount, t.EMV = p, amount, emv }))
		return why
	}
	steps := []struct {
		pan    string
		amount int64
		emv    []byte
		want   string
	}{
		{pan, 1000, nil, standin.Approved},        // 1000, 1
		{pan, 4000, offlinePIN, standin.Approved}, // 5000, 2
		{pan, 2000, nil, standin.AboveFloor},      // declined: not counted
		{pan, 1001, offlinePIN, standin.DailyAmount},
		{other, 1000, nil, standin.Approved}, // another card has its own day
		{pan, 1000, nil, standin.Approved},   // 6000, 3
		{pan, 1, nil, standin.DailyCount},
		{pan, 7000, offlinePIN, standin.AboveMax},
	}
	for i, s := range steps {
		if got := decide(s.pan, s.amount, s.emv); got != s.want {
			t.Fatalf("step %d (%d): got %q, want %q", i, s.amount, got, s.want)
		}
	}
	// The day is Asia/Shanghai's: 15:59 UTC is still today, 16:00 UTC is tomorrow.
	now = time.Date(2026, 3, 1, 15, 59, 0, 0, time.UTC)
	if got := decide(pan, 1, nil); got != standin.DailyCount {
		t.Fatalf("same local day: %q", got)
	}
	now = time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC)
	if got := decide(pan, 1000, nil); got != standin.Approved {
		t.Fatalf("next local day: %q", got)
	}
}

func TestCountersAreKeyedByDigestNeverThePAN(t *testing.T) {
	key := []byte("a digest key held by the HSM....")
	digest := func(p string) []byte { m := hmac.New(sha256.New, key); m.Write([]byte(p)); return m.Sum(nil) }
	pool := pgtest.Pool(t, pgtest.NewDatabase(t).App)
	d, err := standin.New(pool, map[string]standin.Rules{"bank-a": rules}, standin.Options{Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := d.Decide(context.Background(), request(nil)); !ok {
		t.Fatal(why)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM standin_card_day
		WHERE card = $1 AND position($2::bytea in card) = 0`, digest(pan), []byte(pan)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d rows keyed by the digest", n)
	}
}

func TestRulesThatCannotHoldAreRefused(t *testing.T) {
	for name, r := range map[string]standin.Rules{
		"no currency":      {Enabled: true, MaxAmount: 1, DailyAmountPerCard: 1, DailyCountPerCard: 1},
		"floor above max":  {Enabled: true, Currency: "840", MaxAmount: 1, FloorAmount: 2, DailyAmountPerCard: 1, DailyCountPerCard: 1},
		"no daily count":   {Enabled: true, Currency: "840", MaxAmount: 1, DailyAmountPerCard: 1},
		"no daily amount":  {Enabled: true, Currency: "840", MaxAmount: 1, DailyCountPerCard: 1},
		"no maximum":       {Enabled: true, Currency: "840", DailyAmountPerCard: 1, DailyCountPerCard: 1},
		"letters currency": {Enabled: true, Currency: "USD", MaxAmount: 1, DailyAmountPerCard: 1, DailyCountPerCard: 1},
	} {
		if _, err := standin.New(nil, map[string]standin.Rules{"bank-a": r}, standin.Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOfflinePINVerifiedReadsCVMResults(t *testing.T) {
	for name, c := range map[string]struct {
		emv  []byte
		want bool
	}{
		"enciphered PIN by ICC, successful":    {offlinePIN, true},
		"plaintext PIN by ICC, successful":     {[]byte{0x9F, 0x34, 0x03, 0x01, 0x00, 0x02}, true},
		"with fail-if-unsuccessful bit":        {[]byte{0x9F, 0x34, 0x03, 0x41, 0x03, 0x02}, true},
		"online PIN":                           {[]byte{0x9F, 0x34, 0x03, 0x02, 0x00, 0x00}, false},
		"signature":                            {[]byte{0x9F, 0x34, 0x03, 0x1E, 0x03, 0x00}, false},
		"offline PIN failed":                   {[]byte{0x9F, 0x34, 0x03, 0x04, 0x00, 0x01}, false},
		"no CVM results":                       {[]byte{0x9F, 0x02, 0x06, 0, 0, 0, 0, 0x10, 0}, false},
		"truncated":                            {[]byte{0x9F, 0x34, 0x03, 0x04}, false},
		"length beyond the data":               {[]byte{0x9F, 0x34, 0x82, 0xFF, 0xFF, 0x04}, false},
		"empty":                                {nil, false},
		"long-form length before the tag":      {[]byte{0x5F, 0x2A, 0x81, 0x02, 0x08, 0x40, 0x9F, 0x34, 0x03, 0x04, 0x00, 0x02}, true},
		"three-byte tag before the CVM result": {[]byte{0xDF, 0x81, 0x01, 0x01, 0x00, 0x9F, 0x34, 0x03, 0x04, 0x00, 0x02}, true},
	} {
		if got := standin.OfflinePINVerified(c.emv); got != c.want {
			t.Errorf("%s: got %v", name, got)
		}
	}
}
