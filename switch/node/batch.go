package node

import (
	"context"
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
	Terminal string          `json:"terminal"`
	Cycle    int64           `json:"cycle"`
	At       time.Time       `json:"at"`
	Totals   ledger.Mismatch `json:"totals"`
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
// compared with the ledger (ledger.CompareBatchTotals); a mismatch is answered 95 and opens an
// upload session, which the trailer closes with a report of the differences, logged and counted.
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
			Help: "Terminal batch settlements (0500) by result: balanced, mismatch (answered 95), trailer, error.",
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

// settle compares a 0500's totals with the ledger: 00 when they agree, 95 (and an upload session)
// when they do not.
func (d *batchDesk) settle(ctx context.Context, t *txn.Transaction) {
	m, err := ledger.CompareBatchTotals(ctx, d.q, t.TerminalID, 0, totalsOf(t))
	if err != nil {
		d.settlements.WithLabelValues("error").Inc()
		d.log.Error("batch settlement: comparing totals", zap.String("tid", t.TerminalID), zap.Error(err))
		t.End(txn.RCSystemError, "ledger unavailable")
		return
	}
	now := time.Now()
	rep := BatchReport{Terminal: t.TerminalID, Cycle: m.Cycle, At: now, Totals: m}
	if m.OK() {
		d.settlements.WithLabelValues("balanced").Inc()
		d.mu.Lock()
		delete(d.sessions, t.TerminalID)
		d.keepReport(rep)
		d.mu.Unlock()
		t.End(txn.RCApproved, "batch totals agree with the ledger")
		return
	}
	d.settlements.WithLabelValues("mismatch").Inc()
	fields := make([]zap.Field, 0, len(m.Diffs)+2)
	fields = append(fields, zap.String("tid", t.TerminalID), zap.Int64("cycle", m.Cycle))
	for _, df := range m.Diffs {
		fields = append(fields, zap.Int64s("field_"+strconv.Itoa(df.Field)+"_terminal_ledger", []int64{df.Terminal, df.Ledger}))
	}
	d.log.Warn("batch totals differ from the ledger; answering 95 for a batch upload", fields...)
	d.mu.Lock()
	d.openSession(t.TerminalID, rep, now)
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
// on the open cycle. The answer is 0330 00.
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

// trailer closes an upload: the uploaded transactions are compared with the ledger's batch of the
// terminal, the differences logged, counted and kept as the terminal's report; the answer is 00
// (the terminal may close its batch; the differences are the acquirer's to resolve). A trailer
// without an upload is settled like a 0500.
func (d *batchDesk) trailer(ctx context.Context, t *txn.Transaction) {
	d.mu.Lock()
	s := d.sessions[t.TerminalID]
	d.mu.Unlock()
	if s == nil {
		d.settle(ctx, t)
		return
	}
	entries, err := ledger.TerminalBatch(ctx, d.q, t.TerminalID, s.report.Cycle)
	if err != nil {
		d.settlements.WithLabelValues("error").Inc()
		d.log.Error("batch upload: reading the ledger's batch", zap.String("tid", t.TerminalID), zap.Error(err))
		t.End(txn.RCSystemError, "ledger unavailable")
		return
	}
	d.mu.Lock()
	if d.sessions[t.TerminalID] != s {
		// Another trailer or 0500 of this terminal got here first.
		d.mu.Unlock()
		t.End(txn.RCApproved, "batch upload already closed")
		return
	}
	delete(d.sessions, t.TerminalID)
	rep := s.report
	rep.Uploaded = len(s.txns)
	rep.Complete = true
	rep.At = time.Now()
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
	sort.Slice(rep.TerminalOnly, func(i, j int) bool { return rep.TerminalOnly[i].Key < rep.TerminalOnly[j].Key })
	d.mu.Unlock()

	if m, err := ledger.CompareBatchTotals(ctx, d.q, t.TerminalID, rep.Cycle, totalsOf(t)); err == nil {
		rep.TrailerTotals = &m
	}
	d.differences.WithLabelValues("terminal_only").Add(float64(len(rep.TerminalOnly)))
	d.differences.WithLabelValues("ledger_only").Add(float64(len(rep.LedgerOnly)))
	d.differences.WithLabelValues("amount").Add(float64(len(rep.AmountDiffers)))
	d.settlements.WithLabelValues("trailer").Inc()
	d.logReport(rep)
	d.mu.Lock()
	d.keepReport(rep)
	d.mu.Unlock()
	t.End(txn.RCApproved, "batch upload complete")
}

func (d *batchDesk) logReport(rep BatchReport) {
	d.log.Warn("batch upload reconciled", zap.String("tid", rep.Terminal), zap.Int64("cycle", rep.Cycle),
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
