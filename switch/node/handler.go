package node

import (
	"context"
	"errors"
	"time"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/specs"
	"github.com/poswitch/poswitch/switch/listener"
	"github.com/poswitch/poswitch/switch/translate"
	"github.com/poswitch/poswitch/switch/txn"
)

// terminalHandler turns one terminal request body into its answer body: unpack in the listener's
// dialect, translate to the canonical transaction, run the pipeline, translate the outcome back.
func (n *Node) terminalHandler(d *specs.Dialect) listener.Handler {
	return func(ctx context.Context, body []byte) []byte {
		received := time.Now()
		req := iso8583.NewMessage(d.Spec)
		if err := req.Unpack(body); err != nil {
			fe := translate.UnpackFailure(err)
			n.metrics.formatErrors.Inc()
			n.log.Warn("format error", zap.String("dialect", d.Name), zap.Int("field", fe.Field), zap.String("reason", fe.Reason))
			return n.pack(translate.FormatErrorResponse(req, fe.Field))
		}
		t, err := translate.Request(req, received)
		if err != nil {
			var fe *translate.FormatError
			errors.As(err, &fe)
			n.metrics.formatErrors.Inc()
			n.log.Warn("format error", zap.String("dialect", d.Name), zap.String("mti", t.MTI),
				zap.String("tid", t.TerminalID), zap.String("stan", t.STAN), zap.Error(err))
			return n.pack(translate.FormatErrorResponse(req, 0))
		}
		ctx, cancel := context.WithTimeout(ctx, n.requestTimeout)
		defer cancel()
		if t.Type == txn.TypeNetwork {
			return n.pack(n.networkAnswer(ctx, req, t))
		}
		// A MAC terminal's request is verified before any step sees it (keys.go); other terminals
		// pay one nil check here.
		if _, macs := n.macTerminal(t); macs && !n.checkMAC(ctx, t, req, body) {
			n.observe(t, received)
			resp, err := translate.Response(req, t)
			if err != nil {
				return n.pack(translate.FormatErrorResponse(req, 0))
			}
			return n.packAnswer(ctx, t, resp)
		}
		if t.Type == txn.TypeBatchSettlement || t.Type == txn.TypeBatchUpload {
			n.batch.handle(ctx, t)
		} else if t.Type == txn.TypeSignatureUpload {
			n.esign.handle(ctx, t)
		} else {
			n.pipeline.Process(ctx, t)
			// The answer is final: steps that hold state per transaction (in flight, reserved
			// limits) settle it now.
			for _, f := range n.finishers {
				f.Done(t)
			}
		}
		n.observe(t, received)
		resp, err := translate.Response(req, t)
		if err != nil {
			n.log.Error("building answer", zap.Stringer("txn", t), zap.Error(err))
			return n.pack(translate.FormatErrorResponse(req, 0))
		}
		return n.packAnswer(ctx, t, resp)
	}
}

// networkAnswer answers a terminal's own 0800 (sign-on, sign-off, echo, key change): the switch is
// up. A sign-on (001) or key change (101) from a terminal with a master key also rolls its working
// keys and sends them in field 62 (keys.go); other terminals (DUKPT, or a fixed TPK) get 00 alone.
func (n *Node) networkAnswer(ctx context.Context, req *iso8583.Message, t *txn.Transaction) *iso8583.Message {
	switch t.NetworkCode {
	case "001", "101":
		t.Response = txn.RCApproved
		if kt, ok := n.keyTerminal(t.TerminalID); ok && kt.TMK != "" {
			n.rollKeys(ctx, t)
		}
	case "002", "301":
		t.Response = txn.RCApproved
	default:
		t.Response = txn.RCInvalidTxn
	}
	resp, err := translate.Response(req, t)
	if err != nil {
		return translate.FormatErrorResponse(req, 0)
	}
	return resp
}

// pack packs an answer. An answer that does not pack because an echoed request field will not (it
// unpacked but is not valid for its encoding) goes without those echoes; one that still does not pack
// is logged and dropped (the terminal times out and reverses), which only a bug in a spec can cause.
func (n *Node) pack(m *iso8583.Message) []byte {
	b, err := m.Pack()
	if err != nil {
		translate.DropUnpackableEchoes(m)
		if b, err = m.Pack(); err != nil {
			n.log.Error("packing answer", zap.Error(err))
			return nil
		}
	}
	return b
}

// observe records the outcome in metrics and the log, never with card data.
func (n *Node) observe(t *txn.Transaction, received time.Time) {
	took := time.Since(received)
	n.metrics.transactions.WithLabelValues(t.Type.String(), t.Response).Inc()
	n.metrics.latency.Observe(took.Seconds())
	if ce := n.txnLog.Check(zap.InfoLevel, "transaction"); ce != nil {
		ce.Write(zap.String("type", t.Type.String()), zap.String("mti", t.MTI), zap.String("tid", t.TerminalID),
			zap.String("mid", t.MerchantID), zap.String("stan", t.STAN), zap.String("rrn", t.RRN),
			zap.String("pan", t.MaskedPAN()), zap.Int64("amount", t.Amount), zap.String("currency", t.Currency),
			zap.String("issuer", t.IssuerID), zap.String("rc", t.Response), zap.String("reason", t.Reason),
			zap.Int64("fee", t.Fee), zap.Bool("booked", t.Booked), zap.Duration("took", took))
	}
}
