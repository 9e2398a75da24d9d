package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Totals are a terminal's batch totals from a 0500 batch settlement request. From the terminal's
// side, debits are sales (purchases, completions, bill payments) and credits are refunds; their
// reversals include voids. Amounts are minor units of the terminal's currency.
type Totals struct {
	Currency              string // ISO 4217 numeric; "" means the terminal's only currency
	CreditsCount          int64  // field 74
	CreditsReversalCount  int64  // field 75
	DebitsCount           int64  // field 76
	DebitsReversalCount   int64  // field 77
	CreditsAmount         int64  // field 86
	CreditsReversalAmount int64  // field 87
	DebitsAmount          int64  // field 88
	DebitsReversalAmount  int64  // field 89
	NetAmount             int64  // field 97 = 86 + 87 − 88 − 89 (the design brief's convention)
}

// Net is the field-97 value these totals imply.
func (t Totals) Net() int64 {
	return t.CreditsAmount + t.CreditsReversalAmount - t.DebitsAmount - t.DebitsReversalAmount
}

// FieldDiff is one field on which the terminal and the ledger disagree.
type FieldDiff struct {
	Field    int    `json:"field"`
	Name     string `json:"name"`
	Terminal int64  `json:"terminal"`
	Ledger   int64  `json:"ledger"`
}

// Mismatch is the outcome of a comparison; empty Diffs means the totals agree (0510 code 00,
// otherwise the switch answers 95 and the terminal uploads its batch).
type Mismatch struct {
	Terminal string      `json:"terminal"`
	Cycle    int64       `json:"cycle"`
	Ledger   Totals      `json:"ledger"`
	Diffs    []FieldDiff `json:"diffs"`
}

// OK says whether the totals agree.
func (m Mismatch) OK() bool { return len(m.Diffs) == 0 }

// Querier is what read-only ledger functions need: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CompareBatchTotals compares a terminal's 0500 totals with the ledger's entries of that terminal
// in cycle (0 = the open cycle). It reads the base tables, so q must be the application or owner
// role.
func CompareBatchTotals(ctx context.Context, q Querier, terminal string, cycle int64, t Totals) (Mismatch, error) {
	if cycle == 0 {
		if err := q.QueryRow(ctx, `SELECT id FROM settlement_cycle c WHERE NOT EXISTS (SELECT 1 FROM settlement_close x WHERE x.cycle_id = c.id)
		                            ORDER BY id LIMIT 1`).Scan(&cycle); err != nil {
			return Mismatch{}, fmt.Errorf("finding the open cycle: %w", err)
		}
	}
	var l Totals
	err := q.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE e.kind = 'refund'),
       count(*) FILTER (WHERE e.kind IN ('reversal', 'void') AND o.kind = 'refund'),
       count(*) FILTER (WHERE e.kind IN ('purchase', 'completion', 'bill_payment')),
       count(*) FILTER (WHERE e.kind IN ('reversal', 'void') AND o.kind IN ('purchase', 'completion', 'bill_payment')),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind = 'refund'), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind IN ('reversal', 'void') AND o.kind = 'refund'), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind IN ('purchase', 'completion', 'bill_payment')), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind IN ('reversal', 'void') AND o.kind IN ('purchase', 'completion', 'bill_payment')), 0)
  FROM journal_entry e LEFT JOIN journal_entry o ON o.txn_key = e.consumes
 WHERE e.terminal = $1 AND e.cycle_id = $2 AND e.status = 'booked' AND ($3 = '' OR e.currency = $3)`,
		terminal, cycle, t.Currency).Scan(&l.CreditsCount, &l.CreditsReversalCount, &l.DebitsCount, &l.DebitsReversalCount,
		&l.CreditsAmount, &l.CreditsReversalAmount, &l.DebitsAmount, &l.DebitsReversalAmount)
	if err != nil {
		return Mismatch{}, fmt.Errorf("totalling terminal %s in cycle %d: %w", terminal, cycle, err)
	}
	l.Currency = t.Currency
	l.NetAmount = l.Net()
	m := Mismatch{Terminal: terminal, Cycle: cycle, Ledger: l}
	for _, f := range []struct {
		field   int
		name    string
		te, led int64
	}{
		{74, "credits, number", t.CreditsCount, l.CreditsCount},
		{75, "credits reversal, number", t.CreditsReversalCount, l.CreditsReversalCount},
		{76, "debits, number", t.DebitsCount, l.DebitsCount},
		{77, "debits reversal, number", t.DebitsReversalCount, l.DebitsReversalCount},
		{86, "credits, amount", t.CreditsAmount, l.CreditsAmount},
		{87, "credits reversal, amount", t.CreditsReversalAmount, l.CreditsReversalAmount},
		{88, "debits, amount", t.DebitsAmount, l.DebitsAmount},
		{89, "debits reversal, amount", t.DebitsReversalAmount, l.DebitsReversalAmount},
		{97, "amount, net settlement", t.NetAmount, l.NetAmount},
	} {
		if f.te != f.led {
			m.Diffs = append(m.Diffs, FieldDiff{Field: f.field, Name: f.name, Terminal: f.te, Ledger: f.led})
		}
	}
	return m, nil
}
