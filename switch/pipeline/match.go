package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/poswitch/poswitch/switch/txn"
)

// Defaults of the answer cache.
const (
	DefaultMaxAnswers = 200_000
	DefaultAnswerTTL  = 15 * time.Minute
	matchShards       = 64
)

// MatchConfig bounds the duplicate matcher.
type MatchConfig struct {
	// MaxAnswers bounds the finished answers kept for retransmissions; the oldest go first.
	// Default 200,000.
	MaxAnswers int
	// AnswerTTL is how long a finished answer is kept. Default 15 minutes.
	AnswerTTL time.Duration
	// Records answers a repeat (xxx1) whose answer is no longer kept from the ledger; nil: such a
	// repeat is processed as new (the ledger still books it once).
	Records Records
	Log     *zap.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Match makes a transaction identity (acquirer, terminal, STAN, transmission time, MTI class: see
// txn.Transaction.Key, so a repeat xxx1 shares its original's) run through the rest of the
// pipeline at most once at a time and be answered once:
//
//   - the same identity while the first is still in the pipeline is 94 (duplicate transmission);
//   - a retransmission of a finished one gets the stored answer (same code, authorization code, RRN
//     and balance) and goes no further: not to the issuer, not to the ledger. The same identity
//     with another amount, processing code, currency or card is 94;
//   - a repeat whose answer is no longer kept, of a transaction that goes to the issuer, is answered
//     from the ledger when the ledger booked it, so the issuer never sees it twice.
//
// Answers of 96 are not kept: the switch did not finish the transaction (the ledger or the
// store-and-forward queue was down), so a retransmission runs again and the ledger, which books
// each identity once, keeps that safe. Reversals, voids and advices never wait on the issuer and
// book idempotently, so a repeat of one the cache forgot simply runs again.
//
// Match runs after identify (which stamps the acquirer into the identity); the handler calls Done
// with every transaction once its answer is final.
type Match struct {
	cfg    MatchConfig
	shards [matchShards]matchShard
}

type matchShard struct {
	mu       sync.Mutex
	inFlight map[string]*flight
	answers  map[string]*storedAnswer
	ring     []ringSlot // insertion order, oldest at head
	head, n  int
	seq      uint64
}

type flight struct {
	t    *txn.Transaction
	done chan struct{}
}

type ringSlot struct {
	key string
	seq uint64
}

// storedAnswer is what a retransmission gets back; never card data beyond the masked PAN's digest.
type storedAnswer struct {
	seq      uint64
	at       time.Time
	print    fingerprint
	response string
	authCode string
	rrn      string
	balance  string // field 54
	emv      []byte // field 55 of the answer (issuer scripts, ARPC): public data
	issuer   string
	fee      int64
	booked   bool
}

// fingerprint is what must not change between an original and its retransmission.
type fingerprint struct {
	proc, currency, pan string // pan: masked
	amount              int64
}

func printOf(t *txn.Transaction) fingerprint {
	pan := ""
	if t.PAN != "" {
		pan = t.MaskedPAN()
	}
	return fingerprint{proc: t.ProcessingCode, currency: t.Currency, pan: pan, amount: t.Amount}
}

// NewMatch builds the matcher.
func NewMatch(cfg MatchConfig) *Match {
	if cfg.MaxAnswers <= 0 {
		cfg.MaxAnswers = DefaultMaxAnswers
	}
	if cfg.AnswerTTL <= 0 {
		cfg.AnswerTTL = DefaultAnswerTTL
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Match{cfg: cfg}
	per := (cfg.MaxAnswers + matchShards - 1) / matchShards
	for i := range m.shards {
		m.shards[i] = matchShard{inFlight: map[string]*flight{}, answers: map[string]*storedAnswer{}, ring: make([]ringSlot, per)}
	}
	return m
}

func (*Match) Name() string { return "match" }

func (m *Match) shard(key string) *matchShard {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return &m.shards[h%matchShards]
}

func (m *Match) Run(ctx context.Context, t *txn.Transaction) {
	key := t.Key()
	s := m.shard(key)
	now := m.cfg.Now()
	s.mu.Lock()
	if _, busy := s.inFlight[key]; busy {
		s.mu.Unlock()
		t.Duplicate = true
		t.End(txn.RCDuplicate, "duplicate of a request still in flight")
		return
	}
	if a := s.answers[key]; a != nil && now.Sub(a.at) <= m.cfg.AnswerTTL {
		s.mu.Unlock()
		m.replay(t, a)
		return
	}
	s.inFlight[key] = &flight{t: t, done: make(chan struct{})}
	s.mu.Unlock()

	if t.Repeat() && m.cfg.Records != nil && sentToIssuer(t) {
		m.fromLedger(ctx, t, key)
	}
}

// replay answers a retransmission with the stored answer.
func (m *Match) replay(t *txn.Transaction, a *storedAnswer) {
	t.Duplicate = true
	if a.print != printOf(t) {
		t.End(txn.RCDuplicate, "identity reused with different content")
		return
	}
	t.End(a.response, "retransmission: the stored answer")
	t.AuthCode, t.RRN, t.AdditionalAmounts, t.ResponseEMV = a.authCode, a.rrn, a.balance, a.emv
	t.IssuerID, t.Fee, t.Booked = a.issuer, a.fee, a.booked
}

// sentToIssuer tells whether a transaction type waits on the issuer (and so must not be sent twice).
func sentToIssuer(t *txn.Transaction) bool {
	return t.Type != txn.TypeReversal && t.Type != txn.TypeVoid && !t.Advice()
}

// fromLedger answers a repeat the cache no longer holds from what the ledger booked for it. A
// repeat the ledger does not know (the original was declined, or never arrived) runs as new.
func (m *Match) fromLedger(ctx context.Context, t *txn.Transaction, key string) {
	r, ok, err := m.cfg.Records.Record(ctx, key)
	switch {
	case err != nil:
		// Unknown whether it was approved: sending it again could authorise twice, and booking it
		// would fail anyway.
		m.cfg.Log.Warn("cannot read the ledger for a repeat; answering 96", zap.Stringer("txn", t), zap.Error(err))
		t.End(txn.RCSystemError, "ledger unavailable to check a repeat")
		return
	case !ok:
		return
	}
	t.Duplicate = true
	if r.Status == StatusBooked && r.Amount != t.Amount {
		t.End(txn.RCDuplicate, "identity reused with different content")
		return
	}
	t.End(LedgerAnswer(Booked{Status: r.Status, Refusal: r.Refusal}), "repeat: the ledger's answer")
	t.AuthCode, t.RRN, t.IssuerID, t.Fee, t.Booked = r.AuthCode, r.RRN, r.Issuer, r.Fee, r.Status == StatusBooked
}

// Done ends t's turn in flight and keeps its answer for retransmissions. It ignores a transaction
// Match did not let through (a duplicate, a replay) and one that never reached Match.
func (m *Match) Done(t *txn.Transaction) {
	key := t.Key()
	s := m.shard(key)
	now := m.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.inFlight[key]
	if f == nil || f.t != t {
		return
	}
	delete(s.inFlight, key)
	close(f.done)
	if t.Response == "" || t.Response == txn.RCSystemError {
		return
	}
	s.seq++
	a := &storedAnswer{seq: s.seq, at: now, print: printOf(t), response: t.Response, authCode: t.AuthCode, rrn: t.RRN,
		balance: t.AdditionalAmounts, emv: t.ResponseEMV, issuer: t.IssuerID, fee: t.Fee, booked: t.Booked}
	// Evict the expired, then the oldest if full: every answer lives at most AnswerTTL and the
	// shard holds at most len(ring).
	for s.n > 0 {
		old := s.ring[s.head]
		if s.n < len(s.ring) {
			if e := s.answers[old.key]; e != nil && e.seq == old.seq && now.Sub(e.at) <= m.cfg.AnswerTTL {
				break
			}
		}
		if e := s.answers[old.key]; e != nil && e.seq == old.seq {
			delete(s.answers, old.key)
		}
		s.ring[s.head] = ringSlot{}
		s.head = (s.head + 1) % len(s.ring)
		s.n--
	}
	s.ring[(s.head+s.n)%len(s.ring)] = ringSlot{key: key, seq: a.seq}
	s.n++
	s.answers[key] = a
}

// Await returns once no transaction with identity key is in flight, or ctx ends.
func (m *Match) Await(ctx context.Context, key string) error {
	s := m.shard(key)
	s.mu.Lock()
	f := s.inFlight[key]
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s in flight: %w", key, ctx.Err())
	}
}

// Finisher is a step that holds state per transaction until its answer is final; the handler
// calls Done with every transaction the pipeline answered.
type Finisher interface {
	Done(t *txn.Transaction)
}

// MatchStats are the matcher's current sizes, for metrics and tests.
type MatchStats struct {
	InFlight int
	Answers  int
}

// Stats counts what the matcher holds now.
func (m *Match) Stats() MatchStats {
	var st MatchStats
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		st.InFlight += len(s.inFlight)
		st.Answers += len(s.answers)
		s.mu.Unlock()
	}
	return st
}
