package node

import (
	"context"
	"errors"
	"strings"

	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/termkeys"
	"github.com/poswitch/poswitch/switch/txn"
)

// newKeyManager collects the terminals with a master key or a MAC method. It returns nil when there
// are none, so the hot path of an estate without key management does no key work at all. A
// terminal that MACs needs a master key (its MAC key arrives under it at sign-on), and the HSM must
// generate, export and MAC (both the in-process HSM and `poswitch hsm serve` do).
func newKeyManager(ctx context.Context, cfg *config.Config, h hsm.PINTranslator, db termkeys.DB) (*termkeys.Manager, error) {
	var terminals []termkeys.Terminal
	for i, t := range cfg.Terminals {
		if t.TMK == "" && t.MAC == "" {
			continue
		}
		if t.TMK == "" {
			return nil, cfg.ErrorAt("terminals", i, "mac", "terminal %s MACs with %s but has no tmk: its MAC key is sent under the master key at sign-on", t.ID, t.MAC)
		}
		if _, ok := h.(termkeys.HSM); !ok {
			return nil, cfg.ErrorAt("terminals", i, "tmk", "terminal %s has a master key, which needs an HSM that generates, exports and MACs keys; "+
				"configure the in-process HSM (hsm.lmk_file or hsm.lmk_env) or hsm.address", t.ID)
		}
		if describer, ok := h.(KeyDescriber); ok {
			info, err := describer.DescribeKey(ctx, hsm.KeyBlock(t.TMK))
			if err != nil {
				return nil, cfg.ErrorAt("terminals", i, "tmk", "the HSM refuses this key block: %v", err)
			}
			if info.Usage != hsm.UsageKEK && info.Usage != hsm.UsageKBPK || info.Algorithm != hsm.AES {
				return nil, cfg.ErrorAt("terminals", i, "tmk", "key usage is %s (algorithm %c), want an AES K0 or K1 key-encryption key", info.Usage, info.Algorithm)
			}
		}
		terminals = append(terminals, termkeys.Terminal{ID: t.ID, TMK: hsm.KeyBlock(t.TMK), MAC: t.MAC,
			PINFormat: hsm.PINFormat(t.PINFormat)})
	}
	if len(terminals) == 0 {
		return nil, nil
	}
	return termkeys.NewManager(h.(termkeys.HSM), termkeys.NewStore(db), terminals), nil
}

// isNetworkClass tells 08xx messages (sign-on, echo, key change, e-signature upload): they are not
// MACed, in either direction, so a terminal can always sign on to get its MAC key.
func isNetworkClass(mti string) bool { return strings.HasPrefix(mti, "08") }

// macTerminal returns the key settings of a terminal whose financial messages are MACed.
func (n *Node) macTerminal(t *txn.Transaction) (termkeys.Terminal, bool) {
	if n.keys == nil || isNetworkClass(t.MTI) {
		return termkeys.Terminal{}, false
	}
	kt, ok := n.keys.Terminal(t.TerminalID)
	return kt, ok && kt.MAC != ""
}

// checkMAC verifies a MAC terminal's request before anything else happens to it. A missing or bad
// MAC, or no MAC key yet, ends the transaction with 63; keys or HSM out of reach end it with 96.
func (n *Node) checkMAC(ctx context.Context, t *txn.Transaction, req *iso8583.Message, body []byte) bool {
	err := n.keys.VerifyRequest(ctx, t.TerminalID, req, body)
	if err == nil {
		return true
	}
	switch {
	case errors.Is(err, termkeys.ErrNoTAK), errors.Is(err, termkeys.ErrMACMissing), errors.Is(err, termkeys.ErrMACMismatch):
		t.End(txn.RCSecurityViolation, err.Error())
	default:
		t.End(txn.RCSystemError, "checking the MAC: "+err.Error())
	}
	n.log.Warn("MAC refused", zap.String("tid", t.TerminalID), zap.String("mti", t.MTI), zap.String("stan", t.STAN),
		zap.String("rc", t.Response), zap.Error(err))
	return false
}

// packAnswer packs an answer, MACed under the terminal's TAK when the terminal MACs and has one.
func (n *Node) packAnswer(ctx context.Context, t *txn.Transaction, resp *iso8583.Message) []byte {
	if _, ok := n.macTerminal(t); !ok {
		return n.pack(resp)
	}
	b, err := n.keys.MACAnswer(ctx, t.TerminalID, resp)
	if err != nil {
		if !errors.Is(err, termkeys.ErrNoTAK) {
			n.log.Error("MACing the answer", zap.String("tid", t.TerminalID), zap.String("stan", t.STAN), zap.Error(err))
		}
		resp.UnsetField(termkeys.MACField(resp))
		return n.pack(resp)
	}
	return b
}

// rollKeys answers a sign-on or key change from a terminal with a master key: fresh working keys
// in field 62. A failure to make or keep them is 96 and the terminal keeps its old keys.
func (n *Node) rollKeys(ctx context.Context, t *txn.Transaction) {
	w, err := n.keys.RollKeys(ctx, t.TerminalID, t.NetworkCode)
	if err != nil {
		n.log.Error("rolling terminal keys", zap.String("tid", t.TerminalID), zap.Error(err))
		t.End(txn.RCSystemError, "rolling the terminal's keys")
		return
	}
	t.WorkingKeys = w.String()
	t.Response = txn.RCApproved
	n.log.Info("terminal keys rolled", zap.String("tid", t.TerminalID), zap.String("code", t.NetworkCode),
		zap.String("tpk_kcv", string(w.TPKKCV)), zap.String("tak_kcv", string(w.TAKKCV)))
}

// keyTerminal returns the key settings of a terminal with a master key or a MAC method.
func (n *Node) keyTerminal(tid string) (termkeys.Terminal, bool) {
	if n.keys == nil {
		return termkeys.Terminal{}, false
	}
	return n.keys.Terminal(tid)
}
