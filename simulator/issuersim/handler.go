package issuersim

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

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

var rrnSeq atomic.Uint64

// handle answers one frame body; nil means no answer (unreadable, a response, or deliberately unanswered).
func (s *Server) handle(body []byte) []byte {
	req := iso8583.NewMessage(specs.IssuerLink)
	if err := req.Unpack(body); err != nil {
		s.counters.badMessages.Add(1)
		s.log.Warn("issuer-sim cannot unpack request", zap.Error(err))
		return nil
	}
	mti, _ := req.GetMTI()
	s.countRequest(mti)
	if len(mti) != 4 || (mti[2]-'0')%2 == 1 {
		s.counters.badMessages.Add(1)
		s.log.Warn("issuer-sim ignoring message that is not a request", zap.String("mti", mti))
		return nil
	}
	resp, err := s.respond(req, mti)
	if err != nil {
		s.log.Error("issuer-sim answering", zap.String("mti", mti), zap.Error(err))
		return nil
	}
	if resp == nil {
		return nil
	}
	packed, err := resp.Pack()
	if err != nil {
		s.log.Error("issuer-sim packing response", zap.String("mti", mti), zap.Error(err))
		return nil
	}
	return packed
}

func (s *Server) respond(req *iso8583.Message, mti string) (*iso8583.Message, error) {
	switch mti[1:3] {
	case "80":
		return s.networkManagement(req, mti)
	case "10", "20":
		return s.financial(req, mti)
	case "40", "42":
		return s.reversal(req, mti)
	default:
		return answer(req, mti, cards.InvalidTransaction)
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

func (s *Server) networkManagement(req *iso8583.Message, mti string) (*iso8583.Message, error) {
	code, _ := req.GetString(70)
	switch code {
	case signOn:
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

func keyOf(req *iso8583.Message) txnKey {
	stan, _ := req.GetString(11)
	tx, _ := req.GetString(7)
	acq, _ := req.GetString(32)
	tid, _ := req.GetString(41)
	return txnKey{stan: stan, transmission: tx, acquirer: strings.TrimLeft(acq, "0"), terminal: tid}
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

// financial answers 0100 (authorization, no debit), 0200 (purchase, refund, balance inquiry) and the
// 0120/0220 advices.
func (s *Server) financial(req *iso8583.Message, mti string) (*iso8583.Message, error) {
	proc, _ := req.GetString(3)
	amountText, _ := req.GetString(4)
	currency, _ := req.GetString(49)
	pan := panOf(req)
	amount, err := strconv.ParseInt(amountText, 10, 64)
	if amountText == "" {
		amount, err = 0, nil
	}
	if err != nil || pan == "" || len(proc) != 6 {
		return s.financialAnswer(req, mti, "30", "") // format error
	}
	key := keyOf(req)
	txnType := proc[:2]
	var a authorization
	switch {
	case mti[2] == '2': // advice: the acquirer already approved; book it
		if txnType == "00" {
			s.ledger.credit(pan, -amount)
		}
		return s.financialAnswer(req, mti, cards.Approved, "")
	case txnType == "31": // balance inquiry
		bal, ok := s.ledger.balance(pan)
		if !ok {
			return s.financialAnswer(req, mti, cards.InvalidCardNumber, "")
		}
		resp, err := s.financialAnswer(req, mti, cards.Approved, "")
		if err != nil {
			return nil, err
		}
		acct := s.ledger.accounts[pan].card.Currency
		if err := resp.Field(54, fmt.Sprintf("0002%sC%012d", acct, bal)); err != nil {
			return nil, err
		}
		return resp, nil
	case txnType == "20": // refund: credit the account
		var dup bool
		a, dup, _ = s.ledger.authorizeOnce(key, pan, 0, currency, expiryOf(req), false, s.now())
		if dup {
			s.counters.duplicates.Add(1)
		} else if a.code == cards.Approved {
			s.ledger.credit(pan, amount)
		}
	case txnType == "00" || txnType == "01" || txnType == "09": // purchase, cash, purchase with cashback
		if code := s.checkPIN(req, pan); code != "" {
			return s.financialAnswer(req, mti, code, "")
		}
		var dup, noResponse bool
		a, dup, noResponse = s.ledger.authorizeOnce(key, pan, amount, currency, expiryOf(req), mti[1] == '2', s.now())
		if noResponse {
			s.counters.unanswered.Add(1)
			return nil, nil
		}
		if dup {
			s.counters.duplicates.Add(1)
		}
	default:
		return s.financialAnswer(req, mti, cards.InvalidTransaction, "")
	}
	return s.financialAnswer(req, mti, a.code, a.authCode)
}

func (s *Server) financialAnswer(req *iso8583.Message, mti, code, authCode string) (*iso8583.Message, error) {
	resp, err := answer(req, mti, code)
	if err != nil {
		return nil, err
	}
	if rrn, _ := req.GetString(37); rrn == "" {
		if err := resp.Field(37, fmt.Sprintf("%012d", rrnSeq.Add(1)%1_000_000_000_000)); err != nil {
			return nil, err
		}
	}
	if authCode != "" {
		if err := resp.Field(38, authCode); err != nil {
			return nil, err
		}
	}
	s.countResponse(code)
	return resp, nil
}

// reversal answers 0400/0420 (and their repeats). It always approves: a reversal of a transaction the
// issuer never saw, or already reversed, is acknowledged and changes nothing.
func (s *Server) reversal(req *iso8583.Message, mti string) (*iso8583.Message, error) {
	s.counters.reversals.Add(1)
	key := keyOf(req)
	if orig, _ := req.GetString(90); len(orig) == 42 {
		key = txnKey{stan: orig[4:10], transmission: orig[10:20], acquirer: strings.TrimLeft(orig[20:31], "0"),
			terminal: key.terminal}
	}
	if s.ledger.reverse(key) {
		s.counters.reversalsApplied.Add(1)
	}
	return answer(req, mti, cards.Approved)
}
