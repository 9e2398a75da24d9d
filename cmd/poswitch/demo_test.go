package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/txn"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// TestDemoApprovesAndDeclinesOverEveryListener runs `poswitch demo` for a few seconds on free ports
// against a real PostgreSQL and checks what `make run` promises: every way of paying approved at
// least once and the catalogue's declines on each of the three dialects, every answer as expected,
// every approval booked, receipts, e-signatures stored, ARPCs the cards accept, MACed traffic, and a
// configuration file that loads.
func TestDemoApprovesAndDeclinesOverEveryListener(t *testing.T) {
	cluster := pgtest.Cluster(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	db := "demo_" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		if err := dropDatabase(context.Background(), cluster, db); err != nil {
			t.Error(err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := runDemo(ctx, demoOptions{
		Dir: t.TempDir(), PGDir: cluster.Dir, Database: db, Rate: 60, Receipts: true, LogLevel: "error",
		Duration: 5 * time.Second, Cards: "all", Seed: 1, IssuerPort: 0, SwitchPort: 0, PGPort: 0,
	}, &out, nil)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := res.Summary
	if s.Codes[cards.Approved] == 0 {
		t.Errorf("no purchase approved: %v\n%s", s, out.String())
	}
	declined := s.Answered - s.Codes[cards.Approved]
	if declined == 0 {
		t.Errorf("no purchase declined: %v", s)
	}
	if s.Mismatches != 0 || s.Timeouts != 0 || s.Errors != 0 || s.Answered != s.Sent {
		t.Errorf("answers differ from the catalogue or went missing: %v", s)
	}
	for _, l := range []string{"iso87a", "iso87a-bb", "iso87b"} {
		if res.PerLane[l] == 0 {
			t.Errorf("listener %s answered nothing: %v", l, res.PerLane)
		}
	}
	if res.Booked != res.PurchaseApprovals || res.PurchaseApprovals == 0 {
		t.Errorf("ledger booked %d purchases, terminals were told %d purchase approvals", res.Booked, res.PurchaseApprovals)
	}
	// Every way of paying shows in the summary with at least one approval.
	for _, way := range demoWayOrder {
		w, ok := res.Ways[way]
		if !ok || w.codes[cards.Approved] == 0 {
			t.Errorf("way %q: %+v, want at least one approval", way, w)
		}
		if !strings.Contains(out.String(), "    "+way+" ") {
			t.Errorf("summary lacks the line of way %q", way)
		}
	}
	if n := res.Ways[wayTapOver].codes[txn.RCInsertCard]; n == 0 {
		t.Errorf("no tap above the no-CVM limit was asked for the chip: %+v", res.Ways[wayTapOver])
	}
	ch := res.Channels
	if ch.sigUploads["00"] == 0 || ch.sigUploads["00"] != ch.sigRequired || res.SignaturesStored != ch.sigUploads["00"] {
		t.Errorf("e-signatures: %d needed, uploads %v, %d stored in the ledger", ch.sigRequired, ch.sigUploads, res.SignaturesStored)
	}
	if ch.noSig == 0 {
		t.Errorf("no approval without a signature")
	}
	if ch.arpcs == 0 || ch.arpcsValid != ch.arpcs {
		t.Errorf("ARPCs: %d carried, %d accepted by the cards", ch.arpcs, ch.arpcsValid)
	}
	if ch.maced == 0 || ch.macErrors != 0 {
		t.Errorf("MAC: %d requests MACed, %d answers failed", ch.maced, ch.macErrors)
	}
	if ch.ordersPaid == 0 || ch.ordersReleased != 0 {
		t.Errorf("orders: %d paid, %d released", ch.ordersPaid, ch.ordersReleased)
	}
	if res.WalletStats["alipay"].Repayments == 0 || res.WalletStats["wechat"].Payments == 0 || res.WalletStats["unionpay-qr"].Payments == 0 {
		t.Errorf("wallet-sims saw %+v", res.WalletStats)
	}
	// Besides purchases the traffic carries the rest of the message set, each answered.
	if len(res.Flows) < 3 {
		t.Errorf("other messages: %v", res.Flows)
	}
	for kind, codes := range res.Flows {
		if codes["differing answer"] > 0 || codes["no answer"] > 0 || codes["30"] > 0 || codes["96"] > 0 {
			t.Errorf("%s: %v", kind, codes)
		}
		// A wallet refund of a payment just approved is approved: the wallet finds the original.
		if (kind == "QR refund" || kind == "QR order refund") && len(codes) != 1 {
			t.Errorf("%s answered other than 00: %v", kind, codes)
		}
	}
	if !strings.Contains(res.SAF, "0 pending") {
		t.Errorf("store-and-forward did not drain: %s", res.SAF)
	}
	text := out.String()
	for _, want := range []string{"00 APPROVED", "demo summary:", "per listener:", "NO SIG", "QR ALIPAY HUABEI 0", "e-signature 00",
		"1A INSERT CARD", "chip+PIN", "fallback", "swipe", "JPY", "KWD", "ways of paying"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "4761730000000011") {
		t.Errorf("output holds a clear PAN")
	}
	cfg, err := config.Load(res.ConfigPath)
	if err != nil {
		t.Fatalf("the demo's configuration does not load: %v", err)
	}
	if len(cfg.Channels.Billers) != 1 || cfg.Channels.Orders.NotifyAddress == "" || cfg.Channels.NoCVMLimits["840"] != 5000 {
		t.Errorf("the demo's channels section: %+v", cfg.Channels)
	}
}

// TestBenchEstateKeepsItsPlainConfiguration starts the estate as `poswitch bench` does and checks it
// has none of the demo's channels, so bench figures stay comparable: no wallets, no master-key
// terminals, no channels section, the two currencies, and a plain purchase of a chip card (no
// cryptogram) approved because the issuers do not check chip data.
func TestBenchEstateKeepsItsPlainConfiguration(t *testing.T) {
	cluster := pgtest.Cluster(t)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	db := "bench_" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		if err := dropDatabase(context.Background(), cluster, db); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	owner, app, err := ledgerDatabase(ctx, cluster, db, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lmk := filepath.Join(dir, "dev.lmk")
	if _, err := ensureDevLMK(lmk); err != nil {
		t.Fatal(err)
	}
	terms := terminalsim.DefaultTerminals(8)
	est, err := startEstate(ctx, estateSpec{
		ConfigPath: filepath.Join(dir, "bench.yaml"), WrittenBy: "bench", OwnerURL: owner, AppURL: app, LMKFile: lmk,
		PINPads:   true,
		Listeners: []listenerSpec{{Name: "iso87a", Dialect: "iso87a"}},
		Terminals: terms, LogFormat: "json", LogLevel: "error",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer est.Close()
	y, err := os.ReadFile(filepath.Join(dir, "bench.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, unwanted := range []string{"channels:", "wallet: true", "payment_codes", "tmk:", "mac:", "notify_key", `"392"`} {
		if strings.Contains(string(y), unwanted) {
			t.Errorf("bench configuration holds %q:\n%s", unwanted, y)
		}
	}
	if !strings.Contains(string(y), `currencies: ["156", "840"]`) {
		t.Errorf("bench merchants' currencies changed:\n%s", y)
	}
	if len(est.wallets) != 0 || len(est.keys.TerminalKeys()) != 0 {
		t.Errorf("bench estate has %d wallets and %d master-key terminals", len(est.wallets), len(est.keys.TerminalKeys()))
	}
	c, err := terminalsim.Dial(ctx, est.stack.ListenerAddr("iso87a"), "iso87a", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	card := cards.MustLookup("4761739000000012") // a load card, as the bench buys with
	for stan := 1; stan <= 8; stan++ {           // chip reads and taps (every fourth) alike
		resp, err := c.Send(ctx, terminalsim.NewPurchase(terms[0], card, 1000, "", stan))
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := resp.GetString(39); code != cards.Approved {
			t.Fatalf("plain purchase %d answered %s: the bench's issuers must not check chip data", stan, code)
		}
	}
}
