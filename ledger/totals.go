package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Totals are a terminal's batch totals from a 0500 batch settlement request. From the terminal's
// side, debits are sales (purchases, completions, bill payments) and credits are refunds; their
// "reversal" fields count voids. A transaction the terminal reversed (0400/0420) is not in its
// batch at all, so a sale or refund the ledger reversed counts nowhere. Amounts are minor units of
// the terminal's currency.
type Totals struct {
	Currency              string // ISO 4217 numeric; "" means the terminal's only currency
	CreditsCount          int64  // field 74
	CreditsReversalCount  int64  // field 75
	DebitsCount           int64  // field 76
	DebitsReversalCount   int64  // field 77
	TransferCount         int64  // field 78: always 0 in the ledger (no transfers)
	TransferReversalCount int64  // field 79: always 0 in the ledger
	InquiriesCount        int64  // field 80: reported, never compared (inquiries are not booked)
	AuthorizationsCount   int64  // field 81: pre-authorisations booked and not reversed
	CreditsProcessingFee  int64  // field 82: always 0 in the ledger (no processing fees)
	CreditsTransactionFee int64  // field 83: fee returned by refunds
	DebitsProcessingFee   int64  // field 84: always 0 in the ledger
	DebitsTransactionFee  int64  // field 85: fee charged on sales
	CreditsAmount         int64  // field 86
	CreditsReversalAmount int64  // field 87
	DebitsAmount          int64  // field 88
	DebitsReversalAmount  int64  // field 89
	NetAmount             int64  // field 97 = 86 + 87 − 88 − 89 (the design brief's convention)
	// Optional lists which of the optional fields 78-85 the terminal sent; only those are
	// compared. Fields 74-77, 86-89 and 97 are always compared.
	Optional map[int]bool
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
	// Reported are optional fields the terminal sent that the ledger cannot check (80: inquiries
	// are not booked), with the terminal's value, for the report.
	Reported []FieldDiff `json:"reported,omitempty"`
}

// OK says whether the totals agree.
func (m Mismatch) OK() bool { return len(m.Diffs) == 0 }

// Querier is what read-only ledger functions need: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// openCycle finds the open settlement cycle.
func openCycle(ctx context.Context, q Querier) (int64, error) {
	var cycle int64
	if err := q.QueryRow(ctx, `SELECT id FROM settlement_cycle c WHERE NOT EXISTS (SELECT 1 FROM settlement_close x WHERE x.cycle_id = c.id)
	                            ORDER BY id LIMIT 1`).Scan(&cycle); err != nil {
		return 0, fmt.Errorf("finding the open cycle: %w", err)
	}
	return cycle, nil
}

// terminalTotalsSQL totals one terminal's booked entries of one cycle the way the terminal counts
// them. e is the entry, o what it cancels (for voids), r what cancelled it: a sale, refund or
// pre-authorisation a reversal cancelled is left out, as the terminal leaves it out of its batch.
const terminalTotalsSQL = `
SELECT count(*) FILTER (WHERE e.kind = 'refund' AND NOT reversed),
       count(*) FILTER (WHERE e.kind = 'void' AND o.kind = 'refund'),
       count(*) FILTER (WHERE e.kind IN ('purchase', 'completion', 'bill_payment') AND NOT reversed),
       count(*) FILTER (WHERE e.kind = 'void' AND o.kind IN ('purchase', 'completion', 'bill_payment')),
       count(*) FILTER (WHERE e.kind = 'preauth' AND NOT reversed),
       COALESCE(sum(e.fee) FILTER (WHERE e.kind = 'refund' AND NOT reversed), 0),
       COALESCE(sum(e.fee) FILTER (WHERE e.kind IN ('purchase', 'completion', 'bill_payment') AND NOT reversed), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind = 'refund' AND NOT reversed), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind = 'void' AND o.kind = 'refund'), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind IN ('purchase', 'completion', 'bill_payment') AND NOT reversed), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind = 'void' AND o.kind IN ('purchase', 'completion', 'bill_payment')), 0)
  FROM (SELECT e.kind, e.amount, e.fee, e.consumes, COALESCE(r.kind = 'reversal', false) AS reversed
          FROM journal_entry e LEFT JOIN journal_entry r ON r.consumes = e.txn_key
         WHERE e.terminal = $1 AND e.cycle_id = $2 AND e.status = 'booked' AND ($3 = '' OR e.currency = $3)) e
  LEFT JOIN journal_entry o ON o.txn_key = e.consumes`

// CompareBatchTotals compares a terminal's 0500 totals with the ledger's entries of that terminal
// in cycle (0 = the open cycle). It reads the base tables, so q must be the application or owner
// role.
func CompareBatchTotals(ctx context.Context, q Querier, terminal string, cycle int64, t Totals) (Mismatch, error) {
	if cycle == 0 {
		var err error
		if cycle, err = openCycle(ctx, q); err != nil {
			return Mismatch{}, err
		}
	}
	var l Totals
	err := q.QueryRow(ctx, terminalTotalsSQL, terminal, cycle, t.Currency).Scan(&l.CreditsCount, &l.CreditsReversalCount,
		&l.DebitsCount, &l.DebitsReversalCount, &l.AuthorizationsCount, &l.CreditsTransactionFee, &l.DebitsTransactionFee,
		&l.CreditsAmount, &l.CreditsReversalAmount, &l.DebitsAmount, &l.DebitsReversalAmount)
	if err != nil {
		return Mismatch{}, fmt.Errorf("totalling terminal %s in cycle %d: %w", terminal, cycle, err)
	}
	l.Currency = t.Currency
	l.NetAmount = l.Net()
	m := Mismatch{Terminal: terminal, Cycle: cycle, Ledger: l}
	for _, f := range []struct {
		field    int
		name     string
		te, led  int64
		optional bool
	}{
		{74, "credits, number", t.CreditsCount, l.CreditsCount, false},
		{75, "credits reversal, number", t.CreditsReversalCount, l.CreditsReversalCount, false},
		{76, "debits, number", t.DebitsCount, l.DebitsCount, false},
		{77, "debits reversal, number", t.DebitsReversalCount, l.DebitsReversalCount, false},
		{78, "transfer, number", t.TransferCount, l.TransferCount, true},
		{79, "transfer reversal, number", t.TransferReversalCount, l.TransferReversalCount, true},
		{81, "authorizations, number", t.AuthorizationsCount, l.AuthorizationsCount, true},
		{82, "credits, processing fee amount", t.CreditsProcessingFee, l.CreditsProcessingFee, true},
		{83, "credits, transaction fee amount", t.CreditsTransactionFee, l.CreditsTransactionFee, true},
		{84, "debits, processing fee amount", t.DebitsProcessingFee, l.DebitsProcessingFee, true},
		{85, "debits, transaction fee amount", t.DebitsTransactionFee, l.DebitsTransactionFee, true},
		{86, "credits, amount", t.CreditsAmount, l.CreditsAmount, false},
		{87, "credits reversal, amount", t.CreditsReversalAmount, l.CreditsReversalAmount, false},
		{88, "debits, amount", t.DebitsAmount, l.DebitsAmount, false},
		{89, "debits reversal, amount", t.DebitsReversalAmount, l.DebitsReversalAmount, false},
		{97, "amount, net settlement", t.NetAmount, l.NetAmount, false},
	} {
		if f.optional && !t.Optional[f.field] {
			continue
		}
		if f.te != f.led {
			m.Diffs = append(m.Diffs, FieldDiff{Field: f.field, Name: f.name, Terminal: f.te, Ledger: f.led})
		}
	}
	if t.Optional[80] {
		m.Reported = append(m.Reported, FieldDiff{Field: 80, Name: "inquiries, number (not booked)", Terminal: t.InquiriesCount})
	}
	return m, nil
}

// BatchEntry is one transaction of a terminal's batch as the ledger has it, for reconciling a
// batch upload (0320): its key, kind and amount, never card data.
type BatchEntry struct {
	Key      string
	Kind     Kind
	Amount   int64
	Currency string
	STAN     string
	RRN      string
	AuthCode string
}

// maxBatchEntries bounds one terminal's batch as read for a reconciliation.
const maxBatchEntries = 100_000

// TerminalBatch lists the entries of terminal in cycle (0 = the open cycle) that a terminal keeps
// in its batch: booked sales, refunds, pre-authorisations and voids, without those a reversal
// cancelled (the terminal dropped them) and without reversals. At most 100,000 entries; more is
// an error rather than a partial answer.
func TerminalBatch(ctx context.Context, q Querier, terminal string, cycle int64) ([]BatchEntry, error) {
	if cycle == 0 {
		var err error
		if cycle, err = openCycle(ctx, q); err != nil {
			return nil, err
		}
	}
	rows, err := q.Query(ctx, `
SELECT e.txn_key, e.kind, e.amount, e.currency, e.stan, e.rrn, e.auth_code
  FROM journal_entry e
 WHERE e.terminal = $1 AND e.cycle_id = $2 AND e.status = 'booked'
   AND e.kind IN ('purchase', 'completion', 'bill_payment', 'refund', 'preauth', 'void')
   AND NOT EXISTS (SELECT 1 FROM journal_entry r WHERE r.consumes = e.txn_key AND r.kind = 'reversal')
 ORDER BY e.txn_key LIMIT $3`, terminal, cycle, maxBatchEntries+1)
	if err != nil {
		return nil, fmt.Errorf("reading the batch of terminal %s in cycle %d: %w", terminal, cycle, err)
	}
	defer rows.Close()
	var out []BatchEntry
	for rows.Next() {
		var e BatchEntry
		var kind string
		if err := rows.Scan(&e.Key, &kind, &e.Amount, &e.Currency, &e.STAN, &e.RRN, &e.AuthCode); err != nil {
			return nil, fmt.Errorf("reading the batch of terminal %s: %w", terminal, err)
		}
		if e.Kind, err = ParseKind(kind); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the batch of terminal %s: %w", terminal, err)
	}
	if len(out) > maxBatchEntries {
		return nil, fmt.Errorf("terminal %s has more than %d entries in cycle %d", terminal, maxBatchEntries, cycle)
	}
	return out, nil
}
