package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/switch/config"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// TestDemoApprovesAndDeclinesOverEveryListener runs `poswitch demo` for a few seconds on free ports
// against a real PostgreSQL and checks what `make run` promises: purchases approved and declined on
// each of the three dialects, every answer as the test-card catalogue says, every approval booked,
// and a configuration file that loads.
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
		Duration: 3 * time.Second, Cards: "all", Seed: 1,
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
	if res.Booked != s.Codes[cards.Approved] {
		t.Errorf("ledger booked %d purchases, terminals were told %d approvals", res.Booked, s.Codes[cards.Approved])
	}
	// Besides purchases the traffic carries the rest of the message set, each answered.
	if len(res.Flows) < 3 {
		t.Errorf("other messages: %v", res.Flows)
	}
	for kind, codes := range res.Flows {
		if codes["differing answer"] > 0 || codes["no answer"] > 0 || codes["30"] > 0 || codes["96"] > 0 {
			t.Errorf("%s: %v", kind, codes)
		}
	}
	if !strings.Contains(res.SAF, "0 pending") {
		t.Errorf("store-and-forward did not drain: %s", res.SAF)
	}
	text := out.String()
	for _, want := range []string{"00 APPROVED", "demo summary:", "per listener:"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "4761730000000011") {
		t.Errorf("output holds a clear PAN")
	}
	if _, err := config.Load(res.ConfigPath); err != nil {
		t.Errorf("the demo's configuration does not load: %v", err)
	}
}
