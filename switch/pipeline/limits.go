package pipeline

import (
	"context"
	"sync"

	"github.com/poswitch/poswitch/switch/limits"
	"github.com/poswitch/poswitch/switch/txn"
)

// limitedTypes are the debits that move the cardholder's money to the merchant: only they count
// against, and are checked by, the risk limits. Reversals, voids, refunds, completions (the
// pre-authorization already counted) and balance inquiries pass untouched.
var limitedTypes = map[txn.Type]bool{txn.TypePurchase: true, txn.TypePreAuth: true, txn.TypeBillPayment: true}

// Limits checks the acquirer's risk limits (switch/limits) and reserves the transaction's amount in
// the day's usage of its merchant, terminal and card:
//   - 57 when the merchant may not take the transaction's merchant category (field 18, else the
//     merchant's configured MCC),
//   - 58 when the terminal may not take it,
//   - 61 above a single-transaction maximum or past a daily amount,
//   - 65 past a daily count.
//
// The card is known to the limits only by Digest(PAN), the HSM's keyed PAN digest. The reservation
// is held until Done, which the terminal handler calls after the pipeline: an approval keeps it, any
// other outcome gives it back, so declined and failed transactions never use up a limit.
type Limits struct {
	Limiter *limits.Limiter
	// Digest is the keyed digest of a PAN (node: the HSM's PANDigest); nil turns card limits off.
	Digest func(pan string) []byte

	mu   sync.Mutex
	held map[*txn.Transaction]limits.Reservation // bounded by the transactions in flight
}

// NewLimits builds the step; the limiter is required.
func NewLimits(l *limits.Limiter, digest func(pan string) []byte) *Limits {
	return &Limits{Limiter: l, Digest: digest, held: map[*txn.Transaction]limits.Reservation{}}
}

func (*Limits) Name() string { return "limits" }

func (s *Limits) Run(_ context.Context, t *txn.Transaction) {
	if !limitedTypes[t.Type] {
		return
	}
	r := limits.Request{Merchant: t.MerchantID, Terminal: t.TerminalID, Currency: t.Currency, MCC: t.MCC, Amount: t.Amount}
	if s.Digest != nil && t.PAN != "" && s.Limiter.NeedsCard(t.Currency) {
		r.Card = s.Digest(t.PAN)
	}
	res, d := s.Limiter.Reserve(r)
	if d != nil {
		t.End(responseCode(d), "limit: "+d.Error())
		return
	}
	s.mu.Lock()
	s.held[t] = res
	s.mu.Unlock()
}

// Done settles the transaction's reservation once its answer is final: kept when it was approved
// (and was not a duplicate of one already counted), released otherwise. Calling it for a transaction
// the step never reserved for is harmless.
func (s *Limits) Done(t *txn.Transaction) {
	s.mu.Lock()
	res, ok := s.held[t]
	delete(s.held, t)
	s.mu.Unlock()
	if !ok || (t.Approved() && !t.Duplicate) {
		return
	}
	s.Limiter.Release(res)
}

// Held is the number of reservations waiting for Done (for tests and a leak check).
func (s *Limits) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// responseCode maps the limit hit to the ISO 8583 answer.
func responseCode(d *limits.Decline) string {
	switch {
	case d.Kind == limits.KindBlockedMCC && d.Scope == limits.ScopeTerminal:
		return txn.RCNotPermittedTerm
	case d.Kind == limits.KindBlockedMCC:
		return txn.RCNotPermittedCard
	case d.Kind == limits.KindDailyCount:
		return txn.RCExceedsCount
	default:
		return txn.RCExceedsAmount
	}
}
