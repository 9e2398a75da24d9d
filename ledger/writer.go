package ledger

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// WriterConfig bounds the group-commit writer. Zero values take the defaults.
type WriterConfig struct {
	// Chain is the hash chain this writer seals its batches into; one per switch node. Default:
	// the host name. Two writers on one chain work (they retry on a sequence clash) but contend.
	Chain string
	// BatchWindow is how long a batch may wait for more bookings after taking everything queued.
	// Default 0: classic group commit — a flusher writes whatever queued while its previous batch
	// was committing, at once, so batches grow with load and an idle writer adds no delay. A
	// window only adds latency unless commits are far cheaper than the arrival gap.
	BatchWindow time.Duration
	// MaxBatchBookings bounds the bookings in one database transaction. Default 2000.
	MaxBatchBookings int
	// MaxQueuedBookings bounds the bookings waiting for a batch; Book blocks when it is full.
	// Default 100000.
	MaxQueuedBookings int
	// CommitTimeout bounds one batch from begin to commit. Default 5s.
	CommitTimeout time.Duration
	// HoldTTL is how long a pre-authorisation hold lasts when the booking gives no expiry. Default 7 days.
	HoldTTL time.Duration
	// MerchantTTL is how long merchant settings are cached. Default 30s.
	MerchantTTL time.Duration
	// Registerer receives the writer's Prometheus metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// OnBatch, if set, is called after each committed batch with its size and the time from its
	// start to its commit (for benchmarks; keep it cheap).
	OnBatch func(bookings, postings int, took time.Duration)
	// Flushers is how many batches may be in flight at once, each on its own connection and its own
	// chain (Chain/0, Chain/1, …). A booking that names an original goes to the flusher of its
	// original's key, so an original and its reversal, void or refund are never in concurrent batches.
	// Default 2 (one PostgreSQL backend is the bottleneck; two use both cores of a small box).
	Flushers int
}

func (c WriterConfig) withDefaults() WriterConfig {
	if c.Chain == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "node"
		}
		c.Chain = h
	}
	if c.BatchWindow < 0 {
		c.BatchWindow = 0
	}
	if c.MaxBatchBookings <= 0 {
		c.MaxBatchBookings = 2000
	}
	if c.MaxQueuedBookings <= 0 {
		c.MaxQueuedBookings = 100_000
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = 5 * time.Second
	}
	if c.HoldTTL <= 0 {
		c.HoldTTL = 7 * 24 * time.Hour
	}
	if c.MerchantTTL <= 0 {
		c.MerchantTTL = 30 * time.Second
	}
	if c.Flushers <= 0 {
		c.Flushers = DefaultFlushers
	}
	if c.Flushers > maxFlushers {
		c.Flushers = maxFlushers
	}
	return c
}

// maxBatchAttempts bounds retries of a batch that lost a race with another writer (a unique key
// or the chain sequence); each retry re-reads the state, so the loser sees the winner's entries.
const maxBatchAttempts = 4

// DefaultFlushers is WriterConfig.Flushers when unset.
const DefaultFlushers = 2

// maxFlushers bounds concurrent batches (and so chains per writer).
const maxFlushers = 16

// blindBackoffBatches is how many batches read before writing after a blind batch was refused.
const blindBackoffBatches = 16

// Writer is the group-commit ledger writer: Book from any number of goroutines, Run in one.
// Bookings are gathered into batches, each written in one PostgreSQL transaction and sealed into the
// writer's hash chain; Book returns only after the batch holding its booking committed.
type Writer struct {
	pool     *pgxpool.Pool
	cfg      WriterConfig
	log      *zap.Logger
	m        *metrics
	flushers []*flusher
	stopped  chan struct{}
	ids      idSource

	mu        sync.Mutex // guards the caches below, shared by the flushers
	accounts  map[accountKey]struct{}
	merchants map[string]cachedMerchant
}

// flusher gathers and commits the batches of one queue, sealing them into its own chain.
type flusher struct {
	w     *Writer
	chain string
	queue chan *request

	// Owned by the flusher's goroutine.
	headKnown bool
	headSeq   int64
	headHash  []byte
	inDoubt   *doubtfulBatch
	// comp are compensating reversals found by resolveDoubt, kept until a batch holding them commits.
	comp []*request
	// cycle is the open settlement cycle the last batch wrote into (0: unknown). A batch that needs
	// nothing else from the database writes into it blind; the database refuses if it closed since.
	cycle int64
	// readFirst counts batches that must read before writing, after a blind write lost (a key was
	// already booked, the cycle closed, the chain moved): a storm of repeats costs one wasted try.
	readFirst int
}

type cachedMerchant struct {
	m      MerchantSettings
	expiry time.Time
}

// doubtfulBatch is a batch whose COMMIT got no answer: its callers were told ErrUnavailable, so if
// it did commit, its forward entries are cancelled by compensating reversals.
type doubtfulBatch struct {
	seq     int64
	hash    []byte
	probe   EntryID
	forward []*plan
	comp    []*request // compensations it carried: booked again if it did not commit
}

type request struct {
	b     Booking
	hash  []byte
	state atomic.Int32 // reqQueued → reqTaken (in a batch) or reqCancelled (caller gave up first)
	res   Result
	err   error
	done  chan struct{} // nil for the writer's own compensating bookings
}

const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

func (r *request) finish(res Result, err error) {
	r.res, r.err = res, err
	if r.done != nil {
		close(r.done)
	}
}

// NewWriter makes a writer on pool (connected as the application role). Call Run to start it.
func NewWriter(pool *pgxpool.Pool, cfg WriterConfig, log *zap.Logger) *Writer {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	w := &Writer{
		pool: pool, cfg: cfg, log: log, m: newMetrics(cfg.Registerer),
		stopped: make(chan struct{}), accounts: map[accountKey]struct{}{}, merchants: map[string]cachedMerchant{},
	}
	for i := 0; i < cfg.Flushers; i++ {
		chain := cfg.Chain
		if cfg.Flushers > 1 {
			chain = fmt.Sprintf("%s/%d", cfg.Chain, i)
		}
		w.flushers = append(w.flushers, &flusher{w: w, chain: chain, queue: make(chan *request, cfg.MaxQueuedBookings/cfg.Flushers+1)})
	}
	return w
}

// Chains are the hash chains this writer seals into.
func (w *Writer) Chains() []string {
	var out []string
	for _, f := range w.flushers {
		out = append(out, f.chain)
	}
	return out
}

// flusherFor keeps a transaction and everything acting on it on one flusher, in booking order.
func (w *Writer) flusherFor(b *Booking) *flusher {
	k := b.Key
	if b.OriginalKey != "" {
		k = b.OriginalKey
	}
	return w.flushers[fnv32(k)%uint32(len(w.flushers))]
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// Book books b and returns after the batch holding it committed. It is safe from any number of
// goroutines. If ctx ends while b still waits in the queue, b is withdrawn and ctx's error returned;
// once b is in a batch, Book waits for that batch (at most CommitTimeout), so an error return
// always means nothing was acknowledged.
func (w *Writer) Book(ctx context.Context, b Booking) (Result, error) {
	if err := b.validate(); err != nil {
		return Result{}, err
	}
	r := &request{b: b, hash: b.contentHash(), done: make(chan struct{})}
	select {
	case w.flusherFor(&b).queue <- r:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("booking %s: %w", b.Key, ctx.Err())
	case <-w.stopped:
		return Result{}, ErrClosed
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return Result{}, fmt.Errorf("booking %s: %w", b.Key, ctx.Err())
		}
		<-r.done
		return r.res, r.err
	case <-w.stopped:
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return Result{}, ErrClosed
		}
		<-r.done
		return r.res, r.err
	}
}

// Run gathers and commits batches until ctx ends, then fails what is still queued with ErrClosed.
// The batches in progress when ctx ends are finished (bounded by CommitTimeout). Run once.
func (w *Writer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range w.flushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.run(ctx)
		}()
	}
	wg.Wait()
	close(w.stopped)
	for _, f := range w.flushers {
		f.drain()
	}
	return nil
}

func (f *flusher) drain() {
	for {
		select {
		case r := <-f.queue:
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				r.finish(Result{}, ErrClosed)
			}
		default:
			return
		}
	}
}

func (f *flusher) run(ctx context.Context) {
	w := f.w
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*request, 0, w.cfg.MaxBatchBookings)
	take := func(r *request) {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			batch = append(batch, r)
		}
	}
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case r := <-f.queue:
			take(r)
		}
		// Group commit: everything that queued up while the previous batch was committing goes
		// into this one, at once. Under load the batch grows with the commit time; when idle a
		// booking is written without waiting for company.
	drain:
		for len(batch) < w.cfg.MaxBatchBookings {
			select {
			case r := <-f.queue:
				take(r)
			default:
				break drain
			}
		}
		if w.cfg.BatchWindow > 0 && len(batch) > 0 {
			timer.Reset(w.cfg.BatchWindow)
		gather:
			for len(batch) < w.cfg.MaxBatchBookings {
				select {
				case r := <-f.queue:
					take(r)
				case <-timer.C:
					break gather
				}
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		if len(batch) > 0 {
			f.flush(batch)
		}
	}
}

// flush books one batch, retrying lost races, and answers every request in it.
func (f *flusher) flush(batch []*request) {
	w := f.w
	var err error
	for attempt := 1; attempt <= maxBatchAttempts; attempt++ {
		err = f.flushOnce(batch)
		if err == nil {
			return
		}
		if classify(err) != classRetry {
			break
		}
		f.headKnown = false
		w.log.Debug("batch lost a race, retrying", zap.Int("attempt", attempt), zap.Error(err))
	}
	if classify(err) != classFailed {
		w.m.unavailable.Inc()
		w.log.Warn("ledger batch failed: database unavailable", zap.Int("bookings", len(batch)), zap.Error(err))
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	} else {
		w.log.Error("ledger batch failed", zap.Int("bookings", len(batch)), zap.Error(err))
	}
	for _, r := range batch {
		if r.done != nil {
			w.m.bookings.WithLabelValues(r.b.Kind.String(), "failed").Inc()
			r.finish(Result{}, err)
		}
	}
}

// flushOnce is one attempt at a batch. It returns an error only if nothing of the batch was
// acknowledged; requests are finished only after a commit.
//
// A batch is at most two round trips plus the commit's fsync. Read-first: BEGIN, the shared cycle
// lock and every read the rules need (one pipelined round trip), the rules in Go, then every write
// and COMMIT (one more). Blind: when the batch holds only bookings that act on no original
// (purchases, pre-authorisations, bill payments), its merchants are cached and the open cycle is
// known from the previous batch, the reads are skipped and the batch is one round trip — the
// lock, an assertion that the cycle is still open, the writes, committed at the pipeline's end.
// If a key was booked before (unique txn_key), the cycle closed or the chain moved, the database
// refuses the whole blind batch and it is tried again read-first.
func (f *flusher) flushOnce(batch []*request) error {
	w := f.w
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.CommitTimeout)
	defer cancel()
	started := time.Now()

	if f.inDoubt != nil {
		comp, err := f.resolveDoubt(ctx)
		if err != nil {
			return err
		}
		f.comp = append(f.comp, comp...)
	}
	if len(f.comp) > 0 {
		batch = append(append([]*request(nil), f.comp...), batch...)
	}
	if !f.headKnown {
		seq, h, err := chainHead(ctx, w.pool, f.chain)
		if err != nil {
			return err
		}
		f.headSeq, f.headHash, f.headKnown = seq, h, true
	}

	keys := make([]string, 0, len(batch))
	var origKeys, lockKeys, merchantIDs []string
	seenOrig := map[string]bool{}
	now := time.Now()
	for _, r := range batch {
		keys = append(keys, r.b.Key)
		if r.b.OriginalKey != "" && !seenOrig[r.b.OriginalKey] {
			seenOrig[r.b.OriginalKey] = true
			origKeys = append(origKeys, r.b.OriginalKey)
			if r.b.Kind == Refund || r.b.Kind == Chargeback {
				lockKeys = append(lockKeys, r.b.OriginalKey)
			}
		}
	}
	// Merchants of originals are only known after reading them, so fetch every merchant the batch
	// names plus, cheaply, all stale cache entries of originals on the next batch.
	wantM := map[string]bool{}
	w.mu.Lock()
	for _, r := range batch {
		if r.b.Merchant != "" {
			if c, ok := w.merchants[r.b.Merchant]; !ok || now.After(c.expiry) {
				wantM[r.b.Merchant] = true
			}
		}
	}
	w.mu.Unlock()
	for id := range wantM {
		merchantIDs = append(merchantIDs, id)
	}
	blind := f.cycle != 0 && f.readFirst == 0 && len(origKeys) == 0 && len(merchantIDs) == 0
	if f.readFirst > 0 {
		f.readFirst--
	}

	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection for a batch: %w", err)
	}
	defer func() {
		// A failed pipeline leaves an explicit transaction open and aborted: end it before the
		// connection goes back to the pool (a broken connection is discarded by the pool).
		if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
			rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = conn.Exec(rctx, "ROLLBACK")
			rcancel()
		}
		conn.Release()
	}()

	st := newBatchState()
	if blind {
		st.cycle = f.cycle
	} else {
		var rb pgx.Batch
		rb.Queue(`BEGIN`)
		queueBatchReads(&rb, st, keys, origKeys, lockKeys, merchantIDs)
		if err := conn.SendBatch(ctx, &rb).Close(); err != nil {
			return fmt.Errorf("reading batch state: %w", err)
		}
		if st.cycle == 0 {
			return fmt.Errorf("reading batch state: no open settlement cycle")
		}
		f.cycle = st.cycle
	}
	w.mu.Lock()
	for _, id := range merchantIDs {
		m, ok := st.merchants[id]
		if !ok {
			m = defaultMerchant(id)
		}
		w.merchants[id] = cachedMerchant{m: m, expiry: now.Add(w.cfg.MerchantTTL)}
	}
	known := w.accounts
	merchants := make(map[string]MerchantSettings, len(w.merchants))
	for id, c := range w.merchants {
		merchants[id] = c.m
	}
	w.mu.Unlock()

	// Plan: duplicates get their stored answer, conflicts an error, the rest their rule.
	ru := &rules{originals: st.originals, holdTTL: w.cfg.HoldTTL, merchant: func(id string) MerchantSettings {
		if m, ok := merchants[id]; ok {
			return m
		}
		return defaultMerchant(id)
	}}
	outcomes := make([]outcome, len(batch))
	firstInBatch := map[string]int{}
	var plans []*plan
	for i, r := range batch {
		if e := st.existing[r.b.Key]; e != nil {
			outcomes[i] = w.duplicate(r, e.contentHash, e.result())
			continue
		}
		if j, ok := firstInBatch[r.b.Key]; ok {
			outcomes[i] = outcome{plan: outcomes[j].plan} // resolved below, once plan j is final
			continue
		}
		firstInBatch[r.b.Key] = i
		p := &plan{b: r.b, id: w.ids.next(), contentHash: r.hash}
		ru.apply(p)
		if p.status == StatusBooked && !balanced(p.postings) {
			// A rule produced an unbalanced entry: a programmer error. Refuse it rather than write it.
			w.log.DPanic("posting rule produced an unbalanced entry", zap.String("key", r.b.Key), zap.Any("postings", p.postings))
			p.refuse("internal error: unbalanced entry")
		}
		outcomes[i] = outcome{plan: p}
		plans = append(plans, p)
	}
	if len(plans) == 0 {
		// Nothing new (only possible read-first): answer from the stored entries without sealing
		// an empty batch.
		if _, err := conn.Exec(ctx, `COMMIT`); err != nil {
			return fmt.Errorf("committing read-only batch: %w", err)
		}
		f.comp = nil
		w.answer(batch, outcomes, st.cycle)
		return nil
	}

	sb := &sealedBatch{chain: f.chain, seq: f.headSeq + 1, prevHash: f.headHash}
	newAccounts := map[accountKey]struct{}{}
	w.mu.Lock()
	for _, p := range plans {
		sb.entries = append(sb.entries, p.record(st.cycle))
		for _, ps := range p.postings {
			k := accountKey{ps.Account, ps.Currency}
			if _, ok := known[k]; !ok {
				if _, ok := newAccounts[k]; !ok {
					newAccounts[k] = struct{}{}
					sb.newAccounts = append(sb.newAccounts, k)
				}
			}
		}
		if p.newHold != nil {
			sb.holds = append(sb.holds, holdRecord{key: p.b.Key, id: p.id, merchant: p.merchant, issuer: p.issuer,
				currency: p.b.Currency, amount: p.newHold.amount, expiresAt: p.newHold.expiresAt})
		}
	}
	w.mu.Unlock()
	sb.hash = batchHash(sb.prevHash, sb.chain, sb.seq, sb.entries)

	var wb pgx.Batch
	if blind {
		// No explicit transaction: the pipeline's statements run in one implicit transaction that
		// commits at its Sync, or rolls back entirely if any statement fails.
		wb.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, cycleLockKey)
		wb.Queue(`SELECT ledger_assert_open_cycle($1)`, st.cycle)
	}
	queueBatchWrites(&wb, sb)
	if !blind {
		wb.Queue(`COMMIT`)
	}
	if err := conn.SendBatch(ctx, &wb).Close(); err != nil {
		switch classify(err) {
		case classUnavailable:
			// No answer: the commit may or may not have happened. Find out before the next batch.
			d := &doubtfulBatch{seq: sb.seq, hash: sb.hash, probe: plans[0].id}
			for _, p := range plans {
				if p.status == StatusBooked && p.b.Kind.compensable() {
					d.forward = append(d.forward, p)
				}
			}
			d.comp, f.comp = f.comp, nil
			f.inDoubt = d
		case classRetry:
			if blind {
				f.readFirst = blindBackoffBatches
				w.m.blindRetries.Inc()
			}
		}
		return fmt.Errorf("writing and committing batch %s/%d: %w", sb.chain, sb.seq, err)
	}
	f.comp = nil
	f.headSeq, f.headHash = sb.seq, sb.hash
	w.mu.Lock()
	for k := range newAccounts {
		w.accounts[k] = struct{}{}
	}
	w.mu.Unlock()
	w.m.batches.Inc()
	w.m.batchSize.Observe(float64(len(batch)))
	took := time.Since(started)
	w.m.commit.Observe(took.Seconds())
	if w.cfg.OnBatch != nil {
		n := 0
		for _, e := range sb.entries {
			n += len(e.Postings)
		}
		w.cfg.OnBatch(len(batch), n, took)
	}
	w.answer(batch, outcomes, st.cycle)
	return nil
}

// outcome is what one request of a batch gets: a plan of its own (or of an earlier copy of its key
// in the same batch), or a stored result or error.
type outcome struct {
	plan *plan
	res  Result
	err  error
}

// answer finishes every request of a committed batch.
func (w *Writer) answer(batch []*request, outcomes []outcome, cycle int64) {
	seen := map[string]bool{}
	for i, r := range batch {
		p, res, err := outcomes[i].plan, outcomes[i].res, outcomes[i].err
		if p != nil {
			if seen[r.b.Key] {
				// A second copy of a key within one batch: a duplicate of the first, or a conflict.
				o := w.duplicate(r, p.contentHash, p.resultIn(cycle))
				res, err = o.res, o.err
			} else {
				seen[r.b.Key] = true
				res = p.resultIn(cycle)
				w.m.bookings.WithLabelValues(r.b.Kind.String(), string(p.status)).Inc()
			}
		}
		r.finish(res, err)
	}
}

// duplicate answers a booking whose identity is already booked: the stored result if the content
// matches, ErrConflict (logged, counted) if not.
func (w *Writer) duplicate(r *request, storedHash []byte, stored Result) (o outcome) {
	if string(storedHash) != string(r.hash) {
		w.m.conflicts.Inc()
		w.m.bookings.WithLabelValues(r.b.Kind.String(), "conflict").Inc()
		w.log.Error("transaction identity reused with different content; not booked",
			zap.String("key", r.b.Key), zap.String("kind", r.b.Kind.String()), zap.Int64("amount", r.b.Amount),
			zap.String("merchant", r.b.Merchant), zap.String("terminal", r.b.Terminal))
		o.err = fmt.Errorf("booking %s: %w", r.b.Key, ErrConflict)
		return o
	}
	w.m.bookings.WithLabelValues(r.b.Kind.String(), "duplicate").Inc()
	stored.Duplicate = true
	o.res = stored
	return o
}

// resolveDoubt finds out whether the batch whose COMMIT went unanswered committed. If it did, its
// callers were nonetheless told ErrUnavailable (the switch declined them), so its forward entries
// are cancelled by compensating reversals, returned to be booked first in the next batch.
func (f *flusher) resolveDoubt(ctx context.Context) ([]*request, error) {
	w := f.w
	d := f.inDoubt
	var committed bool
	if err := w.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM journal_entry WHERE id = $1)`, [16]byte(d.probe)).Scan(&committed); err != nil {
		return nil, fmt.Errorf("checking an unconfirmed commit: %w", err)
	}
	f.inDoubt = nil
	f.headKnown = false
	if !committed {
		w.log.Info("unconfirmed batch did not commit", zap.Int64("seq", d.seq))
		return d.comp, nil
	}
	w.log.Warn("unconfirmed batch did commit; reversing its declined bookings", zap.Int64("seq", d.seq), zap.Int("bookings", len(d.forward)))
	var comp []*request
	for _, p := range d.forward {
		b := Booking{Key: "compensation|" + p.b.Key, Kind: Reversal, OriginalKey: p.b.Key, Merchant: p.merchant,
			Terminal: p.b.Terminal, Issuer: p.issuer, Currency: p.b.Currency, At: time.Now()}
		if err := b.validate(); err != nil {
			continue
		}
		r := &request{b: b, hash: b.contentHash()}
		r.state.Store(reqTaken)
		comp = append(comp, r)
	}
	return comp, nil
}

// compensable kinds are the ones a decline must undo if they were booked after all.
func (k Kind) compensable() bool {
	switch k {
	case Purchase, PreAuth, Completion, Refund, BillPayment, Chargeback:
		return true
	}
	return false
}

func (p *plan) resultIn(cycle int64) Result {
	r := p.result()
	r.Cycle = cycle
	return r
}

// record is the plan as stored.
func (p *plan) record(cycle int64) *entryRecord {
	var flags int16
	if p.notFound {
		flags |= flagNotFound
	}
	if p.cancelled {
		flags |= flagCancelled
	}
	e := &entryRecord{ID: p.id, Key: p.b.Key, Kind: p.b.Kind.String(), Status: string(p.status), Reason: p.reason,
		Flags: flags, OriginalKey: p.b.OriginalKey, Consumes: p.consumes, Merchant: p.merchant, Terminal: p.b.Terminal,
		Issuer: p.issuer, Currency: p.b.Currency, Amount: p.amount, Fee: p.fee, Cycle: cycle, STAN: p.b.STAN,
		RRN: p.b.RRN, AuthCode: p.b.AuthCode, EntryMode: p.b.EntryMode, PANMasked: p.b.PANMasked,
		PANHash: p.b.PANHash, ContentHash: p.contentHash, At: p.b.At, IssuerSTAN: p.b.IssuerSTAN, IssuerTime: p.b.IssuerTime}
	for i, ps := range p.postings {
		e.Postings = append(e.Postings, postingRecord{Seq: int16(i), Account: ps.Account, Currency: ps.Currency, Amount: ps.Amount, Cycle: cycle})
	}
	return e
}
