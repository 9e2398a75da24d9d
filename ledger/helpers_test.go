package ledger

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/poswitch/poswitch/ledger/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// testLedger is a migrated database with a running writer connected as the application role.
type testLedger struct {
	db    pgtest.DB
	app   *pgxpool.Pool
	owner *pgxpool.Pool
	w     *Writer
	stop  func()
}

func newTestLedger(t *testing.T, cfg WriterConfig) *testLedger {
	t.Helper()
	db := pgtest.NewDatabase(t)
	ctx := context.Background()
	app, err := pgxpool.New(ctx, db.App)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := pgxpool.New(ctx, db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Chain == "" {
		cfg.Chain = "test"
	}
	w := NewWriter(app, cfg, zaptest.NewLogger(t))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	tl := &testLedger{db: db, app: app, owner: owner, w: w}
	var stopped atomic.Bool
	tl.stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("writer Run: %v", err)
		}
	}
	t.Cleanup(func() {
		tl.stop()
		app.Close()
		owner.Close()
	})
	return tl
}

func (tl *testLedger) book(t *testing.T, b Booking) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := tl.w.Book(ctx, b)
	if err != nil {
		t.Fatalf("booking %s: %v", b.Key, err)
	}
	return res
}

// balance is an account's balance computed from its postings (not the rollups).
func (tl *testLedger) balance(t *testing.T, account, cur string) int64 {
	t.Helper()
	var n int64
	if err := tl.owner.QueryRow(context.Background(),
		`SELECT COALESCE(sum(amount), 0) FROM posting WHERE account = $1 AND currency = $2`, account, cur).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var keySeq atomic.Int64

func purchase(merchant, issuer string, amount int64) Booking {
	n := keySeq.Add(1)
	return Booking{Key: fmt.Sprintf("acq|T1|%06d|%d|02|rrn%d", n%1000000, n, n), Kind: Purchase, Merchant: merchant,
		Terminal: "T1", Issuer: issuer, Currency: "156", Amount: amount, STAN: fmt.Sprintf("%06d", n%1000000),
		RRN: fmt.Sprintf("%012d", n), PANMasked: "622848******1234", PANHash: []byte("hash"), At: time.Now()}
}

func on(kind Kind, orig Booking, amount int64) Booking {
	n := keySeq.Add(1)
	return Booking{Key: fmt.Sprintf("acq|T1|%06d|%d|%s|rrn%d", n%1000000, n, kind, n), Kind: kind, OriginalKey: orig.Key,
		Merchant: orig.Merchant, Terminal: orig.Terminal, Currency: orig.Currency, Amount: amount,
		STAN: fmt.Sprintf("%06d", n%1000000), RRN: fmt.Sprintf("%012d", n), At: time.Now()}
}
