package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/poswitch/poswitch/switch/txn"
)

// Merchant is what the switch knows of an acceptor.
type Merchant struct {
	ID         string
	Name       string
	MCC        string
	FeeBP      int
	Currencies map[string]bool // empty: any
}

// Identify finds the terminal and its merchant (03 when unknown or not matching field 42), checks the
// merchant accepts the currency (12), stamps the acquirer's identity, and gives the transaction a
// retrieval reference number when the terminal sent none.
type Identify struct {
	Terminals map[string]string // terminal ID → merchant ID
	Merchants map[string]*Merchant
	// NodeID makes switch-made RRNs unique across nodes sharing a database (one digit).
	NodeID byte
	// AcquirerID is this switch's institution ID; it is the first part of every transaction's identity
	// whatever field 32 a terminal sent, so a terminal cannot collide with another acquirer's keys.
	AcquirerID string

	rrnSeq atomic.Uint64 // hour since the epoch << 32 | sequence within it
}

func (*Identify) Name() string { return "identify" }

func (s *Identify) Run(_ context.Context, t *txn.Transaction) {
	mid, ok := s.Terminals[t.TerminalID]
	if !ok {
		t.End(txn.RCInvalidMerchant, "unknown terminal")
		return
	}
	if mid != t.MerchantID {
		t.End(txn.RCInvalidMerchant, "terminal does not belong to the merchant in field 42")
		return
	}
	m := s.Merchants[mid]
	if m == nil {
		t.End(txn.RCInvalidMerchant, "unknown merchant")
		return
	}
	// Only order queries come without a currency (translate requires it of the rest); the order
	// they name was checked when it was made.
	if len(m.Currencies) > 0 && t.Currency != "" && !m.Currencies[t.Currency] {
		t.End(txn.RCInvalidTxn, "merchant does not accept currency "+t.Currency)
		return
	}
	t.AcquirerID = s.AcquirerID
	t.MerchantName = m.Name
	t.FeeBP = m.FeeBP
	if t.MCC == "" {
		t.MCC = m.MCC
	}
	if t.RRN == "" {
		t.RRN = s.newRRN(t.Received)
	}
}

// newRRN makes a 12-digit reference: last digit of the year, day of year, hour, node, and a 5-digit
// sequence — unique per node for 100,000 transactions an hour. The sequence never falls behind the
// clock's share of the hour (27.7 a second), so a node restarted within the hour does not hand out
// the references its previous run gave unless that run was ahead of the clock.
func (s *Identify) newRRN(at time.Time) string {
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	hour := uint64(at.Unix() / 3600)
	floor := uint64(at.Unix()%3600) * rrnPerHour / 3600
	for {
		old := s.rrnSeq.Load()
		next := floor
		if old>>32 == hour&0xffffffff && old&0xffffffff >= floor {
			next = old&0xffffffff + 1
		}
		if s.rrnSeq.CompareAndSwap(old, hour<<32|next) {
			return fmt.Sprintf("%d%03d%02d%d%05d", at.Year()%10, at.YearDay(), at.Hour(), s.NodeID%10, next%rrnPerHour)
		}
	}
}

// rrnPerHour is how many references one node makes an hour before they repeat.
const rrnPerHour = 100_000
