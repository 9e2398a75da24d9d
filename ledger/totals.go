package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	Terminal string `json:"terminal"`
	// Cycle is the settlement cycle compared (CompareBatchTotals); 0 for a batch window.
	Cycle int64 `json:"cycle,omitempty"`
	// Window is the terminal's batch compared (CompareBatchWindow); zero for a cycle.
	Window BatchWindow `json:"window,omitzero"`
	Ledger Totals      `json:"ledger"`
	Diffs  []FieldDiff `json:"diffs"`
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

// Which of a terminal's entries a total or a batch list covers: those of one settlement cycle
// ($2), or those of one batch window (booked after $2, NULL meaning ever, and at or before $3).
const (
	scopeCycle  = `e.terminal = $1 AND e.cycle_id = $2`
	scopeWindow = `e.terminal = $1 AND e.booked_at > COALESCE($2::timestamptz, '-infinity') AND e.booked_at <= $3`
)

// terminalTotalsSQL totals one terminal's booked entries of scope the way the terminal counts them;
// currency is the placeholder of the currency argument (empty for every currency). e is the entry, o
// what it cancels (for voids), r what cancelled it: a sale, refund or pre-authorisation a reversal
// cancelled is left out, as the terminal leaves it out of its batch.
func terminalTotalsSQL(scope, currency string) string {
	return `
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
         WHERE ` + scope + ` AND e.status = 'booked' AND (` + currency + `::text = '' OR e.currency = ` + currency + `)) e
  LEFT JOIN journal_entry o ON o.txn_key = e.consumes`
}

// ledgerTotals runs a terminalTotalsSQL query.
func ledgerTotals(ctx context.Context, q Querier, sql string, args ...any) (Totals, error) {
	var l Totals
	err := q.QueryRow(ctx, sql, args...).Scan(&l.CreditsCount, &l.CreditsReversalCount,
		&l.DebitsCount, &l.DebitsReversalCount, &l.AuthorizationsCount, &l.CreditsTransactionFee, &l.DebitsTransactionFee,
		&l.CreditsAmount, &l.CreditsReversalAmount, &l.DebitsAmount, &l.DebitsReversalAmount)
	l.NetAmount = l.Net()
	return l, err
}

// CompareBatchTotals compares a terminal's 0500 totals with the ledger's entries of that terminal
// in cycle (0 = the open cycle). The switch compares a 0500 with the terminal's batch window
// instead (CompareBatchWindow): a terminal's batch is not a settlement cycle. It reads the base
// tables, so q must be the application or owner role.
func CompareBatchTotals(ctx context.Context, q Querier, terminal string, cycle int64, t Totals) (Mismatch, error) {
	if cycle == 0 {
		var err error
		if cycle, err = openCycle(ctx, q); err != nil {
			return Mismatch{}, err
		}
	}
	l, err := ledgerTotals(ctx, q, terminalTotalsSQL(scopeCycle, "$3"), terminal, cycle, t.Currency)
	if err != nil {
		return Mismatch{}, fmt.Errorf("totalling terminal %s in cycle %d: %w", terminal, cycle, err)
	}
	m := compareTotals(terminal, t, l)
	m.Cycle = cycle
	return m, nil
}

// compareTotals compares the terminal's totals t with the ledger's l.
func compareTotals(terminal string, t, l Totals) Mismatch {
	l.Currency = t.Currency
	m := Mismatch{Terminal: terminal, Ledger: l}
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
	return m
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

// batchEntriesSQL lists what a terminal keeps in its batch among its entries of scope.
func batchEntriesSQL(scope, limit string) string {
	return `
SELECT e.txn_key, e.kind, e.amount, e.currency, e.stan, e.rrn, e.auth_code
  FROM journal_entry e
 WHERE ` + scope + ` AND e.status = 'booked'
   AND e.kind IN ('purchase', 'completion', 'bill_payment', 'refund', 'preauth', 'void')
   AND NOT EXISTS (SELECT 1 FROM journal_entry r WHERE r.consumes = e.txn_key AND r.kind = 'reversal')
 ORDER BY e.txn_key LIMIT ` + limit
}

// TerminalBatch lists the entries of terminal in cycle (0 = the open cycle) that a terminal keeps
// in its batch: booked sales, refunds, pre-authorisations and voids, without those a reversal
// cancelled (the terminal dropped them) and without reversals. At most 100,000 entries; more is
// an error rather than a partial answer. The switch lists a batch window instead
// (BatchWindowEntries).
func TerminalBatch(ctx context.Context, q Querier, terminal string, cycle int64) ([]BatchEntry, error) {
	if cycle == 0 {
		var err error
		if cycle, err = openCycle(ctx, q); err != nil {
			return nil, err
		}
	}
	out, err := batchEntries(ctx, q, batchEntriesSQL(scopeCycle, "$3"), terminal, cycle, maxBatchEntries+1)
	if err != nil {
		return nil, fmt.Errorf("reading the batch of terminal %s in cycle %d: %w", terminal, cycle, err)
	}
	return out, nil
}

func batchEntries(ctx context.Context, q Querier, sql string, args ...any) ([]BatchEntry, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []BatchEntry
	for rows.Next() {
		var e BatchEntry
		var kind string
		if err := rows.Scan(&e.Key, &kind, &e.Amount, &e.Currency, &e.STAN, &e.RRN, &e.AuthCode); err != nil {
			return nil, err
		}
		if e.Kind, err = ParseKind(kind); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) > maxBatchEntries {
		return nil, fmt.Errorf("more than %d entries", maxBatchEntries)
	}
	return out, nil
}

// BatchWindow is one terminal's batch as the ledger sees it: the terminal's entries booked
// (journal_entry.booked_at) after Since and at or before Upto, in whatever settlement cycle they
// fell. Terminal batches and the acquirer's settlement cycles are independent: a terminal may
// settle several times in one cycle, or once across a cut-over.
//
// The boundary rule: a terminal sends its 0500 only after every answer of its batch arrived, and
// the switch answers an approval only after its entry committed. booked_at is the start of the
// committing transaction, so every entry of the batch has booked_at before the 0500 arrived, hence
// before Upto (read when the 0500 is compared). The next batch's first request follows the 0510,
// which is sent after the close committed, so its entry's booked_at is after Upto. An entry still in
// flight when the terminal settles (a terminal that did not wait for an answer) belongs to the next
// batch if its transaction began after Upto, and is in neither if it began before and committed
// after the comparison: the upload after the next mismatch shows it.
type BatchWindow struct {
	Terminal string    `json:"terminal"`
	Since    time.Time `json:"since,omitzero"` // the terminal's last close's Upto; zero: it never closed a batch
	Upto     time.Time `json:"upto"`           // the database's clock when the window was opened
}

// since is Since as a query argument: NULL (−infinity) for a terminal's first batch.
func (w BatchWindow) since() any {
	if w.Since.IsZero() {
		return nil
	}
	return w.Since
}

func (w BatchWindow) check() error {
	if w.Terminal == "" || w.Upto.IsZero() {
		return fmt.Errorf("batch window %+v: a terminal and an end are required", w)
	}
	return nil
}

// OpenBatchWindow reads terminal's open batch: its entries booked since its last close
// (terminal_batch_close) up to now, by the database's clock.
func OpenBatchWindow(ctx context.Context, q Querier, terminal string) (BatchWindow, error) {
	w := BatchWindow{Terminal: terminal}
	var since *time.Time
	err := q.QueryRow(ctx, `SELECT (SELECT max(upto) FROM terminal_batch_close WHERE terminal = $1), clock_timestamp()`,
		terminal).Scan(&since, &w.Upto)
	if err != nil {
		return BatchWindow{}, fmt.Errorf("opening the batch window of terminal %s: %w", terminal, err)
	}
	if since != nil {
		w.Since = *since
		if !w.Upto.After(w.Since) {
			return BatchWindow{}, fmt.Errorf("opening the batch window of terminal %s: the database clock (%s) is not past its last close (%s)",
				terminal, w.Upto.Format(time.RFC3339Nano), w.Since.Format(time.RFC3339Nano))
		}
	}
	return w, nil
}

// CompareBatchWindow compares a terminal's 0500 totals with the ledger's entries of the terminal's
// batch window w, counted as CompareBatchTotals counts a cycle. It reads the base tables, so q must
// be the application or owner role.
func CompareBatchWindow(ctx context.Context, q Querier, w BatchWindow, t Totals) (Mismatch, error) {
	if err := w.check(); err != nil {
		return Mismatch{}, err
	}
	l, err := ledgerTotals(ctx, q, terminalTotalsSQL(scopeWindow, "$4"), w.Terminal, w.since(), w.Upto, t.Currency)
	if err != nil {
		return Mismatch{}, fmt.Errorf("totalling the batch of terminal %s: %w", w.Terminal, err)
	}
	m := compareTotals(w.Terminal, t, l)
	m.Window = w
	return m, nil
}

// BatchWindowEntries lists what the terminal keeps in its batch window w, as TerminalBatch lists a
// cycle: at most 100,000 entries, more is an error.
func BatchWindowEntries(ctx context.Context, q Querier, w BatchWindow) ([]BatchEntry, error) {
	if err := w.check(); err != nil {
		return nil, err
	}
	out, err := batchEntries(ctx, q, batchEntriesSQL(scopeWindow, "$4"), w.Terminal, w.since(), w.Upto, maxBatchEntries+1)
	if err != nil {
		return nil, fmt.Errorf("reading the batch of terminal %s: %w", w.Terminal, err)
	}
	return out, nil
}

// BatchClosedBy says what closed a terminal's batch.
type BatchClosedBy string

const (
	BatchBalanced BatchClosedBy = "balanced" // a 0500 whose totals agreed (0510 00)
	BatchUploaded BatchClosedBy = "upload"   // the trailer (0500 960000) after a batch upload
)

// BatchClose is one closed terminal batch (a terminal_batch_close row).
type BatchClose struct {
	Window   BatchWindow   `json:"window"`
	By       BatchClosedBy `json:"closed_by"`
	TxnKey   string        `json:"txn_key"` // identity of the 0500 that closed it
	Merchant string        `json:"merchant,omitempty"`
	Currency string        `json:"currency,omitempty"` // field 49 of that 0500; "": every currency
	// Ledger is the ledger's totals of the window; fields 74-77, 86-89 and 97 are kept.
	Ledger        Totals    `json:"ledger"`
	TerminalNet   int64     `json:"terminal_net"` // the 0500's field 97
	Differences   int       `json:"differences"`  // compared fields that differed in that 0500
	Uploaded      int       `json:"uploaded,omitempty"`
	TerminalOnly  int       `json:"terminal_only,omitempty"`
	LedgerOnly    int       `json:"ledger_only,omitempty"`
	AmountDiffers int       `json:"amount_differs,omitempty"`
	ClosedAt      time.Time `json:"closed_at"` // set by the database
}

// CloseBatch records that the terminal's batch c.Window is closed: its next batch starts at
// c.Window.Upto. It reports false and records nothing when the batch was closed already, by
// another close of the same terminal since c.Window.Since (two settlements racing) or by the same
// 0500 (c.TxnKey). q is the application role's pool, a connection or a transaction.
func CloseBatch(ctx context.Context, q Querier, c BatchClose) (bool, error) {
	if err := c.Window.check(); err != nil {
		return false, err
	}
	if c.TxnKey == "" || (c.By != BatchBalanced && c.By != BatchUploaded) {
		return false, fmt.Errorf("closing the batch of terminal %s: a closing message and a reason are required", c.Window.Terminal)
	}
	l := c.Ledger
	err := q.QueryRow(ctx, `
INSERT INTO terminal_batch_close (terminal, since, upto, closed_by, txn_key, merchant, currency,
       credits_count, credits_reversal_count, debits_count, debits_reversal_count, credits_amount,
       credits_reversal_amount, debits_amount, debits_reversal_amount, net_amount, terminal_net_amount,
       differences, uploaded, terminal_only, ledger_only, amount_differs)
VALUES ($1, COALESCE($2::timestamptz, '-infinity'), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
        $18, $19, $20, $21, $22)
ON CONFLICT DO NOTHING RETURNING closed_at`,
		c.Window.Terminal, c.Window.since(), c.Window.Upto, string(c.By), c.TxnKey, c.Merchant, c.Currency,
		l.CreditsCount, l.CreditsReversalCount, l.DebitsCount, l.DebitsReversalCount, l.CreditsAmount,
		l.CreditsReversalAmount, l.DebitsAmount, l.DebitsReversalAmount, l.Net(), c.TerminalNet,
		c.Differences, c.Uploaded, c.TerminalOnly, c.LedgerOnly, c.AmountDiffers).Scan(&c.ClosedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("closing the batch of terminal %s: %w", c.Window.Terminal, err)
	}
	return true, nil
}

const batchCloseColumns = `terminal, NULLIF(since, '-infinity'), upto, closed_by, txn_key, merchant, currency,
       credits_count, credits_reversal_count, debits_count, debits_reversal_count, credits_amount,
       credits_reversal_amount, debits_amount, debits_reversal_amount, net_amount, terminal_net_amount,
       differences, uploaded, terminal_only, ledger_only, amount_differs, closed_at`

func scanBatchClose(r pgx.Row) (BatchClose, error) {
	var c BatchClose
	var since *time.Time
	var by string
	l := &c.Ledger
	err := r.Scan(&c.Window.Terminal, &since, &c.Window.Upto, &by, &c.TxnKey, &c.Merchant, &c.Currency,
		&l.CreditsCount, &l.CreditsReversalCount, &l.DebitsCount, &l.DebitsReversalCount, &l.CreditsAmount,
		&l.CreditsReversalAmount, &l.DebitsAmount, &l.DebitsReversalAmount, &l.NetAmount, &c.TerminalNet,
		&c.Differences, &c.Uploaded, &c.TerminalOnly, &c.LedgerOnly, &c.AmountDiffers, &c.ClosedAt)
	if since != nil {
		c.Window.Since = *since
	}
	c.By, l.Currency = BatchClosedBy(by), c.Currency
	return c, err
}

// BatchCloseByKey finds the close the 0500 with identity txnKey made, if it made one.
func BatchCloseByKey(ctx context.Context, q Querier, txnKey string) (BatchClose, bool, error) {
	c, err := scanBatchClose(q.QueryRow(ctx, `SELECT `+batchCloseColumns+` FROM terminal_batch_close WHERE txn_key = $1`, txnKey))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return BatchClose{}, false, nil
	case err != nil:
		return BatchClose{}, false, fmt.Errorf("reading the batch close of %s: %w", txnKey, err)
	}
	return c, true, nil
}

// maxBatchCloses bounds one BatchCloses.
const maxBatchCloses = 10_000

// BatchCloses lists up to limit (at most 10,000) of terminal's closed batches, newest first.
func BatchCloses(ctx context.Context, q Querier, terminal string, limit int) ([]BatchClose, error) {
	limit = min(max(limit, 1), maxBatchCloses)
	rows, err := q.Query(ctx, `SELECT `+batchCloseColumns+` FROM terminal_batch_close WHERE terminal = $1
	                           ORDER BY upto DESC LIMIT $2`, terminal, limit)
	if err != nil {
		return nil, fmt.Errorf("listing the batch closes of terminal %s: %w", terminal, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BatchClose, error) { return scanBatchClose(r) })
	if err != nil {
		return nil, fmt.Errorf("listing the batch closes of terminal %s: %w", terminal, err)
	}
	return out, nil
}
