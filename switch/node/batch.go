package node

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/switch/txn"
)

// Bounds of batch settlement state. A terminal uploads one batch at a time; sessions and reports
// beyond these bounds push out the oldest.
const (
	maxUploadSessions     = 10_000
	maxUploadTransactions = 100_000 // per session; the ledger reads at most as many per terminal
	uploadSessionTTL      = time.Hour
	maxBatchReports       = 10_000
	maxDifferencesLogged  = 100 // per report; the report itself keeps them all
	// maxCloseAttempts bounds how often one 0500 compares again after another settlement of the
	// same terminal closed the batch it had compared (two 0500s racing, on this node or another).
	maxCloseAttempts = 3
)

// BatchItem is one transaction on which a terminal's uploaded batch and the ledger differ. Never
// card data: the identity, the amounts, the trace numbers.
type BatchItem struct {
	Key            string `json:"key"`
	Kind           string `json:"kind,omitempty"`            // the ledger's kind, when the ledger has it
	ProcessingCode string `json:"processing_code,omitempty"` // the terminal's, when it uploaded it
	STAN           string `json:"stan,omitempty"`
	RRN            string `json:"rrn,omitempty"`
	TerminalAmount int64  `json:"terminal_amount"`
	LedgerAmount   int64  `json:"ledger_amount"`
}

// BatchReport is the outcome of one terminal's batch settlement: the totals comparison of its
// first 0500 and, after a mismatch and a batch upload (0320s closed by a 0500 with processing code
// 960000), what the terminal holds that the ledger does not and the other way round.
type BatchReport struct {
	Terminal string `json:"terminal"`
	// Window is the terminal's batch compared: its entries booked since its last close (see
	// ledger.BatchWindow); after an upload, the batch the trailer closed.
	Window ledger.BatchWindow `json:"window"`
	At     time.Time          `json:"at"`
	Totals ledger.Mismatch    `json:"totals"`
	// Closed: the batch is closed in the ledger (terminal_batch_close), by a balanced 0500 or by the
	// trailer; the terminal's next batch starts after Window.Upto.
	Closed bool `json:"closed"`
	// Uploaded counts the transactions the terminal uploaded (0 when the totals agreed).
	Uploaded int `json:"uploaded"`
	// Dropped counts uploads beyond maxUploadTransactions, not compared.
	Dropped int `json:"dropped,omitempty"`
	// Complete: the trailer came and the lists below are final.
	Complete      bool        `json:"complete"`
	TerminalOnly  []BatchItem `json:"terminal_only,omitempty"`  // uploaded, not in the ledger
	LedgerOnly    []BatchItem `json:"ledger_only,omitempty"`    // in the ledger, not uploaded
	AmountDiffers []BatchItem `json:"amount_differs,omitempty"` // both have it, amounts differ
	// TrailerTotals compares the trailer's totals (the terminal's batch after the upload).
	TrailerTotals *ledger.Mismatch `json:"trailer_totals,omitempty"`
}

// Balanced tells whether the terminal and the ledger agree.
func (r BatchReport) Balanced() bool {
	return r.Totals.OK() && len(r.TerminalOnly) == 0 && len(r.LedgerOnly) == 0 && len(r.AmountDiffers) == 0
}

type uploadedTxn struct {
	proc, stan, rrn string
	amount          int64
}

type uploadSession struct {
	started time.Time
	report  BatchReport
	txns    map[string]uploadedTxn // by the identity field 90 names
}

// batchDesk answers terminals' batch settlement (0500) and batch upload (0320). The totals are
// compared with the terminal's entries booked since its last close (ledger.CompareBatchWindow); a
// balanced 0500 closes the batch in the ledger (ledger.CloseBatch) before it is answered 00. A
// mismatch is answered 95 and opens an upload session, which the trailer ends with a report of the
// differences, logged and counted, and closes the batch all the same (the differences are the
// acquirer's to resolve; the terminal starts a new batch).
type batchDesk struct {
	q          ledger.Querier
	terminals  map[string]string // terminal → merchant
	acquirerID string
	log        *zap.Logger

	settlements *prometheus.CounterVec
	uploads     prometheus.Counter
	differences *prometheus.CounterVec

	mu       sync.Mutex
	sessions map[string]*uploadSession
	reports  map[string]BatchReport
}

func newBatchDesk(q ledger.Querier, terminals map[string]string, acquirerID string, log *zap.Logger, reg prometheus.Registerer) *batchDesk {
	d := &batchDesk{
		q: q, terminals: terminals, acquirerID: acquirerID, log: log,
		sessions: map[string]*uploadSession{}, reports: map[string]BatchReport{},
		settlements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "poswitch_batch_settlements_total",
			Help: "Terminal batch settlements (0500) by result: balanced, mismatch (answered 95), trailer, repeat (of a 0500 that closed its batch), error.",
		}, []string{"result"}),
		uploads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "poswitch_batch_upload_transactions_total", Help: "Transactions terminals uploaded (0320) after a totals mismatch.",
		}),
		differences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "poswitch_batch_upload_differences_total",
			Help: "Transactions on which an uploaded batch and the ledger differ: terminal_only, ledger_only, amount.",
		}, []string{"side"}),
	}
	if reg != nil {
		reg.MustRegister(d.settlements, d.uploads, d.differences)
	}
	return d
}

// handle answers a 0500 or 0320 by setting t.Response.
func (d *batchDesk) handle(ctx context.Context, t *txn.Transaction) {
	if d == nil || d.q == nil {
		t.End(txn.RCSystemError, "batch settlement needs the ledger")
		return
	}
	if mid, ok := d.terminals[t.TerminalID]; !ok || mid != t.MerchantID {
		t.End(txn.RCInvalidMerchant, "unknown terminal, or not the merchant's in field 42")
		return
	}
	t.AcquirerID = d.acquirerID
	switch {
	case t.Type == txn.TypeBatchUpload:
		d.upload(t)
	case t.ProcessingCode == txn.ProcSettlementTrailer:
		d.trailer(ctx, t)
	default:
		d.settle(ctx, t)
	}
}

func totalsOf(t *txn.Transaction) ledger.Totals {
	b := t.Totals
	if b == nil {
		b = &txn.BatchTotals{}
	}
	tot := ledger.Totals{Currency: t.Currency, CreditsCount: b.CreditsCount, CreditsReversalCount: b.CreditsReversalCount,
		DebitsCount: b.DebitsCount, DebitsReversalCount: b.DebitsReversalCount, TransferCount: b.TransferCount,
		TransferReversalCount: b.TransferReversalCount, InquiriesCount: b.InquiriesCount, AuthorizationsCount: b.AuthorizationsCount,
		CreditsProcessingFee: b.CreditsProcessingFee, CreditsTransactionFee: b.CreditsTransactionFee,
		DebitsProcessingFee: b.DebitsProcessingFee, DebitsTransactionFee: b.DebitsTransactionFee, CreditsAmount: b.CreditsAmount,
		CreditsReversalAmount: b.CreditsReversalAmount, DebitsAmount: b.DebitsAmount, DebitsReversalAmount: b.DebitsReversalAmount,
		NetAmount: b.NetAmount, Optional: map[int]bool{}}
	for id := 78; id <= 85; id++ {
		if b.Sent[id] {
			tot.Optional[id] = true
		}
	}
	return tot
}

// settle compares a 0500's totals with the terminal's open batch: when they agree the batch is
// closed in the ledger and the answer is 00; when they do not, 95 and an upload session. A repeat
// of a 0500 that closed its batch is 00 again, and closes nothing.
func (d *batchDesk) settle(ctx context.Context, t *txn.Transaction) {
	totals, key := totalsOf(t), t.Key()
	for attempt := 1; ; attempt++ {
		if closed, err := d.closedBy(ctx, key); err != nil {
			d.fail(t, "batch settlement: looking for an earlier close", err)
			return
		} else if closed {
			d.settlements.WithLabelValues("repeat").Inc()
			t.End(txn.RCApproved, "this 0500 closed its batch already")
			return
		}
		w, err := ledger.OpenBatchWindow(ctx, d.q, t.TerminalID)
		if err != nil {
			d.fail(t, "batch settlement: opening the batch", err)
			return
		}
		m, err := ledger.CompareBatchWindow(ctx, d.q, w, totals)
		if err != nil {
			d.fail(t, "batch settlement: comparing totals", err)
			return
		}
		now := time.Now()
		rep := BatchReport{Terminal: t.TerminalID, Window: w, At: now, Totals: m}
		if !m.OK() {
			d.mismatch(t, rep)
			return
		}
		closed, err := ledger.CloseBatch(ctx, d.q, ledger.BatchClose{Window: w, By: ledger.BatchBalanced, TxnKey: key,
			Merchant: t.MerchantID, Currency: t.Currency, Ledger: m.Ledger, TerminalNet: totals.NetAmount})
		if err != nil {
			d.fail(t, "batch settlement: closing the batch", err)
			return
		}
		if !closed {
			// Another settlement of this terminal closed the batch since it was opened: compare
			// again with what is left.
			if attempt < maxCloseAttempts {
				continue
			}
			d.fail(t, "batch settlement: closing the batch", fmt.Errorf("closed by another settlement %d times in a row", attempt))
			return
		}
		rep.Closed = true
		d.settlements.WithLabelValues("balanced").Inc()
		d.mu.Lock()
		delete(d.sessions, t.TerminalID)
		d.keepReport(rep)
		d.mu.Unlock()
		t.End(txn.RCApproved, "batch totals agree with the ledger; batch closed")
		return
	}
}

// closedBy tells whether the 0500 with identity key closed a batch already (its answer was lost and
// the terminal sent it again).
func (d *batchDesk) closedBy(ctx context.Context, key string) (bool, error) {
	_, ok, err := ledger.BatchCloseByKey(ctx, d.q, key)
	return ok, err
}

// fail answers 96: the ledger could not be read or written.
func (d *batchDesk) fail(t *txn.Transaction, doing string, err error) {
	d.settlements.WithLabelValues("error").Inc()
	d.log.Error(doing, zap.String("tid", t.TerminalID), zap.Error(err))
	t.End(txn.RCSystemError, "ledger unavailable")
}

// mismatch answers 95 and opens an upload session.
func (d *batchDesk) mismatch(t *txn.Transaction, rep BatchReport) {
	m := rep.Totals
	d.settlements.WithLabelValues("mismatch").Inc()
	fields := make([]zap.Field, 0, len(m.Diffs)+3)
	fields = append(fields, zap.String("tid", t.TerminalID), zap.Time("since", rep.Window.Since), zap.Time("upto", rep.Window.Upto))
	for _, df := range m.Diffs {
		fields = append(fields, zap.Int64s("field_"+strconv.Itoa(df.Field)+"_terminal_ledger", []int64{df.Terminal, df.Ledger}))
	}
	d.log.Warn("batch totals differ from the ledger; answering 95 for a batch upload", fields...)
	d.mu.Lock()
	d.openSession(t.TerminalID, rep, rep.At)
	d.keepReport(rep)
	d.mu.Unlock()
	t.End(txn.RCReconcileError, "batch totals differ from the ledger")
}

// openSession starts (or restarts) the terminal's upload; d.mu is held.
func (d *batchDesk) openSession(terminal string, rep BatchReport, now time.Time) *uploadSession {
	if _, ok := d.sessions[terminal]; !ok && len(d.sessions) >= maxUploadSessions {
		oldest := ""
		var at time.Time
		for k, s := range d.sessions {
			if oldest == "" || s.started.Before(at) {
				oldest, at = k, s.started
			}
		}
		d.log.Warn("too many batch uploads open; dropping the oldest", zap.String("tid", oldest))
		delete(d.sessions, oldest)
	}
	s := &uploadSession{started: now, report: rep, txns: map[string]uploadedTxn{}}
	d.sessions[terminal] = s
	return s
}

// keepReport remembers the terminal's latest report; d.mu is held.
func (d *batchDesk) keepReport(rep BatchReport) {
	if _, ok := d.reports[rep.Terminal]; !ok && len(d.reports) >= maxBatchReports {
		oldest := ""
		var at time.Time
		for k, r := range d.reports {
			if oldest == "" || r.At.Before(at) {
				oldest, at = k, r.At
			}
		}
		delete(d.reports, oldest)
	}
	d.reports[rep.Terminal] = rep
}

// upload records one 0320: field 90 names the uploaded transaction itself (its MTI, STAN and field
// 7), so its identity is the ledger's key. An upload without a preceding mismatch opens a session
// (compared with the terminal's open batch at the trailer). The answer is 0330 00.
func (d *batchDesk) upload(t *txn.Transaction) {
	key := t.OriginalKey()
	now := time.Now()
	d.mu.Lock()
	s := d.sessions[t.TerminalID]
	if s == nil || now.Sub(s.started) > uploadSessionTTL {
		s = d.openSession(t.TerminalID, BatchReport{Terminal: t.TerminalID, At: now, Totals: ledger.Mismatch{Terminal: t.TerminalID}}, now)
	}
	_, seen := s.txns[key]
	switch {
	case seen || len(s.txns) < maxUploadTransactions:
		o, _ := t.Original()
		s.txns[key] = uploadedTxn{proc: t.ProcessingCode, stan: o.STAN, rrn: t.RRN, amount: t.Amount}
	default:
		s.report.Dropped++
	}
	d.mu.Unlock()
	d.uploads.Inc()
	t.End(txn.RCApproved, "batch upload recorded")
}

// trailer ends an upload: the uploaded transactions are compared with the ledger's entries of the
// terminal's open batch, the differences logged, counted and kept as the terminal's report, and the
// batch is closed in the ledger; the answer is 00 (the terminal closes its batch; the differences
// are the acquirer's to resolve). A trailer without an upload is settled like a 0500. If the ledger
// cannot be read or written the answer is 96 and the session stays for the terminal's retry.
func (d *batchDesk) trailer(ctx context.Context, t *txn.Transaction) {
	d.mu.Lock()
	s := d.sessions[t.TerminalID]
	d.mu.Unlock()
	if s == nil {
		d.settle(ctx, t)
		return
	}
	totals, key := totalsOf(t), t.Key()
	if closed, err := d.closedBy(ctx, key); err != nil {
		d.fail(t, "batch upload: looking for an earlier close", err)
		return
	} else if closed {
		d.endSession(t.TerminalID, s)
		d.settlements.WithLabelValues("repeat").Inc()
		t.End(txn.RCApproved, "this trailer closed its batch already")
		return
	}
	w, err := ledger.OpenBatchWindow(ctx, d.q, t.TerminalID)
	if err != nil {
		d.fail(t, "batch upload: opening the batch", err)
		return
	}
	entries, err := ledger.BatchWindowEntries(ctx, d.q, w)
	if err != nil {
		d.fail(t, "batch upload: reading the ledger's batch", err)
		return
	}
	m, err := ledger.CompareBatchWindow(ctx, d.q, w, totals)
	if err != nil {
		d.fail(t, "batch upload: comparing the trailer's totals", err)
		return
	}

	d.mu.Lock()
	if d.sessions[t.TerminalID] != s {
		// Another trailer or 0500 of this terminal got here first.
		d.mu.Unlock()
		t.End(txn.RCApproved, "batch upload already closed")
		return
	}
	rep := s.report
	rep.Window = w
	rep.Uploaded = len(s.txns)
	rep.Complete = true
	rep.At = time.Now()
	rep.TrailerTotals = &m
	inLedger := make(map[string]bool, len(entries))
	for _, e := range entries {
		inLedger[e.Key] = true
		u, ok := s.txns[e.Key]
		switch {
		case !ok:
			rep.LedgerOnly = append(rep.LedgerOnly, BatchItem{Key: e.Key, Kind: e.Kind.String(), STAN: e.STAN, RRN: e.RRN, LedgerAmount: e.Amount})
		case u.amount != e.Amount:
			rep.AmountDiffers = append(rep.AmountDiffers, BatchItem{Key: e.Key, Kind: e.Kind.String(), ProcessingCode: u.proc,
				STAN: e.STAN, RRN: e.RRN, TerminalAmount: u.amount, LedgerAmount: e.Amount})
		}
	}
	for k, u := range s.txns {
		if !inLedger[k] {
			rep.TerminalOnly = append(rep.TerminalOnly, BatchItem{Key: k, ProcessingCode: u.proc, STAN: u.stan, RRN: u.rrn, TerminalAmount: u.amount})
		}
	}
	d.mu.Unlock()
	sort.Slice(rep.TerminalOnly, func(i, j int) bool { return rep.TerminalOnly[i].Key < rep.TerminalOnly[j].Key })

	closed, err := ledger.CloseBatch(ctx, d.q, ledger.BatchClose{Window: w, By: ledger.BatchUploaded, TxnKey: key,
		Merchant: t.MerchantID, Currency: t.Currency, Ledger: m.Ledger, TerminalNet: totals.NetAmount,
		Differences: len(m.Diffs), Uploaded: rep.Uploaded, TerminalOnly: len(rep.TerminalOnly),
		LedgerOnly: len(rep.LedgerOnly), AmountDiffers: len(rep.AmountDiffers)})
	if err != nil {
		d.fail(t, "batch upload: closing the batch", err)
		return
	}
	if !closed {
		// Another settlement of this terminal closed the batch while this trailer compared it; the
		// upload is over either way.
		d.log.Warn("batch upload: the batch was closed by another settlement meanwhile", zap.String("tid", t.TerminalID))
	}
	rep.Closed = closed
	d.differences.WithLabelValues("terminal_only").Add(float64(len(rep.TerminalOnly)))
	d.differences.WithLabelValues("ledger_only").Add(float64(len(rep.LedgerOnly)))
	d.differences.WithLabelValues("amount").Add(float64(len(rep.AmountDiffers)))
	d.settlements.WithLabelValues("trailer").Inc()
	d.logReport(rep)
	d.mu.Lock()
	if d.sessions[t.TerminalID] == s {
		delete(d.sessions, t.TerminalID)
	}
	d.keepReport(rep)
	d.mu.Unlock()
	t.End(txn.RCApproved, "batch upload complete; batch closed")
}

// endSession drops the terminal's session if it is still s.
func (d *batchDesk) endSession(terminal string, s *uploadSession) {
	d.mu.Lock()
	if d.sessions[terminal] == s {
		delete(d.sessions, terminal)
	}
	d.mu.Unlock()
}

func (d *batchDesk) logReport(rep BatchReport) {
	d.log.Warn("batch upload reconciled", zap.String("tid", rep.Terminal), zap.Time("since", rep.Window.Since),
		zap.Time("upto", rep.Window.Upto), zap.Bool("closed", rep.Closed),
		zap.Int("uploaded", rep.Uploaded), zap.Int("dropped", rep.Dropped), zap.Int("terminal_only", len(rep.TerminalOnly)),
		zap.Int("ledger_only", len(rep.LedgerOnly)), zap.Int("amount_differs", len(rep.AmountDiffers)))
	logged := 0
	for _, l := range []struct {
		side  string
		items []BatchItem
	}{{"terminal_only", rep.TerminalOnly}, {"ledger_only", rep.LedgerOnly}, {"amount", rep.AmountDiffers}} {
		for _, it := range l.items {
			if logged >= maxDifferencesLogged {
				return
			}
			logged++
			d.log.Warn("batch difference", zap.String("tid", rep.Terminal), zap.String("side", l.side), zap.String("key", it.Key),
				zap.String("kind", it.Kind), zap.String("proc", it.ProcessingCode), zap.String("stan", it.STAN), zap.String("rrn", it.RRN),
				zap.Int64("terminal_amount", it.TerminalAmount), zap.Int64("ledger_amount", it.LedgerAmount))
		}
	}
}

// report returns the terminal's latest batch report.
func (d *batchDesk) report(terminal string) (BatchReport, bool) {
	if d == nil {
		return BatchReport{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.reports[terminal]
	return r, ok
}

// BatchReport is the latest batch settlement report of a terminal on this node.
func (n *Node) BatchReport(terminal string) (BatchReport, bool) { return n.batch.report(terminal) }
