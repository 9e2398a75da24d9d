package ledger

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestAppRoleCannotChangeTheJournal(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	tl.book(t, purchase("M1", "ISS1", 1000))
	ctx := context.Background()
	for _, stmt := range []string{
		`UPDATE posting SET amount = amount + 1`,
		`DELETE FROM posting`,
		`TRUNCATE posting`,
		`UPDATE journal_entry SET amount = 1`,
		`DELETE FROM journal_entry`,
		`TRUNCATE journal_entry`,
		`DELETE FROM ledger_batch`,
		`UPDATE balance_rollup SET debit = 0`,
	} {
		if _, err := tl.app.Exec(ctx, stmt); err == nil {
			t.Errorf("%s as the app role succeeded", stmt)
		}
	}
	// Even the owner is stopped by the triggers (it would have to disable them first).
	if _, err := tl.owner.Exec(ctx, `UPDATE posting SET amount = amount`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("owner UPDATE of posting: %v, want the append-only refusal", err)
	}
	// An unbalanced entry is refused by the database itself.
	_, err := tl.app.Exec(ctx, `INSERT INTO posting (entry_id, seq, account, currency, amount, cycle_id)
	                            VALUES ('018f0000-0000-7000-8000-000000000001', 0, 'fee_income', '156', 5, 1)`)
	if err == nil || !strings.Contains(err.Error(), "does not balance") {
		t.Errorf("unbalanced insert: %v", err)
	}
}

func TestAuditorSeesOnlyViews(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	b := purchase("M1", "ISS1", 1000)
	b.IssuerSTAN, b.IssuerTime = "004711", "1124215959"
	tl.book(t, b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, tl.db.Auditor)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM v_postings`).Scan(&n); err != nil || n != 3 {
		t.Errorf("auditor reading v_postings: %d rows, %v", n, err)
	}
	if _, err := conn.Exec(ctx, `SELECT * FROM posting`); err == nil {
		t.Errorf("auditor read the posting table directly")
	}
	if _, err := conn.Exec(ctx, `INSERT INTO merchant (id) VALUES ('X')`); err == nil {
		t.Errorf("auditor wrote a merchant")
	}
	// The issuer trace and the store-and-forward queue are visible through views; the queue's table
	// (with its sealed PANs) is not.
	var stan, at string
	if err := conn.QueryRow(ctx, `SELECT issuer_stan, issuer_time FROM v_journal_entries WHERE txn_key = $1`, b.Key).Scan(&stan, &at); err != nil ||
		stan != b.IssuerSTAN || at != b.IssuerTime {
		t.Errorf("auditor reading the issuer trace: %q %q %v", stan, at, err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM v_saf_items`).Scan(&n); err != nil {
		t.Errorf("auditor reading v_saf_items: %v", err)
	}
	if _, err := conn.Exec(ctx, `SELECT * FROM saf_item`); err == nil {
		t.Errorf("auditor read the saf_item table directly")
	}
}

func TestVerifyPassesOnAnUntouchedLedgerAndRunsAsAuditor(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	for i := 0; i < 20; i++ {
		p := tl.book(t, purchase("M1", "ISS1", int64(1000+i)))
		_ = p
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, tl.db.Auditor)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rep, err := Verify(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Entries != 20 || rep.Postings != 60 {
		t.Fatalf("verify: %+v", rep)
	}
}

func TestVerifyDetectsAPostingEditedByTheOwner(t *testing.T) {
	ctx := context.Background()
	cases := map[string]string{
		"amount moved between accounts": `UPDATE posting SET amount = amount + 1 WHERE ctid = (SELECT min(ctid) FROM posting WHERE account = 'fee_income');
		     UPDATE posting SET amount = amount - 1 WHERE ctid = (SELECT min(ctid) FROM posting WHERE account LIKE 'merchant_payable:%')`,
		"posting deleted":      `DELETE FROM posting WHERE ctid = (SELECT min(ctid) FROM posting)`,
		"entry amount changed": `UPDATE journal_entry SET amount = amount + 100 WHERE ctid = (SELECT min(ctid) FROM journal_entry)`,
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			tl := newTestLedger(t, WriterConfig{})
			for i := 0; i < 10; i++ {
				tl.book(t, purchase("M1", "ISS1", int64(1000+i)))
			}
			tx, err := tl.owner.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{`ALTER TABLE posting DISABLE TRIGGER USER`, `ALTER TABLE journal_entry DISABLE TRIGGER USER`, edit,
				`ALTER TABLE posting ENABLE TRIGGER USER`, `ALTER TABLE journal_entry ENABLE TRIGGER USER`} {
				if _, err := tx.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			conn, err := pgx.Connect(ctx, tl.db.Auditor)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			rep, err := Verify(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("verify missed the edit %q", name)
			}
			t.Logf("first divergence: %s", rep.Problems[0])
		})
	}
}
