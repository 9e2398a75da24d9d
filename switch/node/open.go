package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/qrorder"
)

// Stack is a node with the parts it runs on: the database pool and the ledger writer.
type Stack struct {
	*Node
	Pool   *pgxpool.Pool
	Writer *ledger.Writer
	SAF    *SAF
	// Orders is the merchant-presented QR order desk and its notification endpoint (orders.go); nil
	// when channels.orders.notify_address is empty.
	Orders *qrorder.Desk

	stopWriter context.CancelFunc
	writerDone chan error
	stopSAF    context.CancelFunc
	safDone    chan error
}

// Parts a Stack is given rather than builds from the configuration.
type Parts struct {
	// HSM translates PIN blocks: the in-process *hsm.HSM or a service.Client of `poswitch hsm serve`.
	// Nil makes every PIN transaction 88.
	HSM    hsm.PINTranslator
	Digest PANDigester
	// Vault seals the PANs of advices waiting in the store-and-forward queue (the HSM's SealPAN and
	// OpenPAN); nil sends advices without field 2.
	Vault PANVault
}

// Open migrates the ledger, syncs the merchants of the configuration into it, starts the ledger
// writer and builds the node (not yet started).
func Open(ctx context.Context, cfg *config.Config, parts Parts, log *zap.Logger) (*Stack, error) {
	if err := checkStandInParts(cfg, parts); err != nil {
		return nil, err
	}
	var pin pipeline.PINTranslator
	if parts.HSM != nil {
		pt, err := newPINTranslator(ctx, cfg, parts.HSM)
		if err != nil {
			return nil, err
		}
		pin = pt
	}
	if err := ledger.Migrate(ctx, cfg.Database.OwnerURL); err != nil {
		return nil, fmt.Errorf("migrating the ledger: %w", err)
	}
	pcfg, err := pgxpool.ParseConfig(cfg.Database.URL)
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	pcfg.MaxConns = int32(cfg.Database.MaxConnections)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the ledger: %w", err)
	}
	for _, m := range cfg.Merchants {
		err := ledger.UpsertMerchant(ctx, pool, ledger.MerchantSettings{
			ID: m.ID, Name: m.Name, FeeBP: int64(*m.FeeBP), FeeBPSet: true,
		})
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("merchant %s: %w", m.ID, err)
		}
	}
	writer := ledger.NewWriter(pool, ledger.WriterConfig{
		BatchWindow: cfg.Database.BatchWindow.D(), MaxBatchBookings: cfg.Database.MaxBatch,
	}, log.Named("ledger"))
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- writer.Run(wctx) }()
	// Every node runs the scheduler; the ledger makes sure a cycle is closed once.
	schedule := ledger.CutoverSchedule{At: cfg.Settlement.CutoverAt, TimeZone: cfg.Settlement.TimeZone}
	go func() { done <- ledger.RunCutoverScheduler(wctx, pool, schedule, log.Named("settlement")) }()
	// abandon undoes what Open started when a later part fails.
	abandon := func() {
		stop()
		<-done
		<-done
		pool.Close()
	}

	keys, err := newKeyManager(ctx, cfg, parts.HSM, pool) // keys.go
	if err != nil {
		abandon()
		return nil, err
	}
	if keys != nil && pin != nil {
		pin.(*pinTranslator).working = keys
	}
	queue := NewSAF(pool, cfg, parts.Vault, log.Named("saf"))
	standIn, err := NewStandIn(pool, cfg, parts.Digest, log.Named("standin"))
	if err != nil {
		abandon()
		return nil, err
	}
	// Bill payments to wallet billers owe the wallet, not the merchant (ledger.go).
	booker := ledgerBooker{writer: writer, digest: parts.Digest, billers: billerBookings(cfg)}
	orderDesk, err := openOrderDesk(cfg, pool, booker, parts.HSM, log) // orders.go
	if err != nil {
		abandon()
		return nil, err
	}
	n, err := New(cfg, Options{Log: log, Booker: booker, PIN: pin,
		Ledger: pool, Digest: parts.Digest, SAF: queue, StandIn: standIn, OnLateAnswer: queue.OnLateAnswer,
		Keys: keys, Orders: orderDesk.Orders()})
	if err != nil {
		orderDesk.Close()
		abandon()
		return nil, err
	}
	n.metrics.registry.MustRegister(queue.Queue.Collector(), standIn)
	// The queue drains until the node has closed (in-flight transactions may still queue reversals).
	safCtx, stopSAF := context.WithCancel(context.Background())
	safDone := make(chan error, 1)
	go func() { safDone <- queue.Run(safCtx, n.Senders()) }()
	return &Stack{Node: n, Pool: pool, Writer: writer, SAF: queue, stopWriter: stop, writerDone: done,
		stopSAF: stopSAF, safDone: safDone,
		Orders: orderDesk}, nil
}

// checkStandInParts refuses a stand-in the node could not run. Without the keyed PAN digest every
// stand-in would be declined (the per-card daily limits count cards by it, never by the PAN), and
// without the vault its advices would reach the issuer without field 2 and be refused there; both
// would go unnoticed until the issuer is down. Only the in-process HSM offers them today.
func checkStandInParts(cfg *config.Config, parts Parts) error {
	for i, is := range cfg.Issuers {
		if !is.StandIn.Enabled {
			continue
		}
		var missing []string
		if parts.Digest == nil {
			missing = append(missing, "the HSM's keyed PAN digest (the stand-in per-card daily limits count cards by it)")
		}
		if parts.Vault == nil {
			missing = append(missing, "the HSM's PAN vault (stand-in advices keep the PAN sealed until they are sent)")
		}
		if len(missing) > 0 {
			return cfg.ErrorAt("issuers", i, "stand_in", "issuer %s has stand-in enabled, which needs %s; "+
				"a remote HSM (hsm.address) does not offer them yet: use the in-process HSM (hsm.lmk_file or hsm.lmk_env) "+
				"or disable stand_in for this issuer", is.ID, strings.Join(missing, " and "))
		}
	}
	return nil
}

// Close stops the node first (in-flight transactions finish and are booked), then the writer, then
// the pool.
func (s *Stack) Close() {
	s.Node.Close()
	s.Orders.Close() // after the node: no order message is in flight; before the writer: bookings finish
	s.stopSAF()
	<-s.safDone
	s.stopWriter()
	<-s.writerDone
	<-s.writerDone
	s.Pool.Close()
}
