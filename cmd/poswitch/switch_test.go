package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/switch/config"
)

// waitLog waits for a log line; the bound only keeps a broken build from hanging.
func waitLog(t *testing.T, logs *observer.ObservedLogs, snippet string) observer.LoggedEntry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got := logs.FilterMessageSnippet(snippet).All(); len(got) > 0 {
			return got[len(got)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q", snippet)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSIGHUPReloadsRoutesAndABadFileIsRefusedByLine(t *testing.T) {
	db := pgtest.NewDatabase(t)
	is, err := issuersim.New(issuersim.Config{IssuerID: cards.BankA})
	if err != nil {
		t.Fatal(err)
	}
	if err := is.Start(); err != nil {
		t.Fatal(err)
	}
	defer is.Close()
	base := fmt.Sprintf(`database:
  url: %q
  owner_url: %q
listeners:
  - name: pos
    address: 127.0.0.1:0
    dialect: iso87a
issuers:
  - id: bank-a
    endpoints: [%s]
merchants:
  - id: M1
terminals:
  - id: T1
    merchant: M1
routes:
  - prefix: "62"
    issuer: bank-a
`, db.App, db.Owner, is.Addr())
	path := filepath.Join(t.TempDir(), "switch.yaml")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(base)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runSwitch(ctx, cfg, zap.New(core)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitLog(t, logs, "switch running") // SIGHUP is caught from here on

	write(base + "  - range: \"622126-622925\"\n    issuer: bank-a\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := waitLog(t, logs, "configuration reloaded").ContextMap()["routes"]; got != int64(2) {
		t.Errorf("reloaded %v routes, want 2", got)
	}

	write(base + "  - range: \"622126-622925\"\n    issuer: bank-a\n  - range: \"622900-622999\"\n    issuer: bank-a\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	refused, _ := waitLog(t, logs, "reload refused").ContextMap()["error"].(string)
	if want := path + ":21: routes[2].range: 622900-622999 overlaps 622126-622925"; !strings.HasPrefix(refused, want) {
		t.Errorf("refusal %q, want it to start %q", refused, want)
	}
}
