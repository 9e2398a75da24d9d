package saf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/issuerlink"
)

// Sender is what the queue needs of an issuer link: send a message, get the answer and the link STAN
// used. *issuerlink.Link satisfies it; ErrUnavailable and ErrTimeout are read from its errors.
type Sender interface {
	Send(ctx context.Context, req *iso8583.Message) (*iso8583.Message, string, error)
}

// upper is what the queue asks of a sender, when it can, before claiming that issuer's items: a link
// with no signed-on connection would only hand every claimed item straight back.
type upper interface{ Up() bool }

// PANOpener opens a PAN the HSM sealed, to build field 2 of an advice. The clear PAN exists only in
// the message being sent.
type PANOpener interface {
	OpenPAN(sealed []byte) (string, error)
}

// Config bounds the queue. Zero values take the defaults below.
type Config struct {
	RetryBase    time.Duration // wait after the first unanswered attempt; doubles per attempt
	RetryMax     time.Duration // cap of the wait between attempts
	MaxAttempts  int           // unanswered attempts before the item is flagged for an operator
	PollInterval time.Duration // how often a node looks for due items (an Enqueue here wakes it at once)
	// Lease is how long a claimed item stays invisible to other nodes while one node sends it; it
	// must exceed the issuer timeout, or another node could send the same item in the meantime.
	Lease    time.Duration
	MaxBatch int                  // most items this node has claimed and in flight at once
	Spec     *iso8583.MessageSpec // issuer-link spec; nil: specs.IssuerLink
	Opener   PANOpener            // opens advices' sealed PANs; nil: advices go without field 2
	Node     string               // this node's name in claimed_by; "": random
}

// Defaults of Config.
const (
	DefaultRetryBase    = time.Second
	DefaultRetryMax     = 5 * time.Minute
	DefaultMaxAttempts  = 20
	DefaultPollInterval = time.Second
	DefaultLease        = 30 * time.Second
	DefaultMaxBatch     = 100

	// maxMaxBatch bounds the attempts (goroutines) one node has in flight.
	maxMaxBatch = 1000
	// settleTimeout bounds the update that records an attempt's outcome, also while shutting down.
	settleTimeout = 5 * time.Second
)

func (c Config) withDefaults() Config {
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	c.RetryMax = max(c.RetryMax, c.RetryBase)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	c.MaxBatch = min(c.MaxBatch, maxMaxBatch)
	if c.Spec == nil {
		c.Spec = specs.IssuerLink
	}
	if c.Node == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.Node = "node-" + hex.EncodeToString(b[:])
	}
	return c
}

// Backoff is the wait after the n-th unanswered attempt: RetryBase·2^(n−1), at most RetryMax.
func (c Config) Backoff(n int) time.Duration {
	d := c.RetryBase
	for i := 1; i < n && d < c.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.RetryMax)
}

// Queue is the store-and-forward queue of one database, shared by every node on it.
type Queue struct {
	pool *pgxpool.Pool
	cfg  Config
	log  *zap.Logger
	wake chan struct{}

	sent, answered, refused, unanswered, unavailable, flagged atomic.Int64
}

// NewQueue builds a queue on the ledger's database (migration 00003 made its table).
func NewQueue(pool *pgxpool.Pool, cfg Config, log *zap.Logger) *Queue {
	if log == nil {
		log = zap.NewNop()
	}
	return &Queue{pool: pool, cfg: cfg.withDefaults(), log: log, wake: make(chan struct{}, 1)}
}

// Config is the queue's configuration with defaults applied.
func (q *Queue) Config() Config { return q.cfg }

// Enqueue stores an item; it is committed when Enqueue returns. Enqueueing the same item again
// (same issuer, kind and original) is a no-op. A reversal of a stand-in advice that was never sent
// cancels both: the issuer never learnt of the transaction, so there is nothing to tell it.
func (q *Queue) Enqueue(ctx context.Context, it Item) error { return q.enqueue(ctx, it, false) }

// EnqueueLate is Enqueue for the reversal of a late approval: if the same reversal was already
// delivered it is sent again (as a repeat), because the issuer may have approved the original after
// the reversal reached it. A repeat is harmless: an issuer acknowledges the reversal of a reversed
// transaction and changes nothing.
func (q *Queue) EnqueueLate(ctx context.Context, it Item) error { return q.enqueue(ctx, it, true) }

const insertItem = `
INSERT INTO saf_item (issuer, kind, acquirer, terminal, orig_mti, orig_stan, orig_time, mti, original_key,
                      processing_code, amount, currency, merchant, rrn, auth_code, mcc, entry_mode,
                      pan_masked, pan_sealed, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
ON CONFLICT (issuer, kind, mti, acquirer, terminal, orig_stan, orig_time) DO `

func (q *Queue) enqueue(ctx context.Context, it Item, reopen bool) error {
	it.TerminalID = padRight(it.TerminalID, 8)
	if err := it.Validate(); err != nil {
		return err
	}
	// The first enqueue of an original wins; a later one only fills in the terminal-side key if the
	// first did not know it (a late answer's reversal can be stored before its timeout's).
	onConflict := `UPDATE SET original_key = EXCLUDED.original_key
	               WHERE saf_item.original_key = '' AND EXCLUDED.original_key <> ''`
	if reopen {
		onConflict = `UPDATE SET status = 'pending', next_attempt_at = now(), done_at = NULL,
		              last_error = 'sent again: the issuer approved late' WHERE saf_item.status = 'done'`
	}
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, insertItem+onConflict,
			it.Issuer, string(it.Kind), it.AcquirerID, it.TerminalID, it.OrigMTI, it.OrigSTAN, it.OrigTime, it.MTI,
			it.OriginalKey, it.ProcessingCode, it.Amount, it.Currency, it.MerchantID, it.RRN, it.AuthCode, it.MCC,
			it.EntryMode, it.PANMasked, it.PANSealed, it.Reason)
		if err != nil || it.Kind != KindReversal {
			return err
		}
		// attempts = 0: no attempt has reached a connection (a claim counts one; an issuer found
		// unavailable gives it back), and the row lock makes a concurrent claim wait or win.
		tag, err := tx.Exec(ctx, `
			UPDATE saf_item SET status = 'cancelled', done_at = now(), last_error = 'reversed before it was sent'
			 WHERE issuer = $1 AND kind = 'advice' AND acquirer = $2 AND terminal = $3 AND orig_stan = $4
			   AND orig_time = $5 AND status = 'pending' AND attempts = 0`,
			it.Issuer, it.AcquirerID, it.TerminalID, it.OrigSTAN, it.OrigTime)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE saf_item SET status = 'cancelled', done_at = now(), last_error = 'its advice was never sent'
			 WHERE issuer = $1 AND kind = 'reversal' AND acquirer = $2 AND terminal = $3 AND orig_stan = $4
			   AND orig_time = $5 AND status = 'pending' AND attempts = 0`,
			it.Issuer, it.AcquirerID, it.TerminalID, it.OrigSTAN, it.OrigTime)
		return err
	})
	if err != nil {
		return fmt.Errorf("enqueueing %s %s %s/%s for %s: %w", it.Kind, it.MTI, it.OrigSTAN, it.OrigTime, it.Issuer, err)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// claimed is one item a node has claimed for one attempt.
type claimed struct {
	id       string
	item     Item
	attempts int // including this one
}

// Run drains due items until ctx ends, keeping up to MaxBatch items of issuers it has a sender for
// in flight at once: as attempts finish it claims more, so an issuer that does not answer holds only
// its own items for the issuer timeout, never the others claimed with them. It claims again when a
// slot frees while more may be due (the last claim filled every free slot), and otherwise after
// PollInterval or an Enqueue on this node. An answer settles an item: done, or operator when
// the issuer answered that it could not process the message (Acknowledged); a timeout or
// send error counts as an attempt and the item waits Backoff(attempts); after MaxAttempts it is
// flagged operator. An issuer link that is down is not an attempt: the message never left, and a
// long outage must not push every reversal to an operator. Run returns nil when ctx ends, after
// every attempt in flight has been answered or abandoned and its outcome recorded.
func (q *Queue) Run(ctx context.Context, senders map[string]Sender) error {
	if len(senders) == 0 {
		<-ctx.Done()
		return nil
	}
	var (
		wg sync.WaitGroup
		// finished carries one token per attempt that ended; its capacity (MaxBatch, the most in
		// flight) means an attempt never blocks on it, even while Run is shutting down.
		finished = make(chan string, q.cfg.MaxBatch)
		// inFlight is the ids of this node's unsettled claims, owned by this loop.
		inFlight = make(map[string]struct{}, q.cfg.MaxBatch)
	)
	defer wg.Wait()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		// Count every attempt that ended since the last round before sizing this claim.
		for reaped := false; !reaped; {
			select {
			case id := <-finished:
				delete(inFlight, id)
			default:
				reaped = true
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		free := q.cfg.MaxBatch - len(inFlight)
		moreDue := false
		if free > 0 {
			batch, err := q.claimDue(ctx, senders, free, inFlight)
			if err != nil && ctx.Err() == nil {
				q.log.Warn("store-and-forward: claiming due items", zap.Error(err))
			}
			for _, c := range batch {
				inFlight[c.id] = struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					q.attempt(ctx, senders[c.item.Issuer], c)
					finished <- c.id
				}()
			}
			moreDue = err == nil && len(batch) == free
		}
		if !moreDue || free == 0 {
			// Nothing more is due, or no slot is free: the next claim waits for the poll at the latest.
			if !poll.Stop() {
				select {
				case <-poll.C:
				default:
				}
			}
			poll.Reset(q.cfg.PollInterval)
		}
		// Wait for a reason to claim: a freed slot when more may be due, an Enqueue here, or the poll.
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case id := <-finished:
				delete(inFlight, id)
				waiting = !moreDue && free > 0
			case <-q.wake:
				waiting = false
			case <-poll.C:
				waiting = false
			}
		}
	}
}

// claimDue claims up to n due items of the issuers whose link is up, leaving out this node's own
// unsettled claims.
func (q *Queue) claimDue(ctx context.Context, senders map[string]Sender, n int, inFlight map[string]struct{}) ([]claimed, error) {
	issuers := make([]string, 0, len(senders))
	for id, s := range senders {
		if u, ok := s.(upper); ok && !u.Up() {
			continue
		}
		issuers = append(issuers, id)
	}
	if len(issuers) == 0 {
		return nil, nil
	}
	busy := make([]string, 0, len(inFlight))
	for id := range inFlight {
		busy = append(busy, id)
	}
	return q.claim(ctx, issuers, n, busy)
}

const claimItems = `
WITH due AS (
    SELECT s.id FROM saf_item s
     WHERE s.status = 'pending' AND s.next_attempt_at <= now() AND s.issuer = ANY($1)
       -- Never this node's own claim still in flight (its lease ran out: a lease shorter than the
       -- issuer timeout), which would put two copies of one item in flight from one node.
       AND s.id <> ALL($5::uuid[])
       -- A reversal waits while an advice of the same original is undelivered: the issuer must hear
       -- of a transaction before it can reverse it.
       AND NOT (s.kind = 'reversal' AND EXISTS (
            SELECT 1 FROM saf_item a
             WHERE a.issuer = s.issuer AND a.kind = 'advice' AND a.acquirer = s.acquirer
               AND a.terminal = s.terminal AND a.orig_stan = s.orig_stan AND a.orig_time = s.orig_time
               AND a.status = 'pending'))
       -- A completion (0220) waits while the 0120 advice of its stand-in pre-authorisation is
       -- undelivered: the issuer must hold before it can complete.
       AND NOT (s.kind = 'advice' AND s.mti = '0220' AND EXISTS (
            SELECT 1 FROM saf_item a
             WHERE a.issuer = s.issuer AND a.kind = 'advice' AND a.mti = '0120' AND a.acquirer = s.acquirer
               AND a.terminal = s.terminal AND a.orig_stan = s.orig_stan AND a.orig_time = s.orig_time
               AND a.status = 'pending'))
     ORDER BY s.next_attempt_at
     LIMIT $2
     FOR UPDATE SKIP LOCKED)
UPDATE saf_item s
   SET attempts = s.attempts + 1, next_attempt_at = now() + $3 * interval '1 millisecond',
       last_attempt_at = now(), claimed_by = $4
  FROM due WHERE s.id = due.id
RETURNING s.id::text, s.kind, s.issuer, s.mti, s.orig_mti, s.orig_stan, s.orig_time, s.acquirer, s.terminal,
          s.original_key, s.processing_code, s.amount, s.currency, s.merchant, s.rrn, s.auth_code, s.mcc,
          s.entry_mode, s.pan_masked, s.pan_sealed, s.reason, s.attempts`

// claim takes due items for one attempt: the claim commits at once, and the lease (next_attempt_at
// pushed Lease ahead) keeps other nodes off the items while this one sends them.
func (q *Queue) claim(ctx context.Context, issuers []string, n int, busy []string) ([]claimed, error) {
	rows, err := q.pool.Query(ctx, claimItems, issuers, n, q.cfg.Lease.Milliseconds(), q.cfg.Node, busy)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		var c claimed
		var kind string
		it := &c.item
		err := r.Scan(&c.id, &kind, &it.Issuer, &it.MTI, &it.OrigMTI, &it.OrigSTAN, &it.OrigTime, &it.AcquirerID,
			&it.TerminalID, &it.OriginalKey, &it.ProcessingCode, &it.Amount, &it.Currency, &it.MerchantID, &it.RRN,
			&it.AuthCode, &it.MCC, &it.EntryMode, &it.PANMasked, &it.PANSealed, &it.Reason, &c.attempts)
		it.Kind = Kind(kind)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming due items: %w", err)
	}
	return out, nil
}

// attempt sends one claimed item and records the outcome.
func (q *Queue) attempt(ctx context.Context, s Sender, c claimed) {
	log := q.log.With(zap.String("issuer", c.item.Issuer), zap.String("kind", string(c.item.Kind)),
		zap.String("orig_stan", c.item.OrigSTAN), zap.String("orig_time", c.item.OrigTime),
		zap.String("tid", c.item.TerminalID), zap.String("reason", c.item.Reason), zap.Int("attempt", c.attempts))
	pan := ""
	if len(c.item.PANSealed) > 0 && q.cfg.Opener != nil {
		p, err := q.cfg.Opener.OpenPAN(c.item.PANSealed)
		if err != nil {
			// A PAN that does not open will not open on the next attempt either (wrong LMK).
			q.settleOperator(c, "cannot open the sealed PAN: "+err.Error(), log)
			return
		}
		pan = p
	}
	msg, err := c.item.Message(q.cfg.Spec, c.attempts > 1, pan)
	if err != nil {
		q.settleOperator(c, err.Error(), log)
		return
	}
	mti, _ := msg.GetMTI()
	q.sent.Add(1)
	resp, _, err := s.Send(ctx, msg)
	switch {
	case err == nil:
		rc, _ := resp.GetString(39)
		if ok, why := Acknowledged(c.item.Kind, rc); !ok {
			// The issuer answered that it cannot process the message: not delivered (see Acknowledged).
			q.refused.Add(1)
			q.flagged.Add(1)
			log.Error("store-and-forward: the issuer could not process the message; flagged for an operator",
				zap.String("mti", mti), zap.String("rc", rc), zap.String("why", why))
			q.settle(c, `status = 'operator', last_response = $4, last_error = $5`, rc, why)
			return
		}
		q.answered.Add(1)
		if rc != "00" {
			log.Warn("store-and-forward: issuer answered, not with 00; acknowledged all the same", zap.String("mti", mti),
				zap.String("rc", rc))
		}
		q.settle(c, `status = 'done', done_at = now(), last_response = $4, last_error = ''`, rc)
	case errors.Is(err, issuerlink.ErrUnavailable):
		// The link wrote nothing (no signed-on connection): not an attempt.
		q.unavailable.Add(1)
		q.settle(c, `attempts = attempts - 1, next_attempt_at = now() + $4 * interval '1 millisecond',
		             last_error = 'issuer unavailable'`, q.cfg.RetryBase.Milliseconds())
	default:
		q.unanswered.Add(1)
		if c.attempts >= q.cfg.MaxAttempts {
			q.settleOperator(c, fmt.Sprintf("%d attempts unanswered; last: %v", c.attempts, err), log)
			return
		}
		wait := q.cfg.Backoff(c.attempts)
		log.Info("store-and-forward: unanswered; will repeat", zap.String("mti", mti), zap.Duration("wait", wait),
			zap.Error(err))
		q.settle(c, `next_attempt_at = now() + $4 * interval '1 millisecond', last_error = $5`,
			wait.Milliseconds(), err.Error())
	}
}

func (q *Queue) settleOperator(c claimed, why string, log *zap.Logger) {
	q.flagged.Add(1)
	log.Error("store-and-forward: item needs an operator", zap.String("why", why))
	q.settle(c, `status = 'operator', last_error = $4`, why)
}

// settle records the outcome of an attempt, if this node's claim still holds (the attempt count and
// claimant are unchanged: no other node took the item over after the lease ran out).
func (q *Queue) settle(c claimed, set string, args ...any) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	tag, err := q.pool.Exec(ctx, `UPDATE saf_item SET `+set+`
		 WHERE id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'pending'`,
		append([]any{c.id, q.cfg.Node, c.attempts}, args...)...)
	switch {
	case err != nil:
		// The lease runs out and the item is attempted again: at worst one more repeat.
		q.log.Warn("store-and-forward: recording an attempt", zap.String("id", c.id), zap.Error(err))
	case tag.RowsAffected() == 0:
		q.log.Warn("store-and-forward: claim lost before the attempt was recorded (lease shorter than the issuer timeout?)",
			zap.String("id", c.id))
	}
}
