package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"time"
)

// VerifyReport is what `poswitch ledger verify` prints. Problems lists divergences in chain order;
// the first is the first divergence.
type VerifyReport struct {
	Chains       int               `json:"chains"`
	Batches      int64             `json:"batches"`
	Entries      int64             `json:"entries"`
	Postings     int64             `json:"postings"`
	Heads        map[string]string `json:"heads"` // chain → hex hash of its newest batch: record these
	TrialBalance map[string]int64  `json:"trial_balance"`
	Problems     []string          `json:"problems"`
	Took         time.Duration     `json:"took_ns"`
}

// OK says whether nothing diverged.
func (r VerifyReport) OK() bool { return len(r.Problems) == 0 }

// maxProblems bounds the report; the first divergence is what matters.
const maxProblems = 50

func (r *VerifyReport) problem(format string, a ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
	}
}

// Verify recomputes every batch hash of every chain from the entries and postings, checks the
// chain links, that every entry balances per currency, that each batch's rollups equal its
// postings, that no posting lacks an entry, and that the trial balance is zero per currency. It
// reads only the auditor views, so the read-only auditor role can run it.
func Verify(ctx context.Context, q Querier) (VerifyReport, error) {
	start := time.Now()
	rep := VerifyReport{Heads: map[string]string{}, TrialBalance: map[string]int64{}}

	type batchRow struct {
		seq            int64
		prev, hash     []byte
		entries, posts int
	}
	batches := map[string][]batchRow{}
	rows, err := q.Query(ctx, `SELECT chain, seq, prev_hash, hash, entry_count, posting_count FROM v_batches ORDER BY chain, seq`)
	if err != nil {
		return rep, fmt.Errorf("reading batches: %w", err)
	}
	for rows.Next() {
		var c string
		var b batchRow
		if err := rows.Scan(&c, &b.seq, &b.prev, &b.hash, &b.entries, &b.posts); err != nil {
			rows.Close()
			return rep, err
		}
		batches[c] = append(batches[c], b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, err
	}

	// Recompute each batch's hash from its entries, streamed in (chain, batch, id) order.
	type key struct {
		chain string
		seq   int64
	}
	computed := map[key][]byte{}
	counts := map[key][2]int{}
	erows, err := q.Query(ctx, `
SELECT e.chain, e.batch_seq, e.id, e.txn_key, e.kind, e.status, e.reason, e.flags, e.original_key, COALESCE(e.consumes, ''),
       e.merchant, e.terminal, e.issuer, e.currency, e.amount, e.fee, e.cycle_id, e.stan, e.rrn, e.auth_code, e.entry_mode,
       e.pan_masked, e.pan_hash, e.content_hash, e.txn_at,
       COALESCE(array_agg(p.seq ORDER BY p.seq) FILTER (WHERE p.seq IS NOT NULL), '{}'),
       COALESCE(array_agg(p.account ORDER BY p.seq) FILTER (WHERE p.seq IS NOT NULL), '{}'),
       COALESCE(array_agg(p.currency::text ORDER BY p.seq) FILTER (WHERE p.seq IS NOT NULL), '{}'),
       COALESCE(array_agg(p.amount ORDER BY p.seq) FILTER (WHERE p.seq IS NOT NULL), '{}'),
       COALESCE(array_agg(p.cycle_id ORDER BY p.seq) FILTER (WHERE p.seq IS NOT NULL), '{}')
  FROM v_journal_entries e LEFT JOIN v_postings p ON p.entry_id = e.id
 GROUP BY e.id, e.chain, e.batch_seq, e.txn_key, e.kind, e.status, e.reason, e.flags, e.original_key, e.consumes, e.merchant,
          e.terminal, e.issuer, e.currency, e.amount, e.fee, e.cycle_id, e.stan, e.rrn, e.auth_code, e.entry_mode,
          e.pan_masked, e.pan_hash, e.content_hash, e.txn_at
 ORDER BY e.chain, e.batch_seq, e.id`)
	if err != nil {
		return rep, fmt.Errorf("reading entries: %w", err)
	}
	var cur key
	var group []*entryRecord
	flush := func() {
		if group == nil {
			return
		}
		var prev []byte
		for _, b := range batches[cur.chain] {
			if b.seq == cur.seq {
				prev = b.prev
			}
		}
		n := 0
		for _, e := range group {
			n += len(e.Postings)
		}
		computed[cur] = batchHash(prev, cur.chain, cur.seq, group)
		counts[cur] = [2]int{len(group), n}
		group = nil
	}
	for erows.Next() {
		var k key
		e := &entryRecord{}
		var id [16]byte
		var seqs []int16
		var accts, curs []string
		var amts, cycles []int64
		var cons string
		if err := erows.Scan(&k.chain, &k.seq, &id, &e.Key, &e.Kind, &e.Status, &e.Reason, &e.Flags, &e.OriginalKey, &cons,
			&e.Merchant, &e.Terminal, &e.Issuer, &e.Currency, &e.Amount, &e.Fee, &e.Cycle, &e.STAN, &e.RRN, &e.AuthCode,
			&e.EntryMode, &e.PANMasked, &e.PANHash, &e.ContentHash, &e.At, &seqs, &accts, &curs, &amts, &cycles); err != nil {
			erows.Close()
			return rep, fmt.Errorf("reading entries: %w", err)
		}
		e.ID, e.Consumes = EntryID(id), cons
		if k != cur {
			flush()
			cur = k
		}
		sums := map[string]int64{}
		for i := range seqs {
			e.Postings = append(e.Postings, postingRecord{Seq: seqs[i], Account: accts[i], Currency: curs[i], Amount: amts[i], Cycle: cycles[i]})
			sums[curs[i]] += amts[i]
			rep.TrialBalance[curs[i]] += amts[i]
			if cycles[i] != e.Cycle {
				rep.problem("entry %s (%s): posting %d in cycle %d, entry in cycle %d", e.ID, e.Key, seqs[i], cycles[i], e.Cycle)
			}
		}
		for c, s := range sums {
			if s != 0 {
				rep.problem("entry %s (%s) does not balance in %s: sum %d", e.ID, e.Key, c, s)
			}
		}
		if e.Status != string(StatusBooked) && len(e.Postings) > 0 {
			rep.problem("entry %s (%s) is %s but has postings", e.ID, e.Key, e.Status)
		}
		rep.Entries++
		rep.Postings += int64(len(e.Postings))
		group = append(group, e)
	}
	erows.Close()
	if err := erows.Err(); err != nil {
		return rep, fmt.Errorf("reading entries: %w", err)
	}
	flush()

	chains := make([]string, 0, len(batches))
	for c := range batches {
		chains = append(chains, c)
	}
	sort.Strings(chains)
	rep.Chains = len(chains)
	for _, c := range chains {
		prev := make([]byte, 32)
		for i, b := range batches[c] {
			rep.Batches++
			k := key{c, b.seq}
			if b.seq != int64(i+1) {
				rep.problem("chain %s: batch %d follows batch %d (missing batches)", c, b.seq, int64(i))
			}
			if !bytes.Equal(b.prev, prev) {
				rep.problem("chain %s batch %d: previous hash %x does not match batch %d's hash %x", c, b.seq, b.prev, b.seq-1, prev)
			}
			got, ok := computed[k]
			if !ok {
				got = batchHash(b.prev, c, b.seq, nil)
			}
			if !bytes.Equal(got, b.hash) {
				rep.problem("chain %s batch %d: contents hash to %x, sealed %x (entries or postings changed, added or removed)", c, b.seq, got, b.hash)
			}
			if n := counts[k]; n[0] != b.entries || n[1] != b.posts {
				rep.problem("chain %s batch %d: sealed with %d entries and %d postings, holds %d and %d", c, b.seq, b.entries, b.posts, n[0], n[1])
			}
			delete(computed, k)
			prev = b.hash
		}
		rep.Heads[c] = hex.EncodeToString(prev)
	}
	for k := range computed {
		rep.problem("entries claim chain %s batch %d, which was never sealed", k.chain, k.seq)
	}

	// Rollups must equal the postings they summarise, batch by batch.
	rrows, err := q.Query(ctx, `
WITH p AS (SELECT chain, batch_seq AS seq, account, currency, cycle_id, sum(debit)::bigint AS debit, sum(credit)::bigint AS credit, count(*)::int AS n
             FROM v_postings WHERE chain IS NOT NULL AND account NOT LIKE 'merchant\_payable:%' GROUP BY chain, batch_seq, account, currency, cycle_id)
SELECT COALESCE(p.chain, r.chain), COALESCE(p.seq, r.seq), COALESCE(p.account, r.account), COALESCE(p.currency, r.currency),
       COALESCE(p.debit, 0), COALESCE(p.credit, 0), COALESCE(r.debit, 0), COALESCE(r.credit, 0)
  FROM p FULL JOIN v_balance_rollups r
    ON r.chain = p.chain AND r.seq = p.seq AND r.account = p.account AND r.currency = p.currency AND r.cycle_id = p.cycle_id
 WHERE p.chain IS NULL OR r.chain IS NULL OR p.debit <> r.debit OR p.credit <> r.credit OR p.n <> r.postings
 ORDER BY 1, 2, 3 LIMIT 50`)
	if err != nil {
		return rep, fmt.Errorf("comparing rollups: %w", err)
	}
	for rrows.Next() {
		var c, a, cu string
		var s, pd, pc, rd, rc int64
		if err := rrows.Scan(&c, &s, &a, &cu, &pd, &pc, &rd, &rc); err != nil {
			rrows.Close()
			return rep, err
		}
		rep.problem("chain %s batch %d: %s %s balance rollup says debit %d credit %d, postings say %d and %d", c, s, a, cu, rd, rc, pd, pc)
	}
	rrows.Close()
	var orphans int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM v_postings WHERE txn_key IS NULL`).Scan(&orphans); err != nil {
		return rep, fmt.Errorf("counting orphan postings: %w", err)
	}
	if orphans > 0 {
		rep.problem("%d postings belong to no journal entry", orphans)
	}
	for c, s := range rep.TrialBalance {
		if s != 0 {
			rep.problem("trial balance in %s is %d, not zero", c, s)
		}
	}
	rep.Took = time.Since(start)
	return rep, nil
}
