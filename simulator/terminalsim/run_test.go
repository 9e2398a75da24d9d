package terminalsim_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

func startIssuer(t *testing.T, cfg issuersim.Config) *issuersim.Server {
	t.Helper()
	srv, err := issuersim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func TestDirectPathOutcomesMatchTheCatalogue(t *testing.T) {
	srv := startIssuer(t, issuersim.Config{Jitter: time.Millisecond})
	sum, err := terminalsim.Run(context.Background(), terminalsim.Config{
		Addr: srv.Addr(), Dialect: "issuer-link", Conns: 4, InFlightPerConn: 8, Count: 400, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 400 || sum.Answered != 400 || sum.Timeouts != 0 || sum.Errors != 0 {
		t.Fatalf("summary %s", sum)
	}
	if sum.Mismatches != 0 {
		t.Fatalf("%d answers differ from the catalogue: got %v, expected %v", sum.Mismatches, sum.Codes, sum.Expected)
	}
	for code, n := range sum.Expected {
		if sum.Codes[code] != n {
			t.Errorf("code %s: %d answers, catalogue expects %d", code, sum.Codes[code], n)
		}
	}
	if len(sum.Codes) < 5 {
		t.Errorf("only codes %v: the default cards should mix approvals and declines", sum.Codes)
	}
	if got := srv.Stats().Requests["0200"]; got != 400 {
		t.Errorf("issuer saw %d purchases", got)
	}
	if sum.Latency.TotalCount() != 400 || sum.Percentile(99) <= 0 {
		t.Errorf("latency histogram holds %d values, p99 %v", sum.Latency.TotalCount(), sum.Percentile(99))
	}
}

func TestVerboseReceiptsMaskThePAN(t *testing.T) {
	srv := startIssuer(t, issuersim.Config{})
	card := cards.MustLookup("4761730000000011")
	var out bytes.Buffer
	sum, err := terminalsim.Run(context.Background(), terminalsim.Config{
		Addr: srv.Addr(), Dialect: "issuer-link", Count: 3, Verbose: true, Out: &out,
		Cards: []cards.Card{card}, Amount: 1234,
	})
	if err != nil || sum.Codes["00"] != 3 {
		t.Fatalf("run: %v %s", err, sum)
	}
	text := out.String()
	for _, want := range []string{"476173******0011", "USD 12.34", "APPROVED 00", "MERCHANT0000001", "TERM0001", "AUTH CODE", "ENTRY        CHIP"} {
		if !strings.Contains(text, want) {
			t.Errorf("receipts lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, card.PAN) {
		t.Errorf("receipts show the full PAN:\n%s", text)
	}
}

func TestRunAgainstNothingListeningFails(t *testing.T) {
	_, err := terminalsim.Run(context.Background(), terminalsim.Config{Addr: "127.0.0.1:1", Dialect: "iso87a", Count: 1})
	if err == nil {
		t.Fatal("no error")
	}
	if _, err := terminalsim.Run(context.Background(), terminalsim.Config{Addr: "127.0.0.1:1", Dialect: "iso99"}); err == nil ||
		!strings.Contains(err.Error(), "iso87a") {
		t.Fatalf("unknown dialect error %v", err)
	}
}

func TestFormatAmountUsesTheCurrencyExponent(t *testing.T) {
	for _, tt := range []struct {
		amount int64
		exp    int
		want   string
	}{{1234, 2, "12.34"}, {5, 2, "0.05"}, {1234, 0, "1234"}, {-150, 2, "-1.50"}} {
		if got := terminalsim.FormatAmount(tt.amount, tt.exp); got != tt.want {
			t.Errorf("FormatAmount(%d, %d) = %s, want %s", tt.amount, tt.exp, got, tt.want)
		}
	}
}
