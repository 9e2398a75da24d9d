package issuersim

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/specs"
)

// notEchoed are request fields a response never carries back: framing fields the response rebuilds,
// card data that must not travel further than needed, MACs that would be wrong, and the fields the
// issuer answers itself.
var notEchoed = map[int]bool{0: true, 1: true, 14: true, 35: true, 36: true, 45: true, 52: true, 55: true,
	64: true, 96: true, 128: true, 38: true, 39: true, 54: true}

// Network management information codes (field 70).
const (
	signOn    = "001"
	signOff   = "002"
	keyChange = "101"
	echoTest  = "301"
)

// reply is the framed-to-be answer to one request and what fault injection decided for it.
type reply struct {
	body  []byte        // packed answer; nil means no answer
	fate  fate          // answered, dropped, delayed or connection closed
	delay time.Duration // extra delay of a delayed answer
}

// handle answers one frame body. A nil body means no answer: unreadable, a response, deliberately
// unanswered (the magic amount) or a fault.
func (s *Server) handle(body []byte) reply {
	req := iso8583.NewMessage(specs.IssuerLink)
	if err := req.Unpack(body); err != nil {
		s.counters.badMessages.Add(1)
		s.log.Warn("issuer-sim cannot unpack request", zap.Error(err))
		return reply{}
	}
	mti, _ := req.GetMTI()
	s.countRequest(mti)
	if len(mti) != 4 || (mti[2]-'0')%2 == 1 {
		s.counters.badMessages.Add(1)
		s.log.Warn("issuer-sim ignoring message that is not a request", zap.String("mti", mti))
		return reply{}
	}
	faults := s.faults.Load()
	resp, e, err := s.respond(req, mti, faults.faults)
	if err != nil {
		s.log.Error("issuer-sim answering", zap.String("mti", mti), zap.Error(err))
		return reply{}
	}
	if resp == nil {
		return reply{}
	}
	r := reply{fate: fateAnswer}
	if faultable(mti) {
		r.fate = faults.draw()
		s.ledger.mark(e, r.fate)
		switch r.fate {
		case fateDrop:
			s.counters.dropped.Add(1)
			return r
		case fateClose:
			s.counters.closed.Add(1)
			return r
		case fateDelay:
			s.counters.delayed.Add(1)
			r.delay = faults.faults.Delay
		}
	}
	packed, err := resp.Pack()
	if err != nil {
		s.log.Error("issuer-sim packing response", zap.String("mti", mti), zap.Error(err))
		return reply{}
	}
	r.body = packed
	return r
}

// respond builds the answer to one request; the entry is the remembered request it concerns (nil for
// network management and reversals), so that fault injection can record the answer's fate on it.
func (s *Server) respond(req *iso8583.Message, mti string, faults Faults) (*iso8583.Message, *entry, error) {
	switch mti[1:3] {
	case "80":
		resp, err := s.networkManagement(req, mti, faults)
		return resp, nil, err
	case "10", "12", "20", "22":
		return s.financial(req, mti)
	case "40", "42":
		resp, err := s.reversal(req, mti)
		return resp, nil, err
	default:
		resp, err := answer(req, mti, cards.InvalidTransaction)
		return resp, nil, err
	}
}

// answer builds the response to req: MTI class +1 with the repeat digit cleared, request fields
// echoed except notEchoed, field 39 = code.
func answer(req *iso8583.Message, mti, code string) (*iso8583.Message, error) {
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
	if err := resp.Field(39, code); err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *Server) networkManagement(req *iso8583.Message, mti string, faults Faults) (*iso8583.Message, error) {
	code, _ := req.GetString(70)
	switch code {
	case signOn:
		if faults.RefuseSignOn {
			s.counters.signOnsRefused.Add(1)
			return answer(req, mti, declineSignOn)
		}
		s.counters.signOns.Add(1)
	case signOff:
		s.counters.signOffs.Add(1)
	case echoTest:
		s.counters.echoes.Add(1)
	case keyChange:
	default:
		return answer(req, mti, cards.InvalidTransaction)
	}
	return answer(req, mti, cards.Approved)
}

// request is what the simulator reads from a financial request, advice or void.
type request struct {
	mti, proc, pan, currency, expiry, rrn string
	amount                                int64
	own                                   txnKey // the message's own link identity
	original                              string // field 90 as received
	orig                                  txnKey // the original field 90 names, when hasOrig
	hasOrig                               bool
}

// linkKey is a message's own identity: fields 11, 7, 32 and 41.
func linkKey(req *iso8583.Message) txnKey {
	stan, _ := req.GetString(11)
	tx, _ := req.GetString(7)
	acq, _ := req.GetString(32)
	tid, _ := req.GetString(41)
	return txnKey{class: classLink, stan: stan, transmission: tx, acquirer: strings.TrimLeft(acq, "0"), terminal: tid}
}

// originalKey is the identity field 90 names (ISO 8583:1987 original data elements: MTI 4, STAN 6,
// transmission date and time 10, acquirer 11, forwarding institution 11) at the request's terminal.
func originalKey(req *iso8583.Message) (txnKey, string, bool) {
	orig, _ := req.GetString(90)
	if len(orig) != 42 {
		return txnKey{}, orig, false
	}
	tid, _ := req.GetString(41)
	return txnKey{class: classLink, stan: orig[4:10], transmission: orig[10:20],
		acquirer: strings.TrimLeft(orig[20:31], "0"), terminal: tid}, orig, true
}

// adviceKey is an advice's identity, the same on every repeat even when each repeat travels with a
// new link STAN: the original field 90 names, else the retrieval reference number, else the advice's
// own link identity.
func adviceKey(r *request) txnKey {
	class := classAuthAdvice
	if r.mti[1] == '2' {
		class = classFinAdvice
	}
	var k txnKey
	switch {
	case r.hasOrig:
		k = r.orig
	case r.rrn != "":
		k = txnKey{stan: "RRN", transmission: r.rrn, terminal: r.own.terminal}
	default:
		k = r.own
	}
	k.class = class
	return k
}

// expiryOf reads the card's expiry from field 14 or from track 2 after the separator.
func expiryOf(req *iso8583.Message) string {
	if e, _ := req.GetString(14); e != "" {
		return e
	}
	t2, _ := req.GetString(35)
	if i := strings.IndexAny(t2, "=D"); i >= 0 && len(t2) >= i+5 {
		return t2[i+1 : i+5]
	}
	return ""
}

func panOf(req *iso8583.Message) string {
	if pan, _ := req.GetString(2); pan != "" {
		return pan
	}
	t2, _ := req.GetString(35)
	if i := strings.IndexAny(t2, "=D"); i > 0 {
		return t2[:i]
	}
	return ""
}

// readRequest reads a financial request or advice; false means a format error (30).
func readRequest(req *iso8583.Message, mti string) (*request, bool) {
	r := &request{mti: mti, pan: panOf(req), expiry: expiryOf(req), own: linkKey(req)}
	r.proc, _ = req.GetString(3)
	r.currency, _ = req.GetString(49)
	r.rrn, _ = req.GetString(37)
	r.rrn = strings.TrimSpace(r.rrn)
	r.orig, r.original, r.hasOrig = originalKey(req)
	if amountText, _ := req.GetString(4); amountText != "" {
		amount, err := strconv.ParseInt(amountText, 10, 64)
		if err != nil || amount < 0 {
			return nil, false
		}
		r.amount = amount
	}
	if r.pan == "" || len(r.proc) != 6 || (r.original != "" && !r.hasOrig) {
		return nil, false
	}
	return r, true
}

// financial answers 0100 pre-authorisations and 0200 financial requests (purchase, cash, cashback,
// refund, void, balance inquiry, bill payment) and the 0120/0220 advices, with their repeats.
func (s *Server) financial(req *iso8583.Message, mti string) (*iso8583.Message, *entry, error) {
	r, ok := readRequest(req, mti)
	if !ok {
		resp, err := s.financialAnswer(req, mti, outcome{code: formatError})
		return resp, nil, err
	}
	var (
		out          outcome
		chip         *chipRequest // field 55 of a request, when this issuer checks chip data
		chipVerified bool
	)
	if isAdvice(mti) {
		s.counters.advices.Add(1)
		out = s.ledger.advise(r, adviceKey(r))
	} else {
		// The cryptogram and the PIN are verified outside the ledger lock (they are HSM calls). The
		// cryptogram first, as a card is authenticated before its holder; the PIN only for a request
		// not answered before, so that a retransmission does not count as another wrong try.
		chip = s.readChip(req, r.pan)
		chipCode := chip.verify(context.Background(), s.cfg.EMV)
		chipVerified = chip != nil && chipCode == ""
		s.countARQC(chip, chipCode)
		pinCode := ""
		if !s.ledger.known(r.own) {
			pinCode = chipCode
			if pinCode == "" {
				pinCode = s.checkPIN(req, r.pan)
			}
		}
		var noResponse bool
		out, noResponse = s.ledger.decide(r, pinCode, s.now())
		if noResponse {
			s.counters.unanswered.Add(1)
			return nil, nil, nil
		}
	}
	if out.dup {
		s.counters.duplicates.Add(1)
	}
	resp, err := s.financialAnswer(req, mti, out)
	if err == nil {
		err = s.withICC(resp, chip, out.code, chipVerified)
	}
	return resp, out.e, err
}

func (s *Server) financialAnswer(req *iso8583.Message, mti string, out outcome) (*iso8583.Message, error) {
	resp, err := answer(req, mti, out.code)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		id int
		v  string
	}{{37, out.rrn}, {38, out.authCode}, {54, out.addl}} {
		if f.v == "" {
			continue
		}
		if err := resp.Field(f.id, f.v); err != nil {
			return nil, fmt.Errorf("answer field %d: %w", f.id, err)
		}
	}
	s.countResponse(out.code)
	return resp, nil
}

// reversal answers 0400/0420 (and their repeats). It always approves: a reversal of a transaction the
// issuer never saw, or already reversed, is acknowledged and changes nothing. The original is the one
// field 90 names at the request's terminal (field 41); without field 90, the reversal's own 11, 7 and
// 32 name it, as a terminal talking to the simulator directly may send.
func (s *Server) reversal(req *iso8583.Message, mti string) (*iso8583.Message, error) {
	s.counters.reversals.Add(1)
	key, _, ok := originalKey(req)
	if !ok {
		key = linkKey(req)
	}
	known, restored := s.ledger.reverse(key)
	switch {
	case !known:
		s.counters.reversalsOfUnknown.Add(1)
	case restored:
		s.counters.reversalsApplied.Add(1)
	}
	return answer(req, mti, cards.Approved)
}
