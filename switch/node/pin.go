package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/txn"
)

// KeyDescriber authenticates a key block and tells its usage; the in-process HSM has it, and Open
// uses it to refuse a configuration whose keys the HSM would refuse anyway, at start, by line.
type KeyDescriber interface {
	DescribeKey(ctx context.Context, kb hsm.KeyBlock) (hsm.KeyInfo, error)
}

type terminalPIN struct {
	tpk, bdk hsm.KeyBlock
	format   hsm.PINFormat
}

type issuerPIN struct {
	zpk    hsm.KeyBlock
	format hsm.PINFormat
}

// pinTranslator is the pin step's view of the HSM: it knows which key each terminal and issuer link
// uses, and asks the HSM to re-encrypt the block. The clear PIN exists only inside the HSM.
type pinTranslator struct {
	hsm       hsm.PINTranslator
	terminals map[string]terminalPIN
	issuers   map[string]issuerPIN
	// working is the TPK each terminal with a master key received at its last sign-on; it replaces
	// the configured tpk. Nil when no terminal has a master key.
	working workingTPKs
}

// workingTPKs tells a terminal's current TPK (termkeys.Manager); found is false before its first
// sign-on and for terminals without a master key.
type workingTPKs interface {
	CurrentTPK(ctx context.Context, tid string) (kb hsm.KeyBlock, found bool, err error)
}

var errNoPINKey = errors.New("no PIN key configured")

func (p *pinTranslator) TranslateForIssuer(ctx context.Context, t *txn.Transaction) ([]byte, error) {
	term, ok := p.terminals[t.TerminalID]
	if ok && term.bdk == "" && p.working != nil {
		tpk, found, err := p.working.CurrentTPK(ctx, t.TerminalID)
		if err != nil {
			return nil, fmt.Errorf("terminal %s: %w", t.TerminalID, err)
		}
		if found {
			term.tpk = tpk
		}
	}
	if !ok || (term.tpk == "" && term.bdk == "") {
		return nil, fmt.Errorf("terminal %s: %w", t.TerminalID, errNoPINKey)
	}
	is, ok := p.issuers[t.IssuerID]
	if !ok || is.zpk == "" {
		return nil, fmt.Errorf("issuer %s: %w", t.IssuerID, errNoPINKey)
	}
	card := hsm.Card{PAN: t.PAN}
	if term.bdk != "" {
		if len(t.KSN) == 0 {
			return nil, fmt.Errorf("terminal %s is a DUKPT terminal but sent no KSN", t.TerminalID)
		}
		return p.hsm.TranslatePINFromDUKPT(ctx, hsm.TranslateDUKPT{BDK: term.bdk, KSN: t.KSN,
			SourceFormat: term.format, PINBlock: t.PINBlock, DestKey: is.zpk, DestFormat: is.format, Card: card})
	}
	return p.hsm.TranslatePIN(ctx, hsm.TranslatePIN{SourceKey: term.tpk, SourceFormat: term.format,
		PINBlock: t.PINBlock, DestKey: is.zpk, DestFormat: is.format, Card: card})
}

// newPINTranslator collects the configuration's keys and, when the HSM can describe keys, checks
// each one has the usage its place needs (P0 for TPKs and ZPKs, B0 for BDKs).
func newPINTranslator(ctx context.Context, cfg *config.Config, h hsm.PINTranslator) (*pinTranslator, error) {
	p := &pinTranslator{hsm: h, terminals: map[string]terminalPIN{}, issuers: map[string]issuerPIN{}}
	describer, _ := h.(KeyDescriber)
	check := func(section string, i int, key string, kb string, want hsm.KeyUsage) error {
		if kb == "" || describer == nil {
			return nil
		}
		info, err := describer.DescribeKey(ctx, hsm.KeyBlock(kb))
		if err != nil {
			return cfg.ErrorAt(section, i, key, "the HSM refuses this key block: %v", err)
		}
		if info.Usage != want {
			return cfg.ErrorAt(section, i, key, "key usage is %s, want %s", info.Usage, want)
		}
		return nil
	}
	for i, t := range cfg.Terminals {
		if err := check("terminals", i, "tpk", t.TPK, hsm.UsagePIN); err != nil {
			return nil, err
		}
		if err := check("terminals", i, "bdk", t.BDK, hsm.UsageBDK); err != nil {
			return nil, err
		}
		p.terminals[t.ID] = terminalPIN{tpk: hsm.KeyBlock(t.TPK), bdk: hsm.KeyBlock(t.BDK), format: hsm.PINFormat(t.PINFormat)}
	}
	for i, is := range cfg.Issuers {
		if err := check("issuers", i, "zpk", is.ZPK, hsm.UsagePIN); err != nil {
			return nil, err
		}
		p.issuers[is.ID] = issuerPIN{zpk: hsm.KeyBlock(is.ZPK), format: hsm.PINFormat(is.PINFormat)}
	}
	return p, nil
}
