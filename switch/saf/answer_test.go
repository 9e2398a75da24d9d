package saf_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/switch/saf"
)

func TestAcknowledgedDecidesByKindAndResponseCode(t *testing.T) {
	for _, c := range []struct {
		kind saf.Kind
		rc   string
		ok   bool
	}{
		{saf.KindAdvice, "00", true},
		{saf.KindAdvice, "51", true}, // an issuer cannot decline what the switch already approved
		{saf.KindAdvice, "05", true},
		{saf.KindAdvice, "30", false},
		{saf.KindAdvice, "12", false},
		{saf.KindAdvice, "14", false},
		{saf.KindAdvice, "96", false},
		{saf.KindAdvice, "", false},
		{saf.KindReversal, "00", true},
		{saf.KindReversal, "12", true}, // nothing of that original to undo
		{saf.KindReversal, "14", true},
		{saf.KindReversal, "25", true},
		{saf.KindReversal, "30", false},
		{saf.KindReversal, "96", false},
		{saf.KindReversal, "", false},
	} {
		ok, why := saf.Acknowledged(c.kind, c.rc)
		if ok != c.ok || (ok && why != "") || (!ok && why == "") {
			t.Errorf("%s answered %q: acknowledged %v (%q), want %v", c.kind, c.rc, ok, why, c.ok)
		}
	}
}

// issuer-sim answers an advice without field 2 with 30 and one for a card it does not know with
// 14: neither was posted, so both are flagged for an operator at their first answer (no repeats),
// logged at error without card data, while a good advice and a reversal of an original the issuer
// never saw (answered 00) are done.
func TestAdviceTheIssuerCannotProcessIsFlaggedForAnOperatorNotDone(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srv := startSim(t, issuersim.Faults{})
	link := startLink(t, srv.Addr(), time.Second, true)
	v := hsm.NewDevelopment()
	core, logs := observer.New(zapcore.DebugLevel)
	q := saf.NewQueue(pgtest.Pool(t, db.App), saf.Config{PollInterval: 10 * time.Millisecond, Opener: v}, zap.New(core))
	ctx := context.Background()

	noPAN := standInAdvice(t, v, "001101", "0102030405", 100)
	noPAN.PANSealed = nil
	const unknownPAN = "4761739999999999"
	unknownCard := standInAdvice(t, v, "001102", "0102030405", 200)
	sealed, err := v.SealPAN(unknownPAN)
	if err != nil {
		t.Fatal(err)
	}
	unknownCard.PANSealed, unknownCard.PANMasked = sealed, "476173******9999"
	good := standInAdvice(t, v, "001103", "0102030405", 300)
	ghost := reversal("001104", "0102030405", 400)
	for _, it := range []saf.Item{noPAN, unknownCard, good, ghost} {
		if err := q.Enqueue(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	stop := running(q, map[string]saf.Sender{issuer: link})
	waitFor(t, "every item to be settled", func() bool { st := stats(t, q); return st.Done+st.Operator == 4 })
	stop()

	got := map[string]saf.Record{}
	for _, r := range list(t, q) {
		got[r.OrigSTAN] = r
	}
	for _, c := range []struct {
		stan, rc, why string
		status        saf.Status
	}{
		{"001101", "30", "format error", saf.StatusOperator},
		{"001102", "14", "invalid card", saf.StatusOperator},
		{"001103", "00", "", saf.StatusDone},
		{"001104", "00", "", saf.StatusDone},
	} {
		r := got[c.stan]
		if r.Status != c.status || r.LastResponse != c.rc || r.Attempts != 1 || !strings.Contains(r.LastError, c.why) {
			t.Errorf("item %s: status %s, answered %q after %d attempts (%q); want %s, %s, once", c.stan, r.Status,
				r.LastResponse, r.Attempts, r.LastError, c.status, c.rc)
		}
	}
	if st := stats(t, q); st.Refused != 2 || st.Flagged != 2 || st.Answered != 2 {
		t.Errorf("stats %+v: want 2 refused (flagged) and 2 answered", st)
	}
	if req := srv.Stats().Requests; req["0220"] != 3 || req["0221"] != 0 || req["0420"] != 1 {
		t.Errorf("issuer-sim requests %v: want three advices and one reversal, no repeats", req)
	}

	flagged := logs.FilterMessage("store-and-forward: the issuer could not process the message; flagged for an operator").All()
	if len(flagged) != 2 {
		t.Fatalf("%d operator lines logged, want 2", len(flagged))
	}
	for _, e := range flagged {
		f := e.ContextMap()
		if e.Level != zapcore.ErrorLevel || f["issuer"] != issuer || f["kind"] != "advice" || f["orig_time"] != "0102030405" ||
			(f["orig_stan"] != "001101" && f["orig_stan"] != "001102") || (f["rc"] != "30" && f["rc"] != "14") {
			t.Errorf("operator line %s %v: want error level with issuer, kind, original STAN and time, and the code", e.Level, f)
		}
	}
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, card.PAN) || strings.Contains(line, unknownPAN) {
			t.Errorf("a log line holds a clear PAN: %s", line)
		}
	}
}
