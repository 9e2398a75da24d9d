package walletsim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/specs"
)

// notEchoed are request fields an answer never carries back: framing, card data, MACs, and the
// fields the wallet answers itself.
var notEchoed = map[int]bool{0: true, 1: true, 2: true, 14: true, 35: true, 45: true, 52: true, 55: true,
	64: true, 128: true, 37: true, 38: true, 39: true, 63: true}

// request is what the wallet reads from a financial request or advice.
type request struct {
	mti, proc, pan, currency, rrn, account string
	amount                                 int64
	instalments                            int
	own                                    txnKey
	orig                                   txnKey
	hasOrig                                bool
}

func linkKey(m *iso8583.Message) txnKey {
	get := func(id int) string { v, _ := m.GetString(id); return v }
	return txnKey{class: classLink, stan: get(11), transmission: get(7), acquirer: strings.TrimLeft(get(32), "0"),
		terminal: strings.TrimSpace(get(41))}
}

// originalKey is what field 90 names (MTI 4, STAN 6, transmission time 10, acquirer 11, forwarding
// institution 11) at the request's terminal.
func originalKey(m *iso8583.Message) (txnKey, bool, bool) {
	orig, _ := m.GetString(90)
	if orig == "" {
		return txnKey{}, false, true
	}
	if len(orig) != 42 {
		return txnKey{}, false, false
	}
	tid, _ := m.GetString(41)
	return txnKey{class: classLink, stan: orig[4:10], transmission: orig[10:20],
		acquirer: strings.TrimLeft(orig[20:31], "0"), terminal: strings.TrimSpace(tid)}, true, true
}

// readRequest reads a financial request or advice; false means a format error (30).
func readRequest(m *iso8583.Message, mti string) (*request, bool) {
	get := func(id int) string { v, _ := m.GetString(id); return v }
	r := &request{mti: mti, proc: get(3), pan: get(2), currency: get(49), rrn: strings.TrimSpace(get(37)), own: linkKey(m)}
	var wellFormed bool
	r.orig, r.hasOrig, wellFormed = originalKey(m)
	if a := get(4); a != "" {
		v, err := strconv.ParseInt(a, 10, 64)
		if err != nil || v < 0 {
			return nil, false
		}
		r.amount = v
	}
	if f63 := get(63); f63 != "" {
		n, err := strconv.Atoi(f63)
		if err != nil || n < 0 {
			return nil, false
		}
		r.instalments = n
	}
	r.account = r.pan
	if _, acct, ok := strings.Cut(get(48), "|"); ok && r.account == "" {
		r.account = acct
	}
	return r, wellFormed && len(r.proc) == 6
}

// handle answers one frame body; nil means no answer (unreadable, or not a request).
func (s *Server) handle(body []byte) []byte {
	req := iso8583.NewMessage(specs.IssuerLink)
	if err := req.Unpack(body); err != nil {
		s.counters.badMessages.Add(1)
		s.log.Warn("wallet-sim cannot unpack request", zap.Error(err))
		return nil
	}
	mti, _ := req.GetMTI()
	s.count(s.requests, mti)
	if len(mti) != 4 || (mti[2]-'0')%2 == 1 {
		s.counters.badMessages.Add(1)
		return nil
	}
	resp, err := s.respond(req, mti)
	if err != nil {
		s.log.Error("wallet-sim answering", zap.String("mti", mti), zap.Error(err))
		return nil
	}
	packed, err := resp.Pack()
	if err != nil {
		s.log.Error("wallet-sim packing answer", zap.String("mti", mti), zap.Error(err))
		return nil
	}
	return packed
}

func (s *Server) respond(req *iso8583.Message, mti string) (*iso8583.Message, error) {
	switch mti[1:3] {
	case "80":
		return answer(req, mti, rcApproved, nil)
	case "40", "42":
		s.counters.reversals.Add(1)
		key, ok, _ := originalKey(req)
		if !ok {
			key = linkKey(req)
		}
		if orig, _ := req.GetString(90); ok && orig[2] == '2' {
			// Field 90 names an advice (0220: a repayment told to the wallet), remembered by what
			// the advice's own field 90 named: the same trace.
			key.class = classAdvice
		}
		s.book.reverse(key)
		return answer(req, mti, rcApproved, nil)
	case "20", "22", "10", "12":
		return s.financial(req, mti)
	default:
		return answer(req, mti, rcInvalidTxn, nil)
	}
}

// financial answers QR payments (0200 purchase with a payment code), refunds (0200 processing
// code 20) and voids (02) of them, and credit-line repayments (0200 or 0220 processing code 50).
// A pre-authorisation (0100/0120) of a payment code is not something a wallet does: 12.
func (s *Server) financial(req *iso8583.Message, mti string) (*iso8583.Message, error) {
	r, ok := readRequest(req, mti)
	if !ok {
		s.count(s.responses, rcFormatError)
		return answer(req, mti, rcFormatError, nil)
	}
	advice := mti[2] == '2'
	var e *entry
	var dup bool
	typ := r.proc[:2]
	switch {
	case typ == "50" && advice:
		key := r.own
		if r.hasOrig {
			key = r.orig
		}
		key.class = classAdvice
		e, dup = s.book.repay(r, key)
	case typ == "50":
		e, dup = s.book.repay(r, r.own)
	case advice || mti[1] == '1':
		s.count(s.responses, rcInvalidTxn)
		return answer(req, mti, rcInvalidTxn, nil)
	case typ == "00" && r.pan != "":
		e, dup = s.book.pay(r, s.now())
	case typ == "20" || typ == "02":
		e, dup = s.book.refund(r, typ == "02")
	default:
		s.count(s.responses, rcInvalidTxn)
		return answer(req, mti, rcInvalidTxn, nil)
	}
	s.book.mu.Lock()
	code, auth, rrn, f63, kind := e.rec.Response, e.rec.AuthCode, e.rrn, e.f63, e.rec.Kind
	s.book.mu.Unlock()
	switch {
	case dup:
		s.counters.duplicates.Add(1)
	case code == rcApproved && kind == kindPayment:
		s.counters.payments.Add(1)
	case code == rcApproved && (kind == kindRefund || kind == kindVoid):
		s.counters.refunds.Add(1)
	case code == rcApproved && kind == kindRepayment:
		s.counters.repayments.Add(1)
	}
	s.count(s.responses, code)
	return answer(req, mti, code, map[int]string{37: rrn, 38: auth, 63: f63})
}

// answer builds the response: MTI class + 1 with the repeat digit cleared, request fields echoed
// except notEchoed, field 39 = code, and the extra fields that are set.
func answer(req *iso8583.Message, mti, code string, extra map[int]string) (*iso8583.Message, error) {
	resp := iso8583.NewMessage(specs.IssuerLink)
	resp.MTI(mti[:2] + string(mti[2]+1) + "0")
	for id := range req.GetFields() {
		if notEchoed[id] {
			continue
		}
		v, err := req.GetBytes(id)
		if err != nil {
			return nil, fmt.Errorf("echoing field %d: %w", id, err)
		}
		if err := resp.BinaryField(id, v); err != nil {
			return nil, fmt.Errorf("echoing field %d: %w", id, err)
		}
	}
	if rrn, _ := req.GetString(37); rrn != "" {
		if err := resp.Field(37, rrn); err != nil {
			return nil, err
		}
	}
	if err := resp.Field(39, code); err != nil {
		return nil, err
	}
	for id, v := range extra {
		if v == "" || (id == 37 && resp.GetFields()[37] != nil) {
			continue
		}
		if id == 38 || id == 63 {
			if code != rcApproved {
				continue
			}
		}
		if err := resp.Field(id, v); err != nil {
			return nil, fmt.Errorf("answer field %d: %w", id, err)
		}
	}
	return resp, nil
}

// NewPaymentCode issues a one-time payment code for a customer, valid for Config.CodeTTL: what the
// customer's phone shows and the terminal scans. A code pays once; reused it is declined 14, past
// its validity 54.
func (s *Server) NewPaymentCode(customer string) (string, error) {
	return s.book.issue(customer, s.now(), s.cfg.CodeTTL)
}

// Balance is a customer's stored balance, for tests.
func (s *Server) Balance(customer string) (int64, bool) {
	c, ok := s.book.customer(customer)
	return c.Balance, ok
}

// Owed is what a customer has drawn on the credit line and not repaid, for tests.
func (s *Server) Owed(customer string) (int64, bool) {
	c, ok := s.book.customer(customer)
	return c.Owed, ok
}

// Customer is a customer's account as it stands.
func (s *Server) Customer(id string) (Customer, bool) { return s.book.customer(id) }

// Records returns what the wallet remembers (payments, refunds, voids, repayments, order
// payments), oldest first; at most Config.MaxRecords.
func (s *Server) Records() []Record { return s.book.records() }
