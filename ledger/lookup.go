package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Entry is what the ledger holds of one transaction identity, as the switch reads it back: to
// answer a repeat it no longer remembers, to check a refund before the issuer sees it, and to find
// how the issuer was told of an original it must now reverse.
type Entry struct {
	Key              string
	Kind             Kind
	Status           Status
	Reason           string
	NotFound         bool // a reversal, void, refund or completion whose original was unknown
	AlreadyCancelled bool // … whose original had already been cancelled
	OriginalKey      string
	Merchant         string
	Terminal         string
	Issuer           string
	Currency         string
	Amount           int64 // booked amount (0 unless booked)
	Fee              int64
	STAN             string
	RRN              string
	AuthCode         string
	PANMasked        string
	IssuerSTAN       string // the issuer trace, "" when the switch sent the issuer nothing
	IssuerTime       string
	// Payee is the wallet a bill payment to a wallet biller is owed to (its wallet_payable
	// posting); "" otherwise.
	Payee string
	// ConsumedBy is the key of the entry that reversed, voided, completed or expired this one.
	ConsumedBy string
	// Refunded is what booked refunds and chargebacks not since reversed took from this sale.
	Refunded int64
	// Cycle is the settlement cycle the entry was booked in; CycleClosed tells whether cut-over has
	// closed it since (a void is then refused: the money moved, refund it instead).
	Cycle       int64
	CycleClosed bool
	// At is when the transaction happened (the switch's receipt of it; the refund window counts
	// from here); BookedAt when its batch was booked.
	At       time.Time
	BookedAt time.Time
}

// Refundable is what is left to refund of a sale: its amount less refunds and chargebacks; 0 for
// anything that is not a booked, uncancelled purchase, completion or bill payment.
func (e Entry) Refundable() int64 {
	if e.Status != StatusBooked || e.ConsumedBy != "" || (e.Kind != Purchase && e.Kind != Completion && e.Kind != BillPayment) {
		return 0
	}
	return e.Amount - e.Refunded
}

const entrySQL = `
SELECT e.txn_key, e.kind, e.status, e.reason, e.flags, e.original_key, e.merchant, e.terminal, e.issuer, e.currency,
       e.amount, e.fee, e.stan, e.rrn, e.auth_code, e.pan_masked, COALESCE(e.issuer_stan, ''), COALESCE(e.issuer_time, ''),
       COALESCE(c.txn_key, ''),
       COALESCE((SELECT sum(x.amount) FROM journal_entry x
                  WHERE x.original_key = e.txn_key AND x.kind IN ('refund', 'chargeback') AND x.status = 'booked'
                    AND NOT EXISTS (SELECT 1 FROM journal_entry v WHERE v.consumes = x.txn_key)), 0)::bigint,
       e.cycle_id, EXISTS (SELECT 1 FROM settlement_close s WHERE s.cycle_id = e.cycle_id), e.txn_at, e.booked_at,
       CASE WHEN e.kind = 'bill_payment' THEN COALESCE((SELECT substr(p.account, length('` + prefixWallet + `') + 1)
                 FROM posting p WHERE p.entry_id = e.id AND starts_with(p.account, '` + prefixWallet + `') LIMIT 1), '')
            ELSE '' END
  FROM journal_entry e LEFT JOIN journal_entry c ON c.consumes = e.txn_key
 WHERE e.txn_key = $1`

// EntryOf reads the entry booked under txnKey; ok is false when the ledger has none. It reads the
// base tables, so q must be the application or owner role.
func EntryOf(ctx context.Context, q Querier, txnKey string) (Entry, bool, error) {
	var e Entry
	var kind string
	var flags int16
	err := q.QueryRow(ctx, entrySQL, txnKey).Scan(&e.Key, &kind, &e.Status, &e.Reason, &flags, &e.OriginalKey, &e.Merchant,
		&e.Terminal, &e.Issuer, &e.Currency, &e.Amount, &e.Fee, &e.STAN, &e.RRN, &e.AuthCode, &e.PANMasked, &e.IssuerSTAN,
		&e.IssuerTime, &e.ConsumedBy, &e.Refunded, &e.Cycle, &e.CycleClosed, &e.At, &e.BookedAt, &e.Payee)
	if errors.Is(err, pgx.ErrNoRows) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("reading entry %s: %w", txnKey, err)
	}
	if e.Kind, err = ParseKind(kind); err != nil {
		return Entry{}, false, fmt.Errorf("reading entry %s: %w", txnKey, err)
	}
	e.NotFound, e.AlreadyCancelled = flags&flagNotFound != 0, flags&flagCancelled != 0
	return e, true, nil
}

// IssuerTrace is how the switch told an issuer of a transaction: the link's STAN (field 11) and
// transmission date and time (field 7), with what a reversal at that issuer needs to say.
type IssuerTrace struct {
	Key       string
	Kind      Kind
	Status    Status
	Issuer    string
	STAN      string // field 11 on the issuer link; "" if the switch sent the issuer nothing
	Time      string // field 7 on the issuer link, MMDDhhmmss
	Merchant  string
	Terminal  string
	Currency  string
	Amount    int64
	RRN       string
	AuthCode  string
	PANMasked string
	// Cancelled: a reversal, void, completion or expiry has since closed it in the ledger.
	Cancelled bool
}

// IssuerTraceOf reads the issuer trace of the entry booked under txnKey; ok is false when the
// ledger has no entry with that key. An entry booked without a trace has ok true and STAN "".
func IssuerTraceOf(ctx context.Context, q Querier, txnKey string) (IssuerTrace, bool, error) {
	e, ok, err := EntryOf(ctx, q, txnKey)
	if err != nil || !ok {
		return IssuerTrace{}, ok, err
	}
	return IssuerTrace{Key: e.Key, Kind: e.Kind, Status: e.Status, Issuer: e.Issuer, STAN: e.IssuerSTAN, Time: e.IssuerTime,
		Merchant: e.Merchant, Terminal: e.Terminal, Currency: e.Currency, Amount: e.Amount, RRN: e.RRN, AuthCode: e.AuthCode,
		PANMasked: e.PANMasked, Cancelled: e.ConsumedBy != ""}, true, nil
}
