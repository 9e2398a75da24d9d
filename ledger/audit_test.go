package ledger

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestAuditorReportsRunOnTheAuditorRole(t *testing.T) {
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

	tb, err := TrialBalanceAt(ctx, aud, time.Now().Add(-time.Hour))
	if err != nil || len(tb.Accounts) != 0 {
		t.Errorf("trial balance an hour before anything: %+v %v", tb, err)
	}
	tb, err = TrialBalanceAt(ctx, aud, time.Time{})
	if err != nil || len(tb.Totals) != 1 || tb.Totals[0].Difference != 0 || tb.Totals[0].Debits == 0 {
		t.Errorf("trial balance now: %+v %v", tb, err)
	}
	st, err := Statement(ctx, aud, MerchantPayable("M1"), "156", 0)
	if err != nil || len(st) != 3 || st[0].Amount != -9940 || st[1].Balance != -5940 || st[2].Balance != 0 {
		t.Errorf("merchant statement: %+v %v", st, err)
	}
	es, err := Transactions(ctx, aud, TxnQuery{RRN: p.RRN})
	if err != nil || len(es) != 2 || es[0].Kind != "purchase" || es[1].Kind != "refund" || len(es[0].Postings) != 3 {
		t.Errorf("life cycle by RRN: %+v %v", es, err)
	}
	es, err = Transactions(ctx, aud, TxnQuery{Terminal: "T1", STAN: p.STAN})
	if err != nil || len(es) != 2 {
		t.Errorf("life cycle by terminal and STAN: %d entries, %v", len(es), err)
	}
	rep, err := SettlementReport(ctx, aud, 0)
	if err != nil || rep.Cycle != 1 || len(rep.Payouts) != 1 || rep.Payouts[0].Net != 5940 {
		t.Errorf("settlement: %+v %v", rep, err)
	}
	fees, err := FeeReport(ctx, aud, 1)
	if err != nil || len(fees) != 1 || fees[0].Charged != 60 || fees[0].Net != 60 {
		t.Errorf("fees: %+v %v", fees, err)
	}
	var buf bytes.Buffer
	if err := Export(ctx, aud, &buf, "postings", "csv", 0); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 1+3+2+2+2 || recs[0][0] != "entry_id" { // header, purchase, refund, payout, 2 issuer lines
		t.Errorf("CSV export: %d records, %v", len(recs), err)
	}
}

func TestAuditHTTPAPIWantsTheTokenAndServesJSON(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	ctx := context.Background()
	p := purchase("M1", "ISS1", 10000)
	tl.book(t, p)
	aud, err := pgxpool.New(ctx, tl.db.Auditor)
	if err != nil {
		t.Fatal(err)
	}
	defer aud.Close()
	if _, err := NewAuditHandler(aud, "short", nil); err == nil {
		t.Error("a 5-character token was accepted")
	}
	const token = "test-token-0123456789"
	h, err := NewAuditHandler(aud, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, c := range []struct {
		path, token string
		status      int
		contains    string
	}{
		{"/v1/trial-balance", "", 401, "bearer"},
		{"/v1/trial-balance", "wrong-token-0123456789", 401, "bearer"},
		{"/v1/trial-balance", token, 200, `"difference": 0`},
		{"/v1/trial-balance?at=yesterday", token, 400, "RFC 3339"},
		{"/v1/txns?rrn=" + p.RRN, token, 200, `"kind": "purchase"`},
		{"/v1/txns", token, 400, "rrn"},
		{"/v1/statement?account=fee_income", token, 200, `"amount": -60`},
		{"/v1/verify", token, 200, `"problems": null`},
		{"/v1/fees", token, 200, `"charged": 60`},
		{"/v1/settlement/1", token, 200, `"open": true`},
		{"/v1/settlement/7", token, 404, "no such settlement cycle"},
		{"/v1/settlement/x", token, 400, "not a non-negative number"},
		{"/v1/export?table=entries&format=json", token, 200, p.Key},
		{"/v1/export?format=xml", token, 400, "format"},
		{"/healthz", "", 200, "ok"},
	} {
		status, body := get(c.path, c.token)
		if status != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: %d %q, want %d containing %q", c.path, status, body, c.status, c.contains)
		}
	}
	_, body := get("/v1/verify", token)
	var rep VerifyReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil || !rep.OK() || rep.Entries != 1 {
		t.Errorf("verify JSON: %+v %v", rep, err)
	}
}
