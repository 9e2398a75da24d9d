package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/saf"
	"github.com/poswitch/poswitch/switch/standin"
)

// PANVault seals a PAN for storage and opens it again (the HSM holds the key). Advices need it: the
// issuer posts a stand-in or offline approval to the card's account, so field 2 must reach it, yet
// the database never holds a clear PAN.
type PANVault interface {
	SealPAN(pan string) ([]byte, error)
	OpenPAN(sealed []byte) (string, error)
}

// Bounds of the in-memory retry of enqueues (late answers, and items the database refused).
const (
	maxRetryItems    = 10000
	retryWaitFirst   = 200 * time.Millisecond
	retryWaitMax     = 30 * time.Second
	enqueueRetryTime = 5 * time.Second // bounds one retried enqueue
)

// SAF is a node's store-and-forward: the durable queue (shared by every node on the database), the
// adapter the pipeline steps hand reversals and advices to (pipeline.StoreAndForward), the issuer
// links' late-answer hook, and a bounded in-memory retry of enqueues the database refused, so a
// short database outage loses no reversal of a live node.
type SAF struct {
	Queue      *saf.Queue
	vault      PANVault
	acquirerID string
	log        *zap.Logger

	retry       chan retryItem
	backlog     atomic.Int64 // kept and not yet stored, including the one being stored
	lostRetries atomic.Int64
}

type retryItem struct {
	item saf.Item
	late bool // EnqueueLate: a delivered reversal is sent again
}

// NewSAF builds the node's store-and-forward on the ledger's pool. vault may be nil: advices then go
// without field 2 (and the issuer must find the account by field 90 with 41 and 32, which only works
// for what it saw before), which is logged once here.
func NewSAF(pool *pgxpool.Pool, cfg *config.Config, vault PANVault, log *zap.Logger) *SAF {
	if log == nil {
		log = zap.NewNop()
	}
	qc := saf.Config{
		RetryBase: cfg.SAF.RetryBase.D(), RetryMax: cfg.SAF.RetryMax.D(), MaxAttempts: cfg.SAF.MaxAttempts,
		PollInterval: cfg.SAF.PollInterval.D(), Lease: cfg.SAF.Lease.D(), MaxBatch: cfg.SAF.MaxBatch,
	}
	if vault != nil {
		qc.Opener = vault
	} else {
		log.Warn("no PAN vault: store-and-forward advices are sent without field 2")
	}
	return &SAF{Queue: saf.NewQueue(pool, qc, log), vault: vault, acquirerID: cfg.Node.AcquirerID, log: log,
		retry: make(chan retryItem, maxRetryItems)}
}

var _ pipeline.StoreAndForward = (*SAF)(nil)

// Enqueue is pipeline.StoreAndForward: it stores the item durably and returns once it is committed.
// If the database refuses it, the item is also kept for a retry in memory (bounded) and the error is
// returned, so the caller can tell the terminal and log.
func (s *SAF) Enqueue(ctx context.Context, f pipeline.Forward) error {
	it, err := s.itemOf(f)
	if err != nil {
		return err
	}
	if err := s.Queue.Enqueue(ctx, it); err != nil {
		s.keep(retryItem{item: it})
		return err
	}
	return nil
}

// itemOf maps a pipeline Forward to a queue item; an advice's PAN is sealed, never stored clear.
func (s *SAF) itemOf(f pipeline.Forward) (saf.Item, error) {
	it := saf.Item{
		Kind: saf.Kind(f.Kind), Issuer: f.Issuer, MTI: f.MTI, OrigMTI: f.OriginalMTI, OrigSTAN: f.OriginalSTAN,
		OrigTime: f.OriginalTime, AcquirerID: f.AcquirerID, TerminalID: f.Terminal, OriginalKey: f.OriginalKey,
		ProcessingCode: f.ProcessingCode, Amount: f.Amount, Currency: f.Currency, MerchantID: f.Merchant,
		RRN: f.RRN, AuthCode: f.AuthCode, MCC: f.MCC, EntryMode: f.EntryMode, PANMasked: f.PANMasked,
		Reason: f.Reason,
	}
	if it.AcquirerID == "" {
		it.AcquirerID = s.acquirerID
	}
	if it.Kind == saf.KindAdvice && f.PAN != "" && s.vault != nil {
		sealed, err := s.vault.SealPAN(f.PAN)
		if err != nil {
			return saf.Item{}, fmt.Errorf("sealing the PAN of an advice for %s: %w", f.Issuer, err)
		}
		it.PANSealed = sealed
	}
	if err := it.Validate(); err != nil {
		return saf.Item{}, err
	}
	return it, nil
}

// OnLateAnswer is issuerlink.Config.OnLateAnswer: an approval that arrives after its request timed
// out is reversed (reason 4006). The timeout already queued the same reversal, so this is a safety
// net for a timeout whose enqueue failed, and it re-sends a reversal the issuer acknowledged before
// it approved. It never blocks the link's reader: the item goes to the bounded retry queue.
func (s *SAF) OnLateAnswer(issuerID string, answer *iso8583.Message) {
	it, ok, err := saf.LateReversalOf(issuerID, answer, s.acquirerID)
	if err != nil {
		s.log.Error("late issuer answer cannot be reversed", zap.String("issuer", issuerID), zap.Error(err))
		return
	}
	if !ok {
		return
	}
	s.log.Warn("late issuer approval: reversing it", zap.String("issuer", issuerID), zap.String("orig_stan", it.OrigSTAN),
		zap.String("orig_time", it.OrigTime), zap.String("tid", it.TerminalID), zap.Int64("amount", it.Amount))
	s.keep(retryItem{item: it, late: true})
}

// Backlog is the number of items waiting in memory to be stored (late answers, refused enqueues).
func (s *SAF) Backlog() int64 { return s.backlog.Load() }

// Lost is the number of items the full in-memory backlog dropped (each logged at error).
func (s *SAF) Lost() int64 { return s.lostRetries.Load() }

// keep hands an item to the retry loop without blocking; a full queue loses it, loudly.
func (s *SAF) keep(r retryItem) {
	s.backlog.Add(1)
	select {
	case s.retry <- r:
	default:
		s.backlog.Add(-1)
		s.lostRetries.Add(1)
		s.log.Error("store-and-forward retry queue full: item lost; reverse by hand", zap.String("issuer", r.item.Issuer),
			zap.String("kind", string(r.item.Kind)), zap.String("orig_stan", r.item.OrigSTAN),
			zap.String("orig_time", r.item.OrigTime), zap.String("tid", r.item.TerminalID),
			zap.String("original_key", r.item.OriginalKey), zap.Int64("amount", r.item.Amount))
	}
}

// Run drains the queue towards the senders and retries refused enqueues until ctx ends.
func (s *SAF) Run(ctx context.Context, senders map[string]saf.Sender) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.retryLoop(ctx)
	}()
	err := s.Queue.Run(ctx, senders)
	<-done
	return err
}

// retryLoop enqueues kept items one at a time, waiting longer after each failure; the channel
// bounds what waits.
func (s *SAF) retryLoop(ctx context.Context) {
	wait := retryWaitFirst
	for {
		var r retryItem
		select {
		case <-ctx.Done():
			if n := len(s.retry); n > 0 {
				s.log.Error("store-and-forward: items not yet stored at shutdown", zap.Int("items", n))
			}
			return
		case r = <-s.retry:
		}
		for {
			ectx, cancel := context.WithTimeout(ctx, enqueueRetryTime)
			var err error
			if r.late {
				err = s.Queue.EnqueueLate(ectx, r.item)
			} else {
				err = s.Queue.Enqueue(ectx, r.item)
			}
			cancel()
			if err == nil {
				s.backlog.Add(-1)
				wait = retryWaitFirst
				break
			}
			s.log.Warn("store-and-forward: storing a kept item", zap.Duration("retry_in", wait), zap.Error(err))
			select {
			case <-ctx.Done():
				s.log.Error("store-and-forward: items not yet stored at shutdown", zap.Int("items", len(s.retry)+1),
					zap.String("issuer", r.item.Issuer), zap.String("orig_stan", r.item.OrigSTAN),
					zap.String("orig_time", r.item.OrigTime), zap.String("tid", r.item.TerminalID))
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, retryWaitMax)
		}
	}
}

// Senders are the node's issuer links as the queue sends on them.
func (n *Node) Senders() map[string]saf.Sender {
	out := make(map[string]saf.Sender, len(n.links))
	for id, l := range n.links {
		out[id] = l
	}
	return out
}

// NewStandIn builds the stand-in decider from the issuers' stand_in sections; digest is the HSM's
// keyed PAN digest (nil declines every stand-in). Days for the daily limits follow the settlement
// time zone.
func NewStandIn(pool *pgxpool.Pool, cfg *config.Config, digest PANDigester, log *zap.Logger) (*standin.Decider, error) {
	rules := make(map[string]standin.Rules, len(cfg.Issuers))
	for _, is := range cfg.Issuers {
		r := is.StandIn
		rules[is.ID] = standin.Rules{Enabled: r.Enabled, Currency: r.Currency, MaxAmount: r.MaxAmount,
			FloorAmount: r.FloorAmount, DailyAmountPerCard: r.DailyAmountPerCard, DailyCountPerCard: r.DailyCountPerCard}
	}
	loc, err := time.LoadLocation(cfg.Settlement.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("settlement.time_zone: %w", err)
	}
	o := standin.Options{Location: loc, Log: log}
	if digest != nil {
		o.Digest = digest.PANDigest
	}
	return standin.New(pool, rules, o)
}
