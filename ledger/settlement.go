package ledger

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Settlement: postings carry the cycle that was open when their batch committed. Cut-over closes
// that cycle under the exclusive cycle lock (so no batch is half in it), books each merchant's
// payout (一清: straight to the merchant's own account, value date T+n) and each issuer's net
// position as entries, and opens the next cycle. Afterwards every merchant_payable and
// issuer_receivable account nets to zero within the closed cycle.

// SettlementChain is the hash chain cut-over entries are sealed into.
const SettlementChain = "settlement"

// CutoverSchedule says when cycles close by themselves.
type CutoverSchedule struct {
	At       string // "HH:MM", default "23:00"
	TimeZone string // IANA zone, default "Asia/Shanghai"
}

func (s CutoverSchedule) parse() (hour, minute int, loc *time.Location, err error) {
	at, tz := s.At, s.TimeZone
	if at == "" {
		at = "23:00"
	}
	if tz == "" {
		tz = "Asia/Shanghai"
	}
	t, err := time.Parse("15:04", at)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("cut-over time %q: want HH:MM", at)
	}
	loc, err = time.LoadLocation(tz)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("cut-over time zone %q: %w", tz, err)
	}
	return t.Hour(), t.Minute(), loc, nil
}

// Next is the first scheduled cut-over strictly after t, and its business date (the local date
// of that cut-over).
func (s CutoverSchedule) Next(t time.Time) (time.Time, time.Time, error) {
	h, m, loc, err := s.parse()
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	lt := t.In(loc)
	c := time.Date(lt.Year(), lt.Month(), lt.Day(), h, m, 0, 0, loc)
	if !c.After(t) {
		c = time.Date(lt.Year(), lt.Month(), lt.Day()+1, h, m, 0, 0, loc)
	}
	return c, businessDate(c), nil
}

// Previous is the last scheduled cut-over at or before t.
func (s CutoverSchedule) Previous(t time.Time) (time.Time, time.Time, error) {
	h, m, loc, err := s.parse()
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	lt := t.In(loc)
	c := time.Date(lt.Year(), lt.Month(), lt.Day(), h, m, 0, 0, loc)
	if c.After(t) {
		c = time.Date(lt.Year(), lt.Month(), lt.Day()-1, h, m, 0, 0, loc)
	}
	return c, businessDate(c), nil
}

func businessDate(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// MerchantPayout is one merchant's settlement for a cycle and currency. Net = Gross − Fee − Refunds +
// FeeReturned − Chargebacks, and is what the payout entry moves from merchant_payable to
// settlement_bank. A negative net is a debit to the merchant (it owes us).
type MerchantPayout struct {
	Merchant          string    `json:"merchant"`
	Currency          string    `json:"currency"`
	Gross             int64     `json:"gross"`
	Fee               int64     `json:"fee"`
	Refunds           int64     `json:"refunds"`
	FeeReturned       int64     `json:"fee_returned"`
	Chargebacks       int64     `json:"chargebacks"`
	Net               int64     `json:"net"`
	SettlementAccount string    `json:"settlement_account"`
	ValueDate         time.Time `json:"value_date"`
	EntryID           *EntryID  `json:"entry_id,omitempty"`
}

// IssuerPosition is what an issuer owes (Net > 0) or is owed for a cycle and currency.
type IssuerPosition struct {
	Issuer   string   `json:"issuer"`
	Currency string   `json:"currency"`
	Debits   int64    `json:"debits"`
	Credits  int64    `json:"credits"`
	Net      int64    `json:"net"`
	EntryID  *EntryID `json:"entry_id,omitempty"`
}

// CycleReport is a closed (or, for reports, open) settlement cycle.
type CycleReport struct {
	Cycle         int64            `json:"cycle"`
	Open          bool             `json:"open"`
	OpenedAt      time.Time        `json:"opened_at"`
	ClosedAt      *time.Time       `json:"closed_at,omitempty"`
	BusinessDate  *time.Time       `json:"business_date,omitempty"`
	Reason        string           `json:"reason,omitempty"`
	AlreadyClosed bool             `json:"already_closed,omitempty"` // cut-over found the work done (another node)
	Payouts       []MerchantPayout `json:"payouts"`
	Issuers       []IssuerPosition `json:"issuers"`
}

// Cutover closes the open cycle now. reason is "manual" or "scheduled"; a scheduled cut-over for a
// business date that already has one does nothing and says so (several nodes may try). pool is
// the application role's (or the owner's).
func Cutover(ctx context.Context, pool *pgxpool.Pool, reason string, business time.Time, log *zap.Logger) (CycleReport, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if reason != "manual" && reason != "scheduled" {
		return CycleReport{}, fmt.Errorf("cut-over reason %q: want manual or scheduled", reason)
	}
	business = businessDate(business)
	var rep CycleReport
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, cycleLockKey); err != nil {
			return fmt.Errorf("taking the cycle lock: %w", err)
		}
		if reason == "scheduled" {
			var done int64
			err := tx.QueryRow(ctx, `SELECT cycle_id FROM settlement_close WHERE business_date = $1 AND reason = 'scheduled'`, business).Scan(&done)
			if err == nil {
				rep = CycleReport{Cycle: done, AlreadyClosed: true}
				return nil
			}
			if err != pgx.ErrNoRows {
				return err
			}
		}
		var cycle int64
		var opened time.Time
		if err := tx.QueryRow(ctx, `SELECT id, opened_at FROM settlement_cycle c WHERE NOT EXISTS (SELECT 1 FROM settlement_close x WHERE x.cycle_id = c.id)
		                             ORDER BY id LIMIT 1`).Scan(&cycle, &opened); err != nil {
			return fmt.Errorf("finding the open cycle: %w", err)
		}
		payouts, issuers, err := cycleFigures(ctx, tx, cycle, business)
		if err != nil {
			return err
		}
		if err := bookSettlement(ctx, tx, cycle, payouts, issuers); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO settlement_close (cycle_id, business_date, reason) VALUES ($1, $2, $3)`, cycle, business, reason); err != nil {
			return fmt.Errorf("closing cycle %d: %w", cycle, err)
		}
		b := pgx.Batch{}
		for _, p := range payouts {
			b.Queue(`INSERT INTO settlement_payout (cycle_id, merchant, currency, gross, fee, refunds, fee_returned, chargebacks, net, settlement_account, value_date, entry_id)
			         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				cycle, p.Merchant, p.Currency, p.Gross, p.Fee, p.Refunds, p.FeeReturned, p.Chargebacks, p.Net, p.SettlementAccount, p.ValueDate, uuidArg(p.EntryID))
		}
		for _, i := range issuers {
			b.Queue(`INSERT INTO settlement_issuer_position (cycle_id, issuer, currency, debits, credits, net, entry_id) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				cycle, i.Issuer, i.Currency, i.Debits, i.Credits, i.Net, uuidArg(i.EntryID))
		}
		b.Queue(`INSERT INTO settlement_cycle (id) VALUES ($1)`, cycle+1)
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("recording settlement of cycle %d: %w", cycle, err)
		}
		now := time.Now()
		rep = CycleReport{Cycle: cycle, OpenedAt: opened, ClosedAt: &now, BusinessDate: &business, Reason: reason, Payouts: payouts, Issuers: issuers}
		return nil
	})
	if err != nil {
		return CycleReport{}, fmt.Errorf("cut-over: %w", err)
	}
	if !rep.AlreadyClosed {
		log.Info("settlement cycle closed", zap.Int64("cycle", rep.Cycle), zap.String("reason", reason),
			zap.Int("payouts", len(rep.Payouts)), zap.Int("issuers", len(rep.Issuers)))
	}
	return rep, nil
}

func uuidArg(id *EntryID) any {
	if id == nil {
		return nil
	}
	return [16]byte(*id)
}

// cycleFigures computes payouts and issuer positions of a cycle from its entries and postings,
// and checks each payout's net against the merchant_payable postings it must clear.
func cycleFigures(ctx context.Context, q pgx.Tx, cycle int64, business time.Time) ([]MerchantPayout, []IssuerPosition, error) {
	rows, err := q.Query(ctx, `
SELECT e.merchant, e.currency,
       COALESCE(sum(e.amount) FILTER (WHERE e.kind IN ('purchase', 'completion', 'bill_payment')), 0)
     - COALESCE(sum(e.amount) FILTER (WHERE e.kind IN ('reversal', 'void') AND o.kind IN ('purchase', 'completion', 'bill_payment')), 0),
       COALESCE(sum(e.fee) FILTER (WHERE e.kind IN ('purchase', 'completion', 'bill_payment')), 0)
     - COALESCE(sum(e.fee) FILTER (WHERE e.kind IN ('reversal', 'void') AND o.kind IN ('purchase', 'completion', 'bill_payment')), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind = 'refund'), 0)
     - COALESCE(sum(e.amount) FILTER (WHERE e.kind IN ('reversal', 'void') AND o.kind = 'refund'), 0),
       COALESCE(sum(e.fee) FILTER (WHERE e.kind = 'refund'), 0)
     - COALESCE(sum(e.fee) FILTER (WHERE e.kind IN ('reversal', 'void') AND o.kind = 'refund'), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind = 'chargeback'), 0)
     - COALESCE(sum(e.amount) FILTER (WHERE e.kind IN ('reversal', 'void') AND o.kind = 'chargeback'), 0),
       COALESCE(m.settlement_account, ''), COALESCE(m.payout_delay_days, 1)
  FROM journal_entry e
  LEFT JOIN journal_entry o ON o.txn_key = e.consumes
  LEFT JOIN merchant m ON m.id = e.merchant
 WHERE e.cycle_id = $1 AND e.status = 'booked' AND e.merchant <> ''
   AND e.kind NOT IN ('payout', 'issuer_settlement', 'preauth', 'hold_expiry')
 GROUP BY e.merchant, e.currency, m.settlement_account, m.payout_delay_days
 ORDER BY e.merchant, e.currency`, cycle)
	if err != nil {
		return nil, nil, fmt.Errorf("computing payouts of cycle %d: %w", cycle, err)
	}
	var payouts []MerchantPayout
	for rows.Next() {
		var p MerchantPayout
		var delay int
		if err := rows.Scan(&p.Merchant, &p.Currency, &p.Gross, &p.Fee, &p.Refunds, &p.FeeReturned, &p.Chargebacks, &p.SettlementAccount, &delay); err != nil {
			rows.Close()
			return nil, nil, err
		}
		p.Net = p.Gross - p.Fee - p.Refunds + p.FeeReturned - p.Chargebacks
		p.ValueDate = business.AddDate(0, 0, delay)
		payouts = append(payouts, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	// Cross-check: the net of each payout is exactly what its merchant_payable account holds for
	// the cycle. A difference means a rule and this report disagree; refuse to close.
	bal := map[[2]string]int64{}
	rows, err = q.Query(ctx, `SELECT account, currency, sum(amount)::bigint FROM posting WHERE cycle_id = $1
	                           AND (account LIKE 'merchant_payable:%' OR account LIKE 'issuer_receivable:%') GROUP BY account, currency`, cycle)
	if err != nil {
		return nil, nil, fmt.Errorf("reading balances of cycle %d: %w", cycle, err)
	}
	for rows.Next() {
		var a, c string
		var s int64
		if err := rows.Scan(&a, &c, &s); err != nil {
			rows.Close()
			return nil, nil, err
		}
		bal[[2]string{a, c}] = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	seen := map[[2]string]bool{}
	for _, p := range payouts {
		k := [2]string{MerchantPayable(p.Merchant), p.Currency}
		seen[k] = true
		if -bal[k] != p.Net {
			return nil, nil, fmt.Errorf("cycle %d: payout of %s in %s is %d but its account holds %d; not closing", cycle, p.Merchant, p.Currency, p.Net, -bal[k])
		}
	}
	var issuers []IssuerPosition
	for k, s := range bal {
		if len(k[0]) > len(prefixMerchant) && k[0][:len(prefixMerchant)] == prefixMerchant {
			if !seen[k] && s != 0 {
				return nil, nil, fmt.Errorf("cycle %d: %s holds %d in %s with no payout; not closing", cycle, k[0], s, k[1])
			}
			continue
		}
		issuers = append(issuers, IssuerPosition{Issuer: k[0][len(prefixIssuer):], Currency: k[1], Net: s})
	}
	if len(issuers) > 0 {
		rows, err = q.Query(ctx, `SELECT account, currency, COALESCE(sum(amount) FILTER (WHERE amount > 0), 0)::bigint,
		       COALESCE(-sum(amount) FILTER (WHERE amount < 0), 0)::bigint
		  FROM posting WHERE cycle_id = $1 AND account LIKE 'issuer_receivable:%' GROUP BY account, currency`, cycle)
		if err != nil {
			return nil, nil, err
		}
		dc := map[[2]string][2]int64{}
		for rows.Next() {
			var a, c string
			var d, cr int64
			if err := rows.Scan(&a, &c, &d, &cr); err != nil {
				rows.Close()
				return nil, nil, err
			}
			dc[[2]string{a, c}] = [2]int64{d, cr}
		}
		rows.Close()
		for i := range issuers {
			v := dc[[2]string{IssuerReceivable(issuers[i].Issuer), issuers[i].Currency}]
			issuers[i].Debits, issuers[i].Credits = v[0], v[1]
		}
	}
	sort.Slice(issuers, func(i, j int) bool {
		if issuers[i].Issuer != issuers[j].Issuer {
			return issuers[i].Issuer < issuers[j].Issuer
		}
		return issuers[i].Currency < issuers[j].Currency
	})
	return payouts, issuers, nil
}

// bookSettlement books the payout and issuer-settlement entries of a cycle, sealed into the
// settlement chain (cut-over holds the exclusive cycle lock, so it is the only writer of that chain).
func bookSettlement(ctx context.Context, tx pgx.Tx, cycle int64, payouts []MerchantPayout, issuers []IssuerPosition) error {
	var ids idSource
	now := time.Now().UTC().Truncate(time.Microsecond)
	var entries []*entryRecord
	newAccounts := map[accountKey]struct{}{}
	add := func(kind Kind, key, merchant, issuer, cur string, amount int64, ps []Posting) EntryID {
		e := &entryRecord{ID: ids.next(), Key: key, Kind: kind.String(), Status: string(StatusBooked), Merchant: merchant,
			Issuer: issuer, Currency: cur, Amount: amount, Cycle: cycle, At: now}
		e.ContentHash = (&Booking{Key: key, Kind: kind, Merchant: merchant, Issuer: issuer, Currency: cur, Amount: amount}).contentHash()
		for i, p := range ps {
			e.Postings = append(e.Postings, postingRecord{Seq: int16(i), Account: p.Account, Currency: p.Currency, Amount: p.Amount, Cycle: cycle})
			newAccounts[accountKey{p.Account, p.Currency}] = struct{}{}
		}
		entries = append(entries, e)
		return e.ID
	}
	abs := func(n int64) int64 {
		if n < 0 {
			return -n
		}
		return n
	}
	for i := range payouts {
		p := &payouts[i]
		if p.Net == 0 {
			continue
		}
		id := add(Payout, fmt.Sprintf("payout|%d|%s|%s", cycle, p.Merchant, p.Currency), p.Merchant, "", p.Currency, abs(p.Net), []Posting{
			{MerchantPayable(p.Merchant), p.Currency, p.Net},
			{AccountSettlementBank, p.Currency, -p.Net},
		})
		p.EntryID = &id
	}
	for i := range issuers {
		s := &issuers[i]
		if s.Net == 0 {
			continue
		}
		id := add(IssuerSettlement, fmt.Sprintf("issuer_settlement|%d|%s|%s", cycle, s.Issuer, s.Currency), "", s.Issuer, s.Currency, abs(s.Net), []Posting{
			{AccountSettlementBank, s.Currency, s.Net},
			{IssuerReceivable(s.Issuer), s.Currency, -s.Net},
		})
		s.EntryID = &id
	}
	if len(entries) == 0 {
		return nil
	}
	seq, prev, err := chainHead(ctx, tx, SettlementChain)
	if err != nil {
		return err
	}
	sb := &sealedBatch{chain: SettlementChain, seq: seq + 1, prevHash: prev, entries: entries}
	for k := range newAccounts {
		sb.newAccounts = append(sb.newAccounts, k)
	}
	sb.hash = batchHash(prev, SettlementChain, sb.seq, entries)
	return writeBatch(ctx, tx, sb)
}

// RunCutoverScheduler closes cycles on schedule until ctx ends. Every node may run it: the
// first to reach a cut-over closes the cycle, the others find it done. A cut-over missed while no
// node ran is made up at start.
func RunCutoverScheduler(ctx context.Context, pool *pgxpool.Pool, s CutoverSchedule, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	if _, _, _, err := s.parse(); err != nil {
		return err
	}
	// Catch up: if the open cycle opened before the last scheduled cut-over, close it now.
	prev, prevDate, _ := s.Previous(time.Now())
	var opened time.Time
	if err := pool.QueryRow(ctx, `SELECT opened_at FROM settlement_cycle c WHERE NOT EXISTS (SELECT 1 FROM settlement_close x WHERE x.cycle_id = c.id)
	                               ORDER BY id LIMIT 1`).Scan(&opened); err == nil && opened.Before(prev) {
		if _, err := Cutover(ctx, pool, "scheduled", prevDate, log); err != nil {
			log.Error("catch-up cut-over failed", zap.Error(err))
		}
	}
	for {
		next, date, _ := s.Next(time.Now())
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if _, err := Cutover(ctx, pool, "scheduled", date, log); err != nil {
			log.Error("scheduled cut-over failed; retrying in a minute", zap.Error(err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Minute):
			}
			if _, err := Cutover(ctx, pool, "scheduled", date, log); err != nil {
				log.Error("scheduled cut-over failed again", zap.Error(err))
			}
		}
	}
}
