package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// cycleLockKey is the advisory lock that keeps batches and cut-over apart: every batch holds it
// shared while it reads the open cycle and writes its postings; cut-over holds it exclusively while
// it closes the cycle. So no posting lands in a cycle after that cycle's payouts were computed.
const cycleLockKey int64 = 0x706f7377_6379636c // "poswcycl"

// batchState is what one batch reads before its rules run, in one round trip.
type batchState struct {
	cycle     int64
	existing  map[string]*existingEntry
	originals map[string]*original
	merchants map[string]MerchantSettings
}

type existingEntry struct {
	id          EntryID
	kind        string
	status      Status
	reason      string
	flags       int16
	amount, fee int64
	cycle       int64
	contentHash []byte
}

func (e *existingEntry) result() Result {
	return Result{EntryID: e.id, Status: e.status, Fee: e.fee, Amount: e.amount, Cycle: e.cycle, Duplicate: true,
		NotFound: e.flags&flagNotFound != 0, AlreadyCancelled: e.flags&flagCancelled != 0, Reason: e.reason}
}

const originalsSQL = `
SELECT e.txn_key, e.id, e.kind, e.status, e.original_key, e.merchant, e.terminal, e.issuer, e.currency, e.amount, e.fee,
       COALESCE(c.txn_key, ''), COALESCE(r.refunded, 0), COALESCE(r.fee_returned, 0), COALESCE(r.charged_back, 0),
       h.amount, h.expires_at
  FROM journal_entry e
  LEFT JOIN journal_entry c ON c.consumes = e.txn_key
  LEFT JOIN hold h ON h.txn_key = e.txn_key
  LEFT JOIN LATERAL (
        SELECT sum(x.amount) FILTER (WHERE x.kind = 'refund') AS refunded,
               sum(x.fee) FILTER (WHERE x.kind = 'refund') AS fee_returned,
               sum(x.amount) FILTER (WHERE x.kind = 'chargeback') AS charged_back
          FROM journal_entry x
         WHERE x.original_key = e.txn_key AND x.kind IN ('refund', 'chargeback') AND x.status = 'booked'
           AND NOT EXISTS (SELECT 1 FROM journal_entry v WHERE v.consumes = x.txn_key)) r ON e.kind IN ('purchase', 'completion', 'bill_payment')
 WHERE e.txn_key = ANY($1)`

// readBatchState queues the batch's reads on one pgx.Batch and runs them in one round trip.
func readBatchState(ctx context.Context, tx pgx.Tx, keys, originalKeys, lockKeys, merchantIDs []string) (*batchState, error) {
	st := &batchState{existing: map[string]*existingEntry{}, originals: map[string]*original{}, merchants: map[string]MerchantSettings{}}
	var b pgx.Batch
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1)`, cycleLockKey)
	b.Queue(`SELECT id FROM settlement_cycle c WHERE NOT EXISTS (SELECT 1 FROM settlement_close x WHERE x.cycle_id = c.id)
	          ORDER BY id LIMIT 1`).QueryRow(func(row pgx.Row) error { return row.Scan(&st.cycle) })
	if len(lockKeys) > 0 {
		// Refunds and chargebacks of one original from several nodes must not both pass the
		// "not more than what is left" check: they serialise on the original's key.
		b.Queue(`SELECT count(pg_advisory_xact_lock(hashtextextended(k, 7))) FROM (SELECT unnest($1::text[]) AS k ORDER BY 1) s`, lockKeys)
	}
	b.Queue(`SELECT txn_key, id, kind, status, reason, flags, amount, fee, cycle_id, content_hash FROM journal_entry WHERE txn_key = ANY($1)`, keys).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var k string
				var id [16]byte
				e := &existingEntry{}
				if err := rows.Scan(&k, &id, &e.kind, &e.status, &e.reason, &e.flags, &e.amount, &e.fee, &e.cycle, &e.contentHash); err != nil {
					return err
				}
				e.id = EntryID(id)
				st.existing[k] = e
			}
			return rows.Err()
		})
	if len(originalKeys) > 0 {
		b.Queue(originalsSQL, originalKeys).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				o := &original{}
				var id [16]byte
				var kind string
				var holdAmount *int64
				var holdExp *time.Time
				if err := rows.Scan(&o.key, &id, &kind, &o.status, &o.originalKey, &o.merchant, &o.terminal, &o.issuer,
					&o.currency, &o.amount, &o.fee, &o.consumedBy, &o.refunded, &o.feeReturned, &o.chargedBack,
					&holdAmount, &holdExp); err != nil {
					return err
				}
				o.id = EntryID(id)
				k, err := ParseKind(kind)
				if err != nil {
					return err
				}
				o.kind = k
				if holdAmount != nil && holdExp != nil {
					o.hold = &hold{amount: *holdAmount, expiresAt: *holdExp}
				}
				st.originals[o.key] = o
			}
			return rows.Err()
		})
		b.Queue(`SELECT e.txn_key, p.account, p.currency, p.amount FROM journal_entry e JOIN posting p ON p.entry_id = e.id
		          WHERE e.txn_key = ANY($1) ORDER BY e.txn_key, p.seq`, originalKeys).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var k string
				var p Posting
				if err := rows.Scan(&k, &p.Account, &p.Currency, &p.Amount); err != nil {
					return err
				}
				if o := st.originals[k]; o != nil {
					o.postings = append(o.postings, p)
				}
			}
			return rows.Err()
		})
	}
	if len(merchantIDs) > 0 {
		b.Queue(`SELECT id, name, fee_bp, rounding, refunds_return_fee, COALESCE(fee_cap, 0), settlement_account, payout_delay_days
		           FROM merchant WHERE id = ANY($1)`, merchantIDs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var m MerchantSettings
				var rounding string
				if err := rows.Scan(&m.ID, &m.Name, &m.FeeBP, &rounding, &m.RefundsReturnFee, &m.FeeCap,
					&m.SettlementAccount, &m.PayoutDelayDays); err != nil {
					return err
				}
				m.Rounding, m.FeeBPSet, m.PayoutDelaySet = Rounding(rounding), true, true
				st.merchants[m.ID] = m
			}
			return rows.Err()
		})
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("reading batch state: %w", err)
	}
	if st.cycle == 0 {
		return nil, fmt.Errorf("reading batch state: no open settlement cycle")
	}
	return st, nil
}

// sealedBatch is everything one batch writes.
type sealedBatch struct {
	chain       string
	seq         int64
	prevHash    []byte
	hash        []byte
	entries     []*entryRecord
	holds       []holdRecord
	newAccounts []accountKey
}

type holdRecord struct {
	key, merchant, issuer, currency string
	id                              EntryID
	amount                          int64
	expiresAt                       time.Time
}

type accountKey struct{ name, currency string }

type rollupKey struct {
	account, currency string
	cycle             int64
}

type rollup struct{ debit, credit, n int64 }

// writeBatch writes a sealed batch inside tx: the seal first (so a chain conflict fails before the
// bulk work), then accounts, entries, postings, holds and per-account rollups, by COPY.
func writeBatch(ctx context.Context, tx pgx.Tx, sb *sealedBatch) error {
	postings := 0
	for _, e := range sb.entries {
		postings += len(e.Postings)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ledger_batch (chain, seq, prev_hash, hash, entry_count, posting_count) VALUES ($1, $2, $3, $4, $5, $6)`,
		sb.chain, sb.seq, sb.prevHash, sb.hash, len(sb.entries), postings); err != nil {
		return fmt.Errorf("sealing batch %s/%d: %w", sb.chain, sb.seq, err)
	}
	if len(sb.newAccounts) > 0 {
		names := make([]string, len(sb.newAccounts))
		curs := make([]string, len(sb.newAccounts))
		kinds := make([]string, len(sb.newAccounts))
		for i, a := range sb.newAccounts {
			names[i], curs[i], kinds[i] = a.name, a.currency, accountKind(a.name)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO account (name, currency, kind) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
		                           ON CONFLICT DO NOTHING`, names, curs, kinds); err != nil {
			return fmt.Errorf("opening accounts: %w", err)
		}
	}
	entries := sb.entries
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"journal_entry"}, entryColumns, pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
		e := entries[i]
		var consumes any
		if e.Consumes != "" {
			consumes = e.Consumes
		}
		return []any{[16]byte(e.ID), e.Key, e.Kind, e.Status, e.Reason, e.Flags, e.OriginalKey, consumes, e.Merchant,
			e.Terminal, e.Issuer, e.Currency, e.Amount, e.Fee, e.Cycle, e.STAN, e.RRN, e.AuthCode, e.EntryMode,
			e.PANMasked, e.PANHash, e.ContentHash, e.At, sb.chain, sb.seq}, nil
	})); err != nil {
		return fmt.Errorf("copying %d entries: %w", len(entries), err)
	}
	rows := make([][]any, 0, postings)
	rollups := map[rollupKey]*rollup{}
	for _, e := range entries {
		for _, p := range e.Postings {
			rows = append(rows, []any{[16]byte(e.ID), p.Seq, p.Account, p.Currency, p.Amount, p.Cycle})
			if !rolledUp(p.Account) {
				continue
			}
			k := rollupKey{p.Account, p.Currency, p.Cycle}
			r := rollups[k]
			if r == nil {
				r = &rollup{}
				rollups[k] = r
			}
			if p.Amount > 0 {
				r.debit += p.Amount
			} else {
				r.credit -= p.Amount
			}
			r.n++
		}
	}
	if len(rows) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"posting"}, postingColumns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copying %d postings: %w", len(rows), err)
		}
	}
	if len(rollups) > 0 {
		rrows := make([][]any, 0, len(rollups))
		for k, r := range rollups {
			rrows = append(rrows, []any{sb.chain, sb.seq, k.account, k.currency, k.cycle, r.debit, r.credit, r.n})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"balance_rollup"}, rollupColumns, pgx.CopyFromRows(rrows)); err != nil {
			return fmt.Errorf("copying %d rollups: %w", len(rrows), err)
		}
	}
	if len(sb.holds) > 0 {
		hrows := make([][]any, len(sb.holds))
		for i, h := range sb.holds {
			hrows[i] = []any{h.key, [16]byte(h.id), h.merchant, h.issuer, h.currency, h.amount, h.expiresAt}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"hold"}, holdColumns, pgx.CopyFromRows(hrows)); err != nil {
			return fmt.Errorf("copying %d holds: %w", len(hrows), err)
		}
	}
	return nil
}

// rolledUp says whether an account's balance is kept in per-batch rollups: the hot system
// accounts (fee_income, settlement_bank, issuer receivables), which nearly every batch touches.
// A merchant's account is touched by few entries per batch, so a rollup row would cost as much as
// its postings; its balance is summed from its postings (indexed by account).
func rolledUp(account string) bool { return !strings.HasPrefix(account, prefixMerchant) }

var (
	entryColumns = []string{"id", "txn_key", "kind", "status", "reason", "flags", "original_key", "consumes", "merchant",
		"terminal", "issuer", "currency", "amount", "fee", "cycle_id", "stan", "rrn", "auth_code", "entry_mode",
		"pan_masked", "pan_hash", "content_hash", "txn_at", "chain", "batch_seq"}
	postingColumns = []string{"entry_id", "seq", "account", "currency", "amount", "cycle_id"}
	rollupColumns  = []string{"chain", "seq", "account", "currency", "cycle_id", "debit", "credit", "postings"}
	holdColumns    = []string{"txn_key", "entry_id", "merchant", "issuer", "currency", "amount", "expires_at"}
)

// chainHead reads the newest batch of a chain.
func chainHead(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, chain string) (int64, []byte, error) {
	var seq int64
	var h []byte
	err := q.QueryRow(ctx, `SELECT seq, hash FROM ledger_batch WHERE chain = $1 ORDER BY seq DESC LIMIT 1`, chain).Scan(&seq, &h)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, make([]byte, 32), nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("reading the head of chain %s: %w", chain, err)
	}
	return seq, h, nil
}

// errClass sorts database errors: retry (a concurrent writer won a unique key or a lock cycle),
// unavailable (no answer from the server), or a plain failure.
type errClass int

const (
	classFailed errClass = iota
	classRetry
	classUnavailable
)

func classify(err error) errClass {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "23505", pg.Code == "40001", pg.Code == "40P01":
			return classRetry
		case strings.HasPrefix(pg.Code, "08"), strings.HasPrefix(pg.Code, "57P"), pg.Code == "53300", strings.HasPrefix(pg.Code, "58"):
			return classUnavailable
		}
		return classFailed
	}
	return classUnavailable
}
