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
       h.amount, h.expires_at, EXISTS (SELECT 1 FROM settlement_close s WHERE s.cycle_id = e.cycle_id)
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

// queueBatchReads queues the reads one batch needs before its rules run onto b, after the shared
// cycle lock: the open cycle, the identities already booked, the originals the batch acts on (with
// their postings) and merchant settings. The caller sends b (one round trip) inside its transaction.
func queueBatchReads(b *pgx.Batch, st *batchState, keys, originalKeys, lockKeys, merchantIDs []string) {
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
					&holdAmount, &holdExp, &o.cycleClosed); err != nil {
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
}

func newBatchState() *batchState {
	return &batchState{existing: map[string]*existingEntry{}, originals: map[string]*original{}, merchants: map[string]MerchantSettings{}}
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

// writeBatch writes a sealed batch inside tx, in one round trip (see queueBatchWrites).
func writeBatch(ctx context.Context, tx pgx.Tx, sb *sealedBatch) error {
	var b pgx.Batch
	queueBatchWrites(&b, sb)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("writing batch %s/%d: %w", sb.chain, sb.seq, err)
	}
	return nil
}

// queueBatchWrites queues everything a sealed batch writes onto b: the seal first (so a chain
// conflict fails before the bulk work), then accounts, entries, postings, per-account rollups and
// holds, each one INSERT … SELECT FROM unnest of column arrays. Queued on one pgx.Batch, they cost
// one network round trip however many rows they carry (COPY would cost one per table).
func queueBatchWrites(b *pgx.Batch, sb *sealedBatch) {
	postings := 0
	for _, e := range sb.entries {
		postings += len(e.Postings)
	}
	b.Queue(`INSERT INTO ledger_batch (chain, seq, prev_hash, hash, entry_count, posting_count) VALUES ($1, $2, $3, $4, $5, $6)`,
		sb.chain, sb.seq, sb.prevHash, sb.hash, len(sb.entries), postings)
	if len(sb.newAccounts) > 0 {
		names := make([]string, len(sb.newAccounts))
		curs := make([]string, len(sb.newAccounts))
		kinds := make([]string, len(sb.newAccounts))
		for i, a := range sb.newAccounts {
			names[i], curs[i], kinds[i] = a.name, a.currency, accountKind(a.name)
		}
		b.Queue(`INSERT INTO account (name, currency, kind) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
		          ON CONFLICT DO NOTHING`, names, curs, kinds)
	}
	n := len(sb.entries)
	var (
		ids                                                         = make([][16]byte, n)
		keys, kinds, statuses, reasons, origs, merchants            = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		terminals, issuers, curs, stans, rrns, auths, modes, masked = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		consumes, issuerSTANs, issuerTimes                          = make([]*string, n), make([]*string, n), make([]*string, n)
		flags                                                       = make([]int16, n)
		amounts, fees, cycles                                       = make([]int64, n), make([]int64, n), make([]int64, n)
		panHashes, contentHashes                                    = make([][]byte, n), make([][]byte, n)
		ats                                                         = make([]time.Time, n)
	)
	rollups := map[rollupKey]*rollup{}
	var (
		pEntries          = make([][16]byte, 0, postings)
		pSeqs             = make([]int16, 0, postings)
		pAccounts, pCurs  = make([]string, 0, postings), make([]string, 0, postings)
		pAmounts, pCycles = make([]int64, 0, postings), make([]int64, 0, postings)
	)
	for i, e := range sb.entries {
		ids[i], keys[i], kinds[i], statuses[i], reasons[i], flags[i] = e.ID, e.Key, e.Kind, e.Status, e.Reason, e.Flags
		origs[i], merchants[i], terminals[i], issuers[i], curs[i] = e.OriginalKey, e.Merchant, e.Terminal, e.Issuer, e.Currency
		if e.Consumes != "" {
			c := e.Consumes
			consumes[i] = &c
		}
		if e.IssuerSTAN != "" || e.IssuerTime != "" {
			st, tm := e.IssuerSTAN, e.IssuerTime
			issuerSTANs[i], issuerTimes[i] = &st, &tm
		}
		amounts[i], fees[i], cycles[i] = e.Amount, e.Fee, e.Cycle
		stans[i], rrns[i], auths[i], modes[i], masked[i] = e.STAN, e.RRN, e.AuthCode, e.EntryMode, e.PANMasked
		panHashes[i], contentHashes[i], ats[i] = e.PANHash, e.ContentHash, e.At
		for _, p := range e.Postings {
			pEntries, pSeqs, pAccounts = append(pEntries, e.ID), append(pSeqs, p.Seq), append(pAccounts, p.Account)
			pCurs, pAmounts, pCycles = append(pCurs, p.Currency), append(pAmounts, p.Amount), append(pCycles, p.Cycle)
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
	if n > 0 {
		b.Queue(`INSERT INTO journal_entry (id, txn_key, kind, status, reason, flags, original_key, consumes, merchant, terminal, issuer,
		           currency, amount, fee, cycle_id, stan, rrn, auth_code, entry_mode, pan_masked, pan_hash, content_hash, txn_at,
		           issuer_stan, issuer_time, chain, batch_seq)
		         SELECT u.*, $26, $27 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int2[], $7::text[], $8::text[],
		           $9::text[], $10::text[], $11::text[], $12::text[], $13::int8[], $14::int8[], $15::int8[], $16::text[], $17::text[], $18::text[],
		           $19::text[], $20::text[], $21::bytea[], $22::bytea[], $23::timestamptz[], $24::text[], $25::text[]) AS u`,
			ids, keys, kinds, statuses, reasons, flags, origs, consumes, merchants, terminals, issuers, curs, amounts, fees, cycles,
			stans, rrns, auths, modes, masked, panHashes, contentHashes, ats, issuerSTANs, issuerTimes, sb.chain, sb.seq)
	}
	if len(pEntries) > 0 {
		b.Queue(`INSERT INTO posting (entry_id, seq, account, currency, amount, cycle_id)
		         SELECT * FROM unnest($1::uuid[], $2::int2[], $3::text[], $4::text[], $5::int8[], $6::int8[])`,
			pEntries, pSeqs, pAccounts, pCurs, pAmounts, pCycles)
	}
	if len(rollups) > 0 {
		var accs, rcurs []string
		var rcycles, debits, credits []int64
		var counts []int32
		for k, r := range rollups {
			accs, rcurs, rcycles = append(accs, k.account), append(rcurs, k.currency), append(rcycles, k.cycle)
			debits, credits, counts = append(debits, r.debit), append(credits, r.credit), append(counts, int32(r.n))
		}
		b.Queue(`INSERT INTO balance_rollup (chain, seq, account, currency, cycle_id, debit, credit, postings)
		         SELECT $1, $2, u.* FROM unnest($3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], $8::int4[]) AS u`,
			sb.chain, sb.seq, accs, rcurs, rcycles, debits, credits, counts)
	}
	if len(sb.holds) > 0 {
		hkeys, hm, hi, hc := make([]string, len(sb.holds)), make([]string, len(sb.holds)), make([]string, len(sb.holds)), make([]string, len(sb.holds))
		hids := make([][16]byte, len(sb.holds))
		hamounts := make([]int64, len(sb.holds))
		hexp := make([]time.Time, len(sb.holds))
		for i, h := range sb.holds {
			hkeys[i], hids[i], hm[i], hi[i], hc[i], hamounts[i], hexp[i] = h.key, h.id, h.merchant, h.issuer, h.currency, h.amount, h.expiresAt
		}
		b.Queue(`INSERT INTO hold (txn_key, entry_id, merchant, issuer, currency, amount, expires_at)
		         SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::timestamptz[])`,
			hkeys, hids, hm, hi, hc, hamounts, hexp)
	}
}

// rolledUp says whether an account's balance is kept in per-batch rollups: the hot system
// accounts (fee_income, settlement_bank, issuer receivables), which nearly every batch touches.
// A merchant's account is touched by few entries per batch, so a rollup row would cost as much as
// its postings; its balance is summed from its postings (indexed by account).
func rolledUp(account string) bool { return !strings.HasPrefix(account, prefixMerchant) }

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
