package ledger

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Read-only reports for auditors. Every query here reads only the documented v_* views, so the
// auditor role (SELECT on the views, nothing else) can run all of them.

// AccountBalance is one account's balance: debits − credits, minor units.
type AccountBalance struct {
	Account  string `json:"account"`
	Currency string `json:"currency"`
	Debits   int64  `json:"debits"`
	Credits  int64  `json:"credits"`
	Balance  int64  `json:"balance"`
}

// CurrencyTotal is the trial balance of one currency; Difference must be zero.
type CurrencyTotal struct {
	Currency   string `json:"currency"`
	Debits     int64  `json:"debits"`
	Credits    int64  `json:"credits"`
	Difference int64  `json:"difference"`
}

// TrialBalance is every account's balance as of At.
type TrialBalance struct {
	At       time.Time        `json:"at"`
	Accounts []AccountBalance `json:"accounts"`
	Totals   []CurrencyTotal  `json:"totals"`
}

// TrialBalanceAt sums the movements (rollups of hot accounts, postings of merchant accounts) of
// batches committed at or before at (zero: now).
func TrialBalanceAt(ctx context.Context, q Querier, at time.Time) (TrialBalance, error) {
	if at.IsZero() {
		at = time.Now()
	}
	tb := TrialBalance{At: at}
	rows, err := q.Query(ctx, `SELECT account, currency, sum(debit)::bigint, sum(credit)::bigint FROM v_account_movements
	                            WHERE committed_at <= $1 GROUP BY account, currency ORDER BY currency, account`, at)
	if err != nil {
		return tb, fmt.Errorf("trial balance: %w", err)
	}
	defer rows.Close()
	totals := map[string]*CurrencyTotal{}
	var order []string
	for rows.Next() {
		var a AccountBalance
		if err := rows.Scan(&a.Account, &a.Currency, &a.Debits, &a.Credits); err != nil {
			return tb, err
		}
		a.Balance = a.Debits - a.Credits
		tb.Accounts = append(tb.Accounts, a)
		t := totals[a.Currency]
		if t == nil {
			t = &CurrencyTotal{Currency: a.Currency}
			totals[a.Currency] = t
			order = append(order, a.Currency)
		}
		t.Debits += a.Debits
		t.Credits += a.Credits
		t.Difference += a.Balance
	}
	for _, c := range order {
		tb.Totals = append(tb.Totals, *totals[c])
	}
	return tb, rows.Err()
}

// StatementLine is one posting of an account with the running balance after it.
type StatementLine struct {
	EntryID  string    `json:"entry_id"`
	TxnKey   string    `json:"txn_key"`
	Kind     string    `json:"kind"`
	Cycle    int64     `json:"cycle"`
	BookedAt time.Time `json:"booked_at"`
	Amount   int64     `json:"amount"`
	Balance  int64     `json:"balance"`
}

// maxStatementLines bounds one statement.
const maxStatementLines = 100_000

// Statement lists an account's postings in booking order (the last limit of them, default 1000),
// with running balances from the account's opening.
func Statement(ctx context.Context, q Querier, account, cur string, limit int) ([]StatementLine, error) {
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, maxStatementLines)
	rows, err := q.Query(ctx, `
SELECT * FROM (
  SELECT entry_id::text, txn_key, kind, cycle_id, booked_at, amount,
         (sum(amount) OVER (ORDER BY booked_at, entry_id, seq))::bigint AS balance
    FROM v_postings WHERE account = $1 AND ($2 = '' OR currency = $2)) s
 ORDER BY booked_at DESC, entry_id DESC LIMIT $3`, account, cur, limit)
	if err != nil {
		return nil, fmt.Errorf("statement of %s: %w", account, err)
	}
	defer rows.Close()
	var out []StatementLine
	for rows.Next() {
		var l StatementLine
		if err := rows.Scan(&l.EntryID, &l.TxnKey, &l.Kind, &l.Cycle, &l.BookedAt, &l.Amount, &l.Balance); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, rows.Err()
}

// EntryView is a journal entry as auditors see it.
type EntryView struct {
	ID          string    `json:"id"`
	Key         string    `json:"txn_key"`
	Kind        string    `json:"kind"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	OriginalKey string    `json:"original_key,omitempty"`
	ClosedBy    string    `json:"closed_by,omitempty"` // the reversal, void, completion or expiry that consumed it
	Merchant    string    `json:"merchant,omitempty"`
	Terminal    string    `json:"terminal,omitempty"`
	Issuer      string    `json:"issuer,omitempty"`
	Currency    string    `json:"currency"`
	Amount      int64     `json:"amount"`
	Fee         int64     `json:"fee"`
	Cycle       int64     `json:"cycle"`
	STAN        string    `json:"stan,omitempty"`
	RRN         string    `json:"rrn,omitempty"`
	AuthCode    string    `json:"auth_code,omitempty"`
	EntryMode   string    `json:"entry_mode,omitempty"`
	PANMasked   string    `json:"pan_masked,omitempty"`
	TxnAt       time.Time `json:"txn_at"`
	BookedAt    time.Time `json:"booked_at"`
	Chain       string    `json:"chain"`
	Batch       int64     `json:"batch"`
	Postings    []Posting `json:"postings"`
}

// TxnQuery selects transactions by RRN, or by terminal and STAN.
type TxnQuery struct {
	RRN      string
	Terminal string
	STAN     string
}

// maxTxnEntries bounds a life-cycle lookup.
const maxTxnEntries = 1000

const entryViewColumns = `e.id::text, e.txn_key, e.kind, e.status, e.reason, e.original_key,
	COALESCE((SELECT c.txn_key FROM v_journal_entries c WHERE c.consumes = e.txn_key), ''), e.merchant, e.terminal, e.issuer,
	e.currency, e.amount, e.fee, e.cycle_id, e.stan, e.rrn, e.auth_code, e.entry_mode, e.pan_masked, e.txn_at, e.booked_at,
	e.chain, e.batch_seq`

// Transactions returns the life cycle of the matching transactions: each matching entry, the
// entries that act on it (reversal, refunds, completion, …) and the one it acts on, with postings,
// in booking order.
func Transactions(ctx context.Context, q Querier, tq TxnQuery) ([]EntryView, error) {
	var where string
	var args []any
	switch {
	case tq.RRN != "":
		where, args = `rrn = $1`, []any{tq.RRN}
	case tq.Terminal != "" && tq.STAN != "":
		where, args = `terminal = $1 AND stan = $2`, []any{tq.Terminal, tq.STAN}
	default:
		return nil, fmt.Errorf("transaction lookup: give an RRN, or a terminal and a STAN")
	}
	rows, err := q.Query(ctx, `
WITH m AS (SELECT txn_key, original_key FROM v_journal_entries WHERE `+where+`),
     k AS (SELECT txn_key FROM m UNION SELECT original_key FROM m WHERE original_key <> ''
           UNION SELECT x.txn_key FROM v_journal_entries x JOIN m ON x.original_key = m.txn_key)
SELECT `+entryViewColumns+` FROM v_journal_entries e JOIN k ON k.txn_key = e.txn_key ORDER BY e.booked_at, e.id LIMIT $`+strconv.Itoa(len(args)+1),
		append(args, maxTxnEntries)...)
	if err != nil {
		return nil, fmt.Errorf("transaction lookup: %w", err)
	}
	out, err := scanEntries(rows)
	if err != nil {
		return nil, err
	}
	return out, attachPostings(ctx, q, out)
}

func scanEntries(rows pgx.Rows) ([]EntryView, error) {
	defer rows.Close()
	var out []EntryView
	for rows.Next() {
		var e EntryView
		if err := rows.Scan(&e.ID, &e.Key, &e.Kind, &e.Status, &e.Reason, &e.OriginalKey, &e.ClosedBy, &e.Merchant, &e.Terminal,
			&e.Issuer, &e.Currency, &e.Amount, &e.Fee, &e.Cycle, &e.STAN, &e.RRN, &e.AuthCode, &e.EntryMode, &e.PANMasked,
			&e.TxnAt, &e.BookedAt, &e.Chain, &e.Batch); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func attachPostings(ctx context.Context, q Querier, es []EntryView) error {
	if len(es) == 0 {
		return nil
	}
	ids := make([]string, len(es))
	at := map[string]int{}
	for i, e := range es {
		ids[i] = e.ID
		at[e.ID] = i
	}
	rows, err := q.Query(ctx, `SELECT entry_id::text, account, currency, amount FROM v_postings WHERE entry_id = ANY($1::uuid[]) ORDER BY entry_id, seq`, ids)
	if err != nil {
		return fmt.Errorf("reading postings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var p Posting
		if err := rows.Scan(&id, &p.Account, &p.Currency, &p.Amount); err != nil {
			return err
		}
		es[at[id]].Postings = append(es[at[id]].Postings, p)
	}
	return rows.Err()
}

// ErrNoSuchCycle: the settlement cycle asked for does not exist (or, for cycle 0, none is closed yet).
var ErrNoSuchCycle = errors.New("no such settlement cycle")

// SettlementReport reads a cycle's payouts and issuer positions (cycle 0: the newest closed one).
// For the open cycle it reports nothing yet paid.
func SettlementReport(ctx context.Context, q Querier, cycle int64) (CycleReport, error) {
	var rep CycleReport
	var bd *time.Time
	var reason *string
	sql := `SELECT id, opened_at, closed_at, business_date, reason, open FROM v_settlement_cycles WHERE id = $1`
	args := []any{cycle}
	if cycle == 0 {
		sql, args = `SELECT id, opened_at, closed_at, business_date, reason, open FROM v_settlement_cycles WHERE NOT open ORDER BY id DESC LIMIT 1`, nil
	}
	if err := q.QueryRow(ctx, sql, args...).Scan(&rep.Cycle, &rep.OpenedAt, &rep.ClosedAt, &bd, &reason, &rep.Open); err != nil {
		if err == pgx.ErrNoRows {
			return rep, fmt.Errorf("settlement cycle %d: %w", cycle, ErrNoSuchCycle)
		}
		return rep, fmt.Errorf("settlement cycle %d: %w", cycle, err)
	}
	rep.BusinessDate = bd
	if reason != nil {
		rep.Reason = *reason
	}
	rows, err := q.Query(ctx, `SELECT merchant, currency, gross, fee, refunds, fee_returned, chargebacks, net, settlement_account, value_date, entry_id
	                            FROM v_settlement_payouts WHERE cycle_id = $1 ORDER BY merchant, currency`, rep.Cycle)
	if err != nil {
		return rep, fmt.Errorf("payouts of cycle %d: %w", rep.Cycle, err)
	}
	for rows.Next() {
		var p MerchantPayout
		var id *[16]byte
		if err := rows.Scan(&p.Merchant, &p.Currency, &p.Gross, &p.Fee, &p.Refunds, &p.FeeReturned, &p.Chargebacks, &p.Net,
			&p.SettlementAccount, &p.ValueDate, &id); err != nil {
			rows.Close()
			return rep, err
		}
		if id != nil {
			e := EntryID(*id)
			p.EntryID = &e
		}
		rep.Payouts = append(rep.Payouts, p)
	}
	rows.Close()
	rows, err = q.Query(ctx, `SELECT issuer, currency, debits, credits, net, entry_id FROM v_issuer_positions WHERE cycle_id = $1 ORDER BY issuer, currency`, rep.Cycle)
	if err != nil {
		return rep, fmt.Errorf("issuer positions of cycle %d: %w", rep.Cycle, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p IssuerPosition
		var id *[16]byte
		if err := rows.Scan(&p.Issuer, &p.Currency, &p.Debits, &p.Credits, &p.Net, &id); err != nil {
			return rep, err
		}
		if id != nil {
			e := EntryID(*id)
			p.EntryID = &e
		}
		rep.Issuers = append(rep.Issuers, p)
	}
	return rep, rows.Err()
}

// FeeLine is one merchant's fees in one cycle and currency.
type FeeLine struct {
	Cycle    int64  `json:"cycle"`
	Merchant string `json:"merchant"`
	Currency string `json:"currency"`
	Charged  int64  `json:"charged"`
	Returned int64  `json:"returned"`
	Net      int64  `json:"net"`
}

// FeeReport lists fees per cycle, merchant and currency (cycle 0: all cycles).
func FeeReport(ctx context.Context, q Querier, cycle int64) ([]FeeLine, error) {
	rows, err := q.Query(ctx, `SELECT cycle_id, merchant, currency, charged, returned, net FROM v_fees
	                            WHERE $1 = 0 OR cycle_id = $1 ORDER BY cycle_id, merchant, currency`, cycle)
	if err != nil {
		return nil, fmt.Errorf("fee report: %w", err)
	}
	defer rows.Close()
	var out []FeeLine
	for rows.Next() {
		var f FeeLine
		if err := rows.Scan(&f.Cycle, &f.Merchant, &f.Currency, &f.Charged, &f.Returned, &f.Net); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Export streams the journal (table "entries") or its postings ("postings") as CSV with a
// header row, or as JSON lines, optionally only one cycle.
func Export(ctx context.Context, q Querier, w io.Writer, table, format string, cycle int64) error {
	var sql string
	switch table {
	case "entries", "":
		sql = `SELECT id::text, txn_key, kind, status, reason, original_key, COALESCE(consumes, '') AS consumes, merchant, terminal, issuer,
		              currency, amount, fee, cycle_id, stan, rrn, auth_code, entry_mode, pan_masked, encode(pan_hash, 'hex') AS pan_hash,
		              txn_at, booked_at, chain, batch_seq
		         FROM v_journal_entries WHERE $1 = 0 OR cycle_id = $1 ORDER BY chain, batch_seq, id`
	case "postings":
		sql = `SELECT entry_id::text, seq, account, currency, amount, debit, credit, cycle_id, txn_key, kind, booked_at
		         FROM v_postings WHERE $1 = 0 OR cycle_id = $1 ORDER BY booked_at, entry_id, seq`
	default:
		return fmt.Errorf("export: table %q: want entries or postings", table)
	}
	if format != "csv" && format != "json" {
		return fmt.Errorf("export: format %q: want csv or json", format)
	}
	rows, err := q.Query(ctx, sql, cycle)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	cw := csv.NewWriter(w)
	enc := json.NewEncoder(w)
	if format == "csv" {
		if err := cw.Write(names); err != nil {
			return err
		}
	}
	rec := make([]string, len(names))
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		if format == "csv" {
			for i, v := range vals {
				rec[i] = exportString(v)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
			continue
		}
		obj := make(map[string]any, len(names))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = hex.EncodeToString(b)
			}
			obj[names[i]] = v
		}
		if err := enc.Encode(obj); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return rows.Err()
}

func exportString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return hex.EncodeToString(x)
	default:
		return fmt.Sprint(x)
	}
}
