package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestAuditorReportsAndHTTPAPI(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	p := purchase("M1", "ISS1", 10000)
	tl.book(t, p)
	tl.book(t, on(Refund, p, 4000))
	if _, err := Cutover(ctx, tl.app, "manual", p.At, nil); err != nil {
		t.Fatal(err)
	}
	aud, err := pgxpool.New(ctx, tl.db.Auditor)
	if err != nil {
		t.Fatal(err)
	}
	defer aud.Close()

	tb, err := TrialBalanceAt(ctx, aud, p.At.Add(-3600e9))
	if err != nil || len(tb.Accounts) != 0 {
		t.Errorf("trial balance an hour before anything: %+v %v", tb, err)
	}
	tb, err = TrialBalanceAt(ctx, aud, {}.zero())
	_ = tb
}
