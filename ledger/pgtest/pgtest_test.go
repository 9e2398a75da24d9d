package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/poswitch/poswitch/ledger/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func TestNewDatabaseIsMigratedAndIsolated(t *testing.T) {
	ctx := context.Background()
	a := pgtest.NewDatabase(t)
	b := pgtest.NewDatabase(t, pgtest.WithoutMigrations())
	if a.Name == b.Name {
		t.Fatalf("two tests got the same database %s", a.Name)
	}
	for _, tc := range []struct {
		url, query string
	}{
		{a.App, "SELECT count(*) FROM currency"},
		{a.Auditor, "SELECT count(*) FROM v_trial_balance"},
		{a.Owner, "SELECT count(*) FROM journal_entry"},
	} {
		conn, err := pgx.Connect(ctx, tc.url)
		if err != nil {
			t.Fatalf("connecting %s: %v", tc.url, err)
		}
		var n int
		if err := conn.QueryRow(ctx, tc.query).Scan(&n); err != nil {
			t.Errorf("%s as %s: %v", tc.query, tc.url, err)
		}
		conn.Close(ctx)
	}
	conn, err := pgx.Connect(ctx, b.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('journal_entry') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("WithoutMigrations database has a journal_entry table")
	}
}
