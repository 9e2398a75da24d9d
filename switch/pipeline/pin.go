package pipeline

import (
	"context"

	"github.com/poswitch/poswitch/switch/txn"
)

// PINTranslator re-encrypts a terminal's PIN block under the issuer link's zone key, inside the HSM.
type PINTranslator interface {
	TranslateForIssuer(ctx context.Context, t *txn.Transaction) ([]byte, error)
}

// PIN translates the PIN block, if the request has one, from the terminal's key to the issuer's zone
// key. A key or crypto failure is 88; the clear PIN never exists outside the HSM.
type PIN struct {
	HSM PINTranslator
}

func (PIN) Name() string { return "pin" }

func (s PIN) Run(ctx context.Context, t *txn.Transaction) {
	if len(t.PINBlock) == 0 {
		return
	}
	if s.HSM == nil {
		t.End(txn.RCCryptoFailure, "no HSM configured for PIN transactions")
		return
	}
	block, err := s.HSM.TranslateForIssuer(ctx, t)
	if err != nil {
		t.End(txn.RCCryptoFailure, "PIN translation failed")
		return
	}
	t.PINBlock = block
}
