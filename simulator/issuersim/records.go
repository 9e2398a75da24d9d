package issuersim

// Record is what the simulator remembers of one financial request (0100/0200) or advice (0120/0220)
// identity, for tests that must prove, for example, that every unanswered purchase was reversed
// exactly once at the issuer. Records hold the masked PAN only.
type Record struct {
	MTI              string // as first received: 0100, 0200, 0120, 0220 (or a repeat xxx1)
	ProcessingCode   string // field 3
	STAN             string // field 11 as the sender's link sent it
	TransmissionTime string // field 7 as the sender's link sent it
	Acquirer         string // field 32 without leading zeros
	Terminal         string // field 41
	Original         string // field 90 when present (void, completion, advice)
	MaskedPAN        string // first 6 and last 4 digits
	Amount           int64  // field 4, minor units
	Currency         string // field 49
	Response         string // field 39 answered
	AuthCode         string // field 38 answered, "" when declined

	// Applied: the request moved money or placed a hold at the account (an approved purchase, refund,
	// pre-authorisation or bill payment, an advice, or a void that cancelled its original).
	Applied   bool
	Completes bool // an 0220 that completed the pre-authorisation named in field 90
	Completed bool // a pre-authorisation whose hold a completion released
	Voided    bool // cancelled by a void (processing code 02)

	Copies  int // messages with this identity: 1 plus retransmissions and repeats answered from memory
	Dropped int // answers to it dropped by fault injection
	Delayed int // answers to it delayed by fault injection
	Closed  int // answers to it replaced by closing the connection

	ReversalsNamed   int // reversal messages (0400/0401/0420/0421) naming it in field 90
	ReversalsApplied int // reversals that restored its money or hold: never more than 1
}

// Transactions returns the remembered financial requests (0100/0200 identities), oldest first. At
// most Config.MaxRecords requests and advices together are remembered.
func (s *Server) Transactions() []Record { return s.ledger.records(false) }

// Advices returns the remembered advices (0120/0220 identities, completions included), oldest first.
func (s *Server) Advices() []Record { return s.ledger.records(true) }

func (l *ledger) records(advices bool) []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Record, 0, l.memory.Len())
	for e := range l.memory.All() {
		if isAdvice(e.rec.MTI) == advices {
			out = append(out, e.rec)
		}
	}
	return out
}

// isAdvice reports whether an MTI is an advice (function digit 2: 0120, 0221, …).
func isAdvice(mti string) bool { return len(mti) == 4 && mti[2] == '2' }
