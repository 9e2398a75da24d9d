package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

// TestNoTableOrLogHoldsCardDataAfterEveryWayOfPaying pays by swipe (track 2), chip, wallet payment
// code and Huabei repayment, uploads an e-signature and lets the store-and-forward queue deliver the
// repayment advice (field 2 sealed under an HSM data key); then it reads every row of every table in
// the ledger database, as the owner, and every log line: none may hold a clear PAN, track 2, payment
// code or the wallet account a repayment names, as text or as hex of its bytes.
func TestNoTableOrLogHoldsCardDataAfterEveryWayOfPaying(t *testing.T) {
	s, wallets := startWalletStack(t, &walletClock{})
	term := s.terminals[0]
	c := s.dial("iso87a", "iso87a", false)
	stan := 100
	next := func() int { stan++; return stan }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	swipe := approvedSwipeCard(t)
	chip := approvedCard(t, cards.BankA, "")
	secrets := []string{swipe.PAN, swipe.Track2(), chip.PAN, chip.Track2()}

	swiped := terminalsim.NewPurchase(term, swipe, 4_200, "", next())
	if rc := fieldOf(mustExchange(t, c, swiped), 39); rc != "00" {
		t.Fatalf("swiped purchase answered %s", rc)
	}
	if rc, err := terminalsim.UploadSignature(ctx, c, term, swiped, terminalsim.SignatureImage(7), next()); err != nil || rc != "00" {
		t.Fatalf("signature upload: %s %v", rc, err)
	}
	if rc := fieldOf(mustExchange(t, c, terminalsim.NewPurchase(term, chip, 3_100, "156", next())), 39); rc != "00" {
		t.Fatalf("chip purchase answered %s", rc)
	}
	code, err := wallets["alipay"].NewPaymentCode("2088000000000001")
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, code)
	if rc := fieldOf(mustExchange(t, c, terminalsim.NewQRPurchase(term, code, 2_500, "156", 3, next())), 39); rc != "00" {
		t.Fatalf("QR purchase answered %s", rc)
	}
	const account = "2088000000000002"
	secrets = append(secrets, account)
	if rc := fieldOf(mustExchange(t, c, terminalsim.NewHuabeiRepayment(term, chip, account, 50_000, "156", next())), 39); rc != "00" {
		t.Fatalf("repayment answered %s", rc)
	}
	waitQueueEmpty(t, s)
	if st := wallets["alipay"].Stats(); st.Repayments != 1 {
		t.Fatalf("the wallet applied %d repayments, want 1: the advice (and its sealed field 2) did not arrive", st.Repayments)
	}

	dump := databaseText(t, s)
	for _, want := range []string{cards.MaskPAN(swipe.PAN), cards.MaskPAN(code)} {
		if !strings.Contains(dump, want) {
			t.Fatalf("the database has no %q: the scan below would prove nothing", want)
		}
	}
	var logs strings.Builder
	for _, e := range s.logs.All() {
		fmt.Fprintf(&logs, "%s %v\n", e.Message, e.ContextMap())
	}
	for _, secret := range secrets {
		asHex := hex.EncodeToString([]byte(secret))
		for where, text := range map[string]string{"the database": dump, "the logs": logs.String()} {
			if strings.Contains(text, secret) || strings.Contains(strings.ToLower(text), asHex) {
				t.Errorf("%s holds %s in clear", where, cards.MaskPAN(secret))
			}
		}
	}
}

// approvedSwipeCard is an approved magstripe-only card (service code 1xx): terminal-sim swipes it, so
// its request carries track 2.
func approvedSwipeCard(t *testing.T) cards.Card {
	t.Helper()
	for _, c := range cards.IssuerDecided() {
		if c.Outcome == cards.Approved && strings.HasPrefix(c.ServiceCode, "1") {
			return c
		}
	}
	t.Fatal("no approved magstripe-only card in the catalogue")
	return cards.Card{}
}

// databaseText is every row of every table of the ledger database as JSON text, read as the owner.
func databaseText(t *testing.T, s *stack) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 5 {
		t.Fatalf("listing tables: %v (%d)", err, len(tables))
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, "SELECT row_to_json(x)::text FROM "+table+" x")
		if err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		for _, r := range texts {
			b.WriteString(r)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
