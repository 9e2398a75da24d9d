package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/txn"
)

// PANDigester gives the keyed hash of a PAN that the ledger stores for lookups (the HSM holds the key).
type PANDigester interface {
	PANDigest(pan string) []byte
}

// ledgerBooker is the book step's view of the ledger writer: it maps the canonical transaction to a
// ledger booking. The ledger never sees a clear PAN: only the masked form and the keyed digest.
type ledgerBooker struct {
	writer *ledger.Writer
	digest PANDigester
}

var kinds = map[txn.Type]ledger.Kind{
	txn.TypePurchase:    ledger.Purchase,
	txn.TypePreAuth:     ledger.PreAuth,
	txn.TypeCompletion:  ledger.Completion,
	txn.TypeRefund:      ledger.Refund,
	txn.TypeVoid:        ledger.Void,
	txn.TypeBillPayment: ledger.BillPayment,
	txn.TypeReversal:    ledger.Reversal,
}

func (b ledgerBooker) Book(ctx context.Context, t *txn.Transaction) (pipeline.Booked, error) {
	kind, ok := kinds[t.Type]
	if !ok {
		return pipeline.Booked{}, fmt.Errorf("no ledger kind for %s", t.Type)
	}
	bk := ledger.Booking{
		Key: t.Key(), Kind: kind, Merchant: t.MerchantID, Terminal: t.TerminalID, Issuer: t.IssuerID,
		Currency: t.Currency, Amount: t.Amount, STAN: t.STAN, RRN: t.RRN, AuthCode: t.AuthCode,
		EntryMode: t.EntryMode, PANMasked: t.MaskedPAN(), At: t.Received,
	}
	if b.digest != nil && t.PAN != "" {
		bk.PANHash = b.digest.PANDigest(t.PAN)
	}
	res, err := b.writer.Book(ctx, bk)
	if errors.Is(err, ledger.ErrConflict) {
		return pipeline.Booked{}, fmt.Errorf("%w: %v", pipeline.ErrBookingConflict, err)
	}
	if err != nil {
		return pipeline.Booked{}, err
	}
	return pipeline.Booked{Fee: res.Fee, Duplicate: res.Duplicate}, nil
}
