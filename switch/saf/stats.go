package saf

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Count is the number of items of one issuer, kind and status.
type Count struct {
	Issuer string
	Kind   Kind
	Status Status
	Count  int64
}

// Stats is the queue as the database holds it (all nodes) and what this node did since it started.
type Stats struct {
	Items                              []Count
	Pending, Done, Operator, Cancelled int64         // totals over Items
	OldestPending                      time.Duration // age of the oldest pending item; 0 when none

	// This node since NewQueue.
	Sent        int64 // messages handed to a link
	Answered    int64 // attempts the issuer answered and acknowledged (done)
	Refused     int64 // attempts the issuer answered with a code meaning it could not process them (operator)
	Unanswered  int64 // attempts that timed out or failed (counted towards MaxAttempts)
	Unavailable int64 // claims handed back because the issuer link was down (not counted)
	Flagged     int64 // items this node flagged for an operator
}

// Stats reads the counts per issuer, kind and status.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Sent: q.sent.Load(), Answered: q.answered.Load(), Refused: q.refused.Load(), Unanswered: q.unanswered.Load(),
		Unavailable: q.unavailable.Load(), Flagged: q.flagged.Load()}
	rows, err := q.pool.Query(ctx, `SELECT issuer, kind, status, count(*) FROM saf_item GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		return st, fmt.Errorf("store-and-forward stats: %w", err)
	}
	st.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Count, error) {
		var c Count
		var kind, status string
		err := r.Scan(&c.Issuer, &kind, &status, &c.Count)
		c.Kind, c.Status = Kind(kind), Status(status)
		return c, err
	})
	if err != nil {
		return st, fmt.Errorf("store-and-forward stats: %w", err)
	}
	for _, c := range st.Items {
		switch c.Status {
		case StatusPending:
			st.Pending += c.Count
		case StatusDone:
			st.Done += c.Count
		case StatusOperator:
			st.Operator += c.Count
		case StatusCancelled:
			st.Cancelled += c.Count
		}
	}
	var oldestMS float64
	err = q.pool.QueryRow(ctx, `SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)) * 1000, 0)::float8
	                             FROM saf_item WHERE status = 'pending'`).Scan(&oldestMS)
	if err != nil {
		return st, fmt.Errorf("store-and-forward stats: %w", err)
	}
	st.OldestPending = time.Duration(oldestMS * float64(time.Millisecond))
	return st, nil
}

// Record is a stored item with where it stands, for operators.
type Record struct {
	ID string
	Item
	Status        Status
	Attempts      int
	NextAttemptAt time.Time
	LastResponse  string
	LastError     string
	CreatedAt     time.Time
	DoneAt        *time.Time
}

// maxList bounds one List.
const maxList = 10000

// List returns up to limit items of one status (all statuses for ""), oldest first.
func (q *Queue) List(ctx context.Context, status Status, limit int) ([]Record, error) {
	limit = min(max(limit, 1), maxList)
	rows, err := q.pool.Query(ctx, `
		SELECT id::text, kind, issuer, mti, orig_mti, orig_stan, orig_time, acquirer, terminal, original_key,
		       processing_code, amount, currency, merchant, rrn, auth_code, mcc, entry_mode, pan_masked, reason,
		       status, attempts, next_attempt_at, last_response, last_error, created_at, done_at
		  FROM saf_item WHERE $1 = '' OR status = $1 ORDER BY created_at, id LIMIT $2`, string(status), limit)
	if err != nil {
		return nil, fmt.Errorf("listing store-and-forward items: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Record, error) {
		var rec Record
		var kind, st string
		it := &rec.Item
		err := r.Scan(&rec.ID, &kind, &it.Issuer, &it.MTI, &it.OrigMTI, &it.OrigSTAN, &it.OrigTime, &it.AcquirerID,
			&it.TerminalID, &it.OriginalKey, &it.ProcessingCode, &it.Amount, &it.Currency, &it.MerchantID, &it.RRN,
			&it.AuthCode, &it.MCC, &it.EntryMode, &it.PANMasked, &it.Reason, &st, &rec.Attempts, &rec.NextAttemptAt,
			&rec.LastResponse, &rec.LastError, &rec.CreatedAt, &rec.DoneAt)
		it.Kind, rec.Status = Kind(kind), Status(st)
		return rec, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing store-and-forward items: %w", err)
	}
	return out, nil
}

// Requeue puts an item an operator has looked into back in the queue, due now, with MaxAttempts−1
// further attempts; it is sent as a repeat (0421, 0121, 0221) since the issuer may have seen it.
// It reports whether the item was flagged operator (nothing else is requeued).
func (q *Queue) Requeue(ctx context.Context, id string) (bool, error) {
	tag, err := q.pool.Exec(ctx, `UPDATE saf_item SET status = 'pending', attempts = 1, next_attempt_at = now(),
		last_error = 'requeued by an operator' WHERE id = $1::uuid AND status = 'operator'`, id)
	if err != nil {
		return false, fmt.Errorf("requeueing store-and-forward item %s: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return tag.RowsAffected() == 1, nil
}

// collector exports the queue to Prometheus; the database part is read at scrape time.
type collector struct {
	q                                      *Queue
	items, oldest, up, attempts, flaggedTo *prometheus.Desc
}

// statsTimeout bounds the database reads of one scrape.
const statsTimeout = 2 * time.Second

// Collector exports poswitch_saf_items{issuer,kind,status}, poswitch_saf_oldest_pending_seconds,
// poswitch_saf_stats_up, poswitch_saf_attempts_total{outcome} and poswitch_saf_flagged_total. The
// lead registers it with the node's registry.
func (q *Queue) Collector() prometheus.Collector {
	return &collector{
		q: q,
		items: prometheus.NewDesc("poswitch_saf_items", "Store-and-forward items in the database, by status.",
			[]string{"issuer", "kind", "status"}, nil),
		oldest: prometheus.NewDesc("poswitch_saf_oldest_pending_seconds", "Age of the oldest pending store-and-forward item.",
			nil, nil),
		up: prometheus.NewDesc("poswitch_saf_stats_up", "1 when the store-and-forward counts could be read.", nil, nil),
		attempts: prometheus.NewDesc("poswitch_saf_attempts_total", "Store-and-forward sends by this node, by outcome.",
			[]string{"outcome"}, nil),
		flaggedTo: prometheus.NewDesc("poswitch_saf_flagged_total", "Items this node flagged for an operator.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.items, c.oldest, c.up, c.attempts, c.flaggedTo} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	st, err := c.q.Stats(ctx)
	up := 1.0
	if err != nil {
		up = 0
	} else {
		for _, it := range st.Items {
			ch <- prometheus.MustNewConstMetric(c.items, prometheus.GaugeValue, float64(it.Count), it.Issuer,
				string(it.Kind), string(it.Status))
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, st.OldestPending.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	for outcome, v := range map[string]int64{"answered": st.Answered, "refused": st.Refused, "unanswered": st.Unanswered,
		"unavailable": st.Unavailable} {
		ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(v), outcome)
	}
	ch <- prometheus.MustNewConstMetric(c.flaggedTo, prometheus.CounterValue, float64(st.Flagged))
}
