package ledgerbench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/poswitch/poswitch/ledger/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// TestRunReportsAllThreePhases runs a small bench; the figures themselves are for BenchmarkLedger
// and `make bench`, never asserted here.
func TestRunReportsAllThreePhases(t *testing.T) {
	db := pgtest.NewDatabase(t)
	rep, err := Run(context.Background(), db.Owner, db.App, Options{Transactions: 2000, Concurrency: 50, NaiveDuration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RawCopy.Postings != 6000 || rep.Writer.Transactions != 2000 || rep.Writer.Postings != 6000 || rep.Naive.Transactions == 0 {
		t.Errorf("unexpected counts:\n%s", rep)
	}
	t.Log("\n" + rep.String())
}

// BenchmarkLedger runs the full comparison once (b.N is ignored: one run is ~15 s).
func BenchmarkLedger(b *testing.B) {
	db := pgtest.NewDatabase(b)
	rep, err := Run(context.Background(), db.Owner, db.App, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.Writer.TxnPerSec(), "txn/s")
	b.ReportMetric(rep.VsRawCopy(), "x-rawcopy")
	b.ReportMetric(rep.VsNaive(), "x-naive")
	b.Log("\n" + rep.String())
}
