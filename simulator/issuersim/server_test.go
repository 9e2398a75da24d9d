package issuersim_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/specs"
)

var shop = terminalsim.Terminal{TID: "TERM0001", MID: "MERCHANT0000001"}

func start(t *testing.T, cfg issuersim.Config) (*issuersim.Server, *terminalsim.Client) {
	t.Helper()
	srv, err := issuersim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c, err := terminalsim.Dial(context.Background(), srv.Addr(), "issuer-link", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

func send(t *testing.T, c *terminalsim.Client, m *iso8583.Message) *iso8583.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Send(ctx, m)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return resp
}

func field(m *iso8583.Message, id int) string { v, _ := m.GetString(id); return v }

func TestEveryIssuerDecidedCardGetsItsCatalogueOutcome(t *testing.T) {
	_, c := start(t, issuersim.Config{})
	for i, card := range cards.IssuerDecided() {
		t.Run(card.Masked(), func(t *testing.T) {
			resp := send(t, c, terminalsim.NewPurchase(shop, card, 1234, "", i+1))
			if mti, _ := resp.GetMTI(); mti != "0210" {
				t.Fatalf("MTI %s", mti)
			}
			if got := field(resp, 39); got != card.Outcome {
				t.Fatalf("response code %s, catalogue says %s (%s)", got, card.Outcome, card.Note)
			}
			auth := field(resp, 38)
			if (card.Outcome == cards.Approved) != (len(auth) == 6) {
				t.Fatalf("auth code %q for outcome %s", auth, card.Outcome)
			}
			if field(resp, 37) == "" || field(resp, 4) != "000000001234" {
				t.Fatalf("RRN %q or amount %q not echoed", field(resp, 37), field(resp, 4))
			}
			if pin, _ := resp.GetBytes(55); pin != nil {
				t.Fatal("ICC data echoed in the response")
			}
		})
	}
}

func TestApprovedPurchaseDebitsTheBalanceAndDuplicateDebitsOnce(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	card := cards.MustLookup("5413330000000019")
	before, _ := srv.Balance(card.PAN)
	req := terminalsim.NewPurchase(shop, card, 2500, "", 7)
	first := send(t, c, req)
	second := send(t, c, req) // a retransmission: same 11, 7, 32
	if field(first, 39) != "00" || field(second, 39) != "00" || field(first, 38) != field(second, 38) {
		t.Fatalf("answers %s/%s auth %s/%s", field(first, 39), field(second, 39), field(first, 38), field(second, 38))
	}
	after, _ := srv.Balance(card.PAN)
	if before-after != 2500 {
		t.Fatalf("balance moved by %d, want 2500", before-after)
	}
	if srv.Stats().Duplicates != 1 {
		t.Fatalf("duplicates %d", srv.Stats().Duplicates)
	}
}

func reversalOf(t *testing.T, purchase *iso8583.Message, mti string, stan int) *iso8583.Message {
	t.Helper()
	m := iso8583.NewMessage(specs.IssuerLink)
	m.MTI(mti)
	for _, id := range []int{2, 3, 4, 41, 42, 49} {
		if err := m.Field(id, field(purchase, id)); err != nil {
			t.Fatal(err)
		}
	}
	orig := "0200" + field(purchase, 11) + field(purchase, 7) + "00000000000" + "00000000000"
	for id, v := range map[int]string{7: time.Now().UTC().Format("0102150405"), 11: fmt.Sprintf("%06d", stan), 90: orig} {
		if err := m.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestReversalRestoresTheBalanceOnce(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	card := cards.MustLookup("4761730000000011")
	before, _ := srv.Balance(card.PAN)
	purchase := terminalsim.NewPurchase(shop, card, 9900, "", 100)
	if code := field(send(t, c, purchase), 39); code != "00" {
		t.Fatalf("purchase answered %s", code)
	}
	for i, mti := range []string{"0400", "0401", "0420"} {
		resp := send(t, c, reversalOf(t, purchase, mti, 200+i))
		want := map[string]string{"0400": "0410", "0401": "0410", "0420": "0430"}[mti]
		if got, _ := resp.GetMTI(); got != want || field(resp, 39) != "00" {
			t.Fatalf("%s answered %s with %s", mti, got, field(resp, 39))
		}
	}
	after, _ := srv.Balance(card.PAN)
	if after != before {
		t.Fatalf("balance %d after reversal, was %d", after, before)
	}
	st := srv.Stats()
	if st.Reversals != 3 || st.ReversalsApplied != 1 {
		t.Fatalf("reversals %d applied %d, want 3 and 1", st.Reversals, st.ReversalsApplied)
	}
}

func TestReversalOfUnknownTransactionIsApprovedAndChangesNothing(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	card := cards.MustLookup("4761730000000011")
	before, _ := srv.Balance(card.PAN)
	never := terminalsim.NewPurchase(shop, card, 5000, "", 300)
	if code := field(send(t, c, reversalOf(t, never, "0420", 301)), 39); code != "00" {
		t.Fatalf("answered %s", code)
	}
	if after, _ := srv.Balance(card.PAN); after != before || srv.Stats().ReversalsApplied != 0 {
		t.Fatalf("balance %d (was %d), applied %d", after, before, srv.Stats().ReversalsApplied)
	}
}

func TestNetworkManagementSignOnEchoSignOff(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	for i, code := range []string{"001", "301", "301", "002", "999"} {
		m := iso8583.NewMessage(specs.IssuerLink)
		m.MTI("0800")
		for id, v := range map[int]string{7: "0614123045", 11: fmt.Sprintf("%06d", i+1), 41: "SWITCH01", 70: code} {
			if err := m.Field(id, v); err != nil {
				t.Fatal(err)
			}
		}
		resp := send(t, c, m)
		want := "00"
		if code == "999" {
			want = "12"
		}
		if mti, _ := resp.GetMTI(); mti != "0810" || field(resp, 39) != want || field(resp, 70) != code {
			t.Fatalf("70=%s answered %s 39=%s 70=%s", code, mti, field(resp, 39), field(resp, 70))
		}
	}
	st := srv.Stats()
	if st.SignOns != 1 || st.Echoes != 2 || st.SignOffs != 1 || st.Requests["0800"] != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMagicAmountsChooseTheResponseCode(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	card := cards.MustLookup("4761739000000012")
	for i, code := range []string{"05", "51", "91"} {
		var n int64
		fmt.Sscan(code, &n)
		resp := send(t, c, terminalsim.NewPurchase(shop, card, cards.MagicAmountBase+n, "", 400+i))
		if got := field(resp, 39); got != code {
			t.Fatalf("magic amount for %s answered %s", code, got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, terminalsim.NewPurchase(shop, card, cards.NoResponseAmount, "", 410))
	if !errors.Is(err, context.DeadlineExceeded) || srv.Stats().Unanswered != 1 {
		t.Fatalf("no-response amount: err %v, unanswered %d", err, srv.Stats().Unanswered)
	}
}

func TestIssuerServesOnlyItsOwnCards(t *testing.T) {
	_, c := start(t, issuersim.Config{IssuerID: cards.BankA})
	if code := field(send(t, c, terminalsim.NewPurchase(shop, cards.MustLookup("5413330000000019"), 1000, "", 1)), 39); code != "14" {
		t.Fatalf("bank-b card at bank-a answered %s, want 14", code)
	}
	if code := field(send(t, c, terminalsim.NewPurchase(shop, cards.MustLookup("6226090000000014"), 1000, "", 2)), 39); code != "00" {
		t.Fatalf("bank-a card answered %s", code)
	}
	if _, err := issuersim.New(issuersim.Config{IssuerID: "bank-z"}); err == nil {
		t.Fatal("unknown issuer accepted")
	}
}

func TestCurrencyOtherThanTheAccountsIsNotPermitted(t *testing.T) {
	_, c := start(t, issuersim.Config{})
	if code := field(send(t, c, terminalsim.NewPurchase(shop, cards.MustLookup("4761730000000011"), 1000, cards.CNY, 1)), 39); code != "57" {
		t.Fatalf("answered %s, want 57", code)
	}
}

func TestPipelinedRequestsAreAnsweredAsEachCompletes(t *testing.T) {
	srv, c := start(t, issuersim.Config{Latency: time.Millisecond, Jitter: 5 * time.Millisecond})
	card := cards.MustLookup("6250019000000012")
	const inFlight = 200
	var wg sync.WaitGroup
	errs := make(chan error, inFlight)
	for i := range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := c.Send(ctx, terminalsim.NewPurchase(shop, card, 100, "", i+1))
			if err == nil && field(resp, 39) != "00" {
				err = fmt.Errorf("STAN %d answered %s", i+1, field(resp, 39))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := srv.Stats(); st.Requests["0200"] != inFlight || st.Connections != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnreadableMessageIsDroppedAndTheConnectionKeepsServing(t *testing.T) {
	srv, c := start(t, issuersim.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.SendRaw(ctx, []byte("02XXgarbage")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("garbage got %v", err)
	}
	if code := field(send(t, c, terminalsim.NewPurchase(shop, cards.MustLookup("4761730000000011"), 100, "", 9)), 39); code != "00" {
		t.Fatalf("purchase after garbage answered %s", code)
	}
	if srv.Stats().BadMessages != 1 {
		t.Fatalf("bad messages %d", srv.Stats().BadMessages)
	}
}
