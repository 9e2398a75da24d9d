// Package ledgerbench measures the ledger writer against two baselines in one process, on one
// database: a raw COPY of the same postings (the ceiling: no rules, no idempotency, no seals) and a
// naive writer — the same writer with one booking per PostgreSQL transaction (what group commit
// replaces). `make bench` prints Report.String(). Use a scratch database: the raw COPY's table is
// dropped afterwards, but the writers' purchases stay.
package ledgerbench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger"
)

// Options bound a run. Zero values take the defaults.
type Options struct {
	Transactions     int           // purchases for the raw COPY and the writer; default 100000
	Concurrency      int           // goroutines calling Book; default 1000
	NaiveDuration    time.Duration // how long the naive writer runs; default 5s
	NaiveConnections int           // its transactions in flight (flushers); default the writer's Flushers
	Writer           ledger.WriterConfig
	Log              *zap.Logger
}

func (o Options) withDefaults() Options {
	if o.Transactions <= 0 {
		o.Transactions = 100_000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1000
	}
	if o.NaiveDuration <= 0 {
		o.NaiveDuration = 5 * time.Second
	}
	if o.NaiveConnections <= 0 {
		o.NaiveConnections = o.Writer.Flushers
		if o.NaiveConnections <= 0 {
			o.NaiveConnections = ledger.DefaultFlushers
		}
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	return o
}

// Phase is one measured run.
type Phase struct {
	Name         string
	Transactions int
	Postings     int
	Elapsed      time.Duration
	Batches      int
	CommitP50    time.Duration // per batch (raw COPY, writer) or per transaction (naive)
	CommitP99    time.Duration
	BookP50      time.Duration // what a caller of Book waits (writer and naive only)
	BookP99      time.Duration
	Note         string
}

// TxnPerSec is transactions per second.
func (p Phase) TxnPerSec() float64 { return float64(p.Transactions) / p.Elapsed.Seconds() }

// PostingsPerSec is postings per second.
func (p Phase) PostingsPerSec() float64 { return float64(p.Postings) / p.Elapsed.Seconds() }

// MeanBatch is transactions per commit.
func (p Phase) MeanBatch() float64 {
	if p.Batches == 0 {
		return 0
	}
	return float64(p.Transactions) / float64(p.Batches)
}

// Report is a whole run.
type Report struct {
	RawCopy, Writer, Naive Phase
}

// VsRawCopy is the writer's postings/s over the raw COPY's (target ≥ 0.5).
func (r Report) VsRawCopy() float64 { return r.Writer.PostingsPerSec() / r.RawCopy.PostingsPerSec() }

// VsNaive is the writer's transactions/s over the naive writer's (target ≥ 10).
func (r Report) VsNaive() float64 { return r.Writer.TxnPerSec() / r.Naive.TxnPerSec() }

// String is the table `make bench` prints.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ledger write throughput (one process, one PostgreSQL, fsync on)\n")
	fmt.Fprintf(&b, "%-22s %10s %12s %10s %11s %11s %11s %11s\n", "", "txn/s", "postings/s", "txn/commit", "commit p50", "commit p99", "book p50", "book p99")
	for _, p := range []Phase{r.RawCopy, r.Writer, r.Naive} {
		fmt.Fprintf(&b, "%-22s %10.0f %12.0f %10.1f %11s %11s %11s %11s\n", p.Name, p.TxnPerSec(), p.PostingsPerSec(), p.MeanBatch(),
			round(p.CommitP50), round(p.CommitP99), round(p.BookP50), round(p.BookP99))
	}
	fmt.Fprintf(&b, "writer / raw COPY (postings/s): %.2f   (target ≥ 0.5)\n", r.VsRawCopy())
	fmt.Fprintf(&b, "writer / naive     (txn/s):      %.1f    (target ≥ 10)\n", r.VsNaive())
	for _, p := range []Phase{r.RawCopy, r.Writer, r.Naive} {
		if p.Note != "" {
			fmt.Fprintf(&b, "  %s: %s\n", p.Name, p.Note)
		}
	}
	return b.String()
}

func round(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}

// Run migrates the database, then runs the three phases one after the other.
func Run(ctx context.Context, ownerURL, appURL string, opts Options) (Report, error) {
	o := opts.withDefaults()
	var rep Report
	if err := ledger.Migrate(ctx, ownerURL); err != nil {
		return rep, err
	}
	owner, err := pgxpool.New(ctx, ownerURL)
	if err != nil {
		return rep, fmt.Errorf("connecting as owner: %w", err)
	}
	defer owner.Close()
	cfg, err := pgxpool.ParseConfig(appURL)
	if err != nil {
		return rep, fmt.Errorf("parsing app URL: %w", err)
	}
	cfg.MaxConns = 8
	app, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return rep, fmt.Errorf("connecting as app: %w", err)
	}
	defer app.Close()
	batchSize := o.Writer.MaxBatchBookings
	if batchSize <= 0 {
		batchSize = 2000
	}
	if rep.RawCopy, err = rawCopy(ctx, owner, o.Transactions, batchSize); err != nil {
		return rep, err
	}
	if rep.Writer, err = groupWriter(ctx, app, o); err != nil {
		return rep, err
	}
	if rep.Naive, err = naive(ctx, app, o); err != nil {
		return rep, err
	}
	return rep, nil
}

// purchasePostings is the purchase rule's three lines, as rows for COPY into posting.
func purchasePostings(id [16]byte, n int, cycle int64) [][]any {
	amount := int64(1000 + n%100000)
	fee := ledger.Fee(amount, ledger.FeeRule{BP: ledger.DefaultFeeBP})
	issuer := fmt.Sprintf("issuer_receivable:ISS%d", n%8)
	merchant := fmt.Sprintf("merchant_payable:M%04d", n%500)
	return [][]any{
		{id, int16(0), issuer, "156", amount, cycle},
		{id, int16(1), merchant, "156", -(amount - fee), cycle},
		{id, int16(2), "fee_income", "156", -fee, cycle},
	}
}

type idGen struct{ n atomic.Uint64 }

// next is a time-ordered id like the writer's UUIDv7s, so both write the same index shape.
func (g *idGen) next() [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[0:8], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(id[8:16], g.n.Add(1))
	_, _ = rand.Read(id[12:16])
	return id
}

// rawCopy COPYs the purchases' postings into a table shaped like posting (same columns and
// indexes, no triggers), one commit per batch of the writer's batch size.
func rawCopy(ctx context.Context, owner *pgxpool.Pool, txns, batchSize int) (Phase, error) {
	p := Phase{Name: "raw COPY", Transactions: txns, Note: "postings only, into a copy of the posting table (same indexes)"}
	if _, err := owner.Exec(ctx, `DROP TABLE IF EXISTS bench_raw_posting; CREATE TABLE bench_raw_posting (LIKE posting INCLUDING ALL)`); err != nil {
		return p, fmt.Errorf("raw COPY: creating table: %w", err)
	}
	defer owner.Exec(context.Background(), `DROP TABLE IF EXISTS bench_raw_posting`)
	var g idGen
	hist := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	start := time.Now()
	for done := 0; done < txns; {
		n := min(batchSize, txns-done)
		rows := make([][]any, 0, 3*n)
		for i := 0; i < n; i++ {
			rows = append(rows, purchasePostings(g.next(), done+i, 1)...)
		}
		t0 := time.Now()
		err := pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"bench_raw_posting"}, []string{"entry_id", "seq", "account", "currency", "amount", "cycle_id"}, pgx.CopyFromRows(rows))
			return err
		})
		if err != nil {
			return p, fmt.Errorf("raw COPY: %w", err)
		}
		_ = hist.RecordValue(time.Since(t0).Microseconds())
		p.Batches++
		p.Postings += len(rows)
		done += n
	}
	p.Elapsed = time.Since(start)
	p.CommitP50 = time.Duration(hist.ValueAtQuantile(50)) * time.Microsecond
	p.CommitP99 = time.Duration(hist.ValueAtQuantile(99)) * time.Microsecond
	return p, nil
}

func bookingFor(prefix string, n int) ledger.Booking {
	return ledger.Booking{
		Key: fmt.Sprintf("%s|T%04d|%06d|%d|02", prefix, n%2000, n%1000000, n), Kind: ledger.Purchase,
		Merchant: fmt.Sprintf("M%04d", n%500), Terminal: fmt.Sprintf("T%04d", n%2000), Issuer: fmt.Sprintf("ISS%d", n%8),
		Currency: "156", Amount: int64(1000 + n%100000), STAN: fmt.Sprintf("%06d", n%1000000),
		RRN: fmt.Sprintf("%012d", n), EntryMode: "05", PANMasked: "622848******1234", At: time.Now(),
	}
}

// drive runs book from conc goroutines until total calls were made or the deadline passes, and
// returns how many completed, how long that took and their latencies. Latencies go into a slice
// allocated before the clock starts and into a histogram after it stops, so the harness costs the
// measured path nothing but two clock reads per call.
func drive(ctx context.Context, conc, total int, maxDuration time.Duration, book func(n int) error) (int, time.Duration, *hdrhistogram.Histogram, error) {
	lat := make([]int64, total)
	var next, done atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	var deadline time.Time
	if maxDuration > 0 {
		deadline = start.Add(maxDuration)
	}
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1)) - 1
				if n >= total || (!deadline.IsZero() && time.Now().After(deadline)) || ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				if err := book(n); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					break
				}
				lat[n] = max(time.Since(t0).Microseconds(), 1)
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	hist := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	for _, us := range lat {
		if us > 0 {
			_ = hist.RecordValue(us)
		}
	}
	return int(done.Load()), elapsed, hist, firstErr
}

// groupWriter is the ledger writer as the switch runs it: group commit, many bookings per
// PostgreSQL transaction.
func groupWriter(ctx context.Context, app *pgxpool.Pool, o Options) (Phase, error) {
	cfg := o.Writer
	if cfg.Chain == "" {
		cfg.Chain = "ledgerbench"
	}
	return writerPhase(ctx, app, o, cfg, writerRun{name: "group-commit writer", prefix: "bench", errName: "group-commit writer",
		note: fmt.Sprintf("%d goroutines calling Book; entries, postings, rollups and a hash-chain seal per batch", o.Concurrency)})
}

// naive is the same writer without group commit: every booking is its own PostgreSQL transaction
// (MaxBatchBookings = 1) with the same statements — idempotency, rules, entry, postings, rollups,
// seal, commit — and as many transactions in flight at once as the group-commit writer has
// (NaiveConnections flushers, default the writer's Flushers), driven by the same goroutines.
func naive(ctx context.Context, app *pgxpool.Pool, o Options) (Phase, error) {
	cfg := o.Writer
	cfg.Chain = "ledgerbench-naive"
	cfg.MaxBatchBookings = 1
	cfg.BatchWindow = 0
	cfg.Flushers = o.NaiveConnections
	return writerPhase(ctx, app, o, cfg, writerRun{name: "naive (commit per txn)", prefix: "naive", errName: "naive writer",
		duration: o.NaiveDuration,
		note: fmt.Sprintf("the same writer with one booking per PostgreSQL transaction (MaxBatchBookings 1), %d flushers = connections in flight (the group-commit writer's count), ran %s",
			o.NaiveConnections, o.NaiveDuration)})
}

// writerRun names one run of the ledger writer: its phase (and its name in errors), its bookings'
// key prefix, how long it may run (0: until every booking is made) and the note the report prints.
type writerRun struct {
	name, prefix, errName, note string
	duration                    time.Duration
}

// writerPhase books o.Transactions purchases through a writer with cfg from o.Concurrency
// goroutines and measures bookings, commits and their latencies.
func writerPhase(ctx context.Context, app *pgxpool.Pool, o Options, cfg ledger.WriterConfig, run writerRun) (Phase, error) {
	p := Phase{Name: run.name}
	var mu sync.Mutex
	commits := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	cfg.OnBatch = func(bookings, postings int, took time.Duration) {
		mu.Lock()
		p.Batches++
		p.Postings += postings
		_ = commits.RecordValue(took.Microseconds())
		mu.Unlock()
	}
	w := ledger.NewWriter(app, cfg, o.Log)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	prefix := fmt.Sprintf("%s-%d", run.prefix, time.Now().UnixNano())
	// Bookings are made before the clock starts: the figure is the writer's, not the harness's.
	bookings := make([]ledger.Booking, o.Transactions)
	for i := range bookings {
		bookings[i] = bookingFor(prefix, i)
	}
	n, elapsed, hist, err := drive(ctx, o.Concurrency, o.Transactions, run.duration, func(n int) error {
		res, err := w.Book(ctx, bookings[n])
		if err == nil && res.Status != ledger.StatusBooked {
			err = fmt.Errorf("purchase %d: %s %s", n, res.Status, res.Reason)
		}
		return err
	})
	p.Elapsed = elapsed
	cancel()
	<-done
	if err != nil {
		return p, fmt.Errorf("%s: %w", run.errName, err)
	}
	p.Transactions = n
	p.CommitP50 = time.Duration(commits.ValueAtQuantile(50)) * time.Microsecond
	p.CommitP99 = time.Duration(commits.ValueAtQuantile(99)) * time.Microsecond
	p.BookP50 = time.Duration(hist.ValueAtQuantile(50)) * time.Microsecond
	p.BookP99 = time.Duration(hist.ValueAtQuantile(99)) * time.Microsecond
	p.Note = run.note
	return p, nil
}
