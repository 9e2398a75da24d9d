package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/txn"
)

// PANDigester gives the keyed hash of a PAN that the ledger stores for lookups (the HSM holds the key).
type PANDigester interface {
	PANDigest(pan string) []byte
}

// LedgerWriter is the ledger's group-commit writer as the book steps use it.
type LedgerWriter interface {
	Book(ctx context.Context, b ledger.Booking) (ledger.Result, error)
}

// ledgerBooker is the book steps' view of the ledger writer: it maps the canonical transaction to a
// ledger booking. The ledger never sees a clear PAN: only the masked form and the keyed digest.
type ledgerBooker struct {
	writer LedgerWriter
	digest PANDigester
	// billers are the wallet billers (channels.billers) by ID: a bill payment to one is owed to the
	// wallet (wallet_payable) with the biller's fee, not to the acceptor.
	billers map[string]billerBooking
}

// billerBooking is what the ledger needs of a configured biller.
type billerBooking struct {
	wallet string
	feeBP  int64
}

// billerBookings are the configured billers as the ledger booker takes them.
func billerBookings(cfg *config.Config) map[string]billerBooking {
	m := map[string]billerBooking{}
	for _, b := range cfg.Channels.Billers {
		m[b.ID] = billerBooking{wallet: b.Wallet, feeBP: int64(*b.FeeBP)}
	}
	return m
}

// billers are the configured billers as the pipeline's biller steps take them: ID → wallet issuer.
func billers(cfg *config.Config) pipeline.Billers {
	m := pipeline.Billers{}
	for _, b := range cfg.Channels.Billers {
		m[b.ID] = b.Wallet
	}
	return m
}

// kinds maps each transaction type to its ledger kind. A terminal's offline sale (0220 without
// field 90) is a purchase; a pre-authorisation advice (0120) a pre-authorisation.
var kinds = map[txn.Type]ledger.Kind{
	txn.TypePurchase:    ledger.Purchase,
	txn.TypePreAuth:     ledger.PreAuth,
	txn.TypeCompletion:  ledger.Completion,
	txn.TypeRefund:      ledger.Refund,
	txn.TypeVoid:        ledger.Void,
	txn.TypeBillPayment: ledger.BillPayment,
	txn.TypeReversal:    ledger.Reversal,
}

// types is kinds the other way round, for reading entries back.
var types = map[ledger.Kind]txn.Type{
	ledger.Purchase: txn.TypePurchase, ledger.PreAuth: txn.TypePreAuth, ledger.Completion: txn.TypeCompletion,
	ledger.Refund: txn.TypeRefund, ledger.Void: txn.TypeVoid, ledger.BillPayment: txn.TypeBillPayment,
	ledger.Reversal: txn.TypeReversal,
}

// BookingOf is the ledger booking of a transaction: its identity, the original field 90 names
// (reversals, voids, completions, refunds), and the issuer trace the send step recorded.
func BookingOf(t *txn.Transaction) (ledger.Booking, error) {
	kind, ok := kinds[t.Type]
	if !ok {
		return ledger.Booking{}, fmt.Errorf("no ledger kind for %s", t.Type)
	}
	bk := ledger.Booking{
		Key: t.Key(), Kind: kind, Merchant: t.MerchantID, Terminal: t.TerminalID, Issuer: t.IssuerID,
		Currency: t.Currency, Amount: t.Amount, STAN: t.STAN, RRN: t.RRN, AuthCode: t.AuthCode,
		EntryMode: t.EntryMode, At: t.Received, IssuerSTAN: t.IssuerSTAN, IssuerTime: t.IssuerTime,
	}
	if t.PAN != "" {
		bk.PANMasked = t.MaskedPAN()
	}
	switch t.Type {
	case txn.TypeReversal, txn.TypeVoid, txn.TypeCompletion, txn.TypeRefund:
		bk.OriginalKey = t.OriginalKey()
	}
	return bk, nil
}

func (b ledgerBooker) Book(ctx context.Context, t *txn.Transaction) (pipeline.Booked, error) {
	bk, err := BookingOf(t)
	if err != nil {
		return pipeline.Booked{}, err
	}
	if b.digest != nil && t.PAN != "" {
		bk.PANHash = b.digest.PANDigest(t.PAN)
	}
	if bb, ok := b.billers[t.BillerID]; ok && t.Type == txn.TypeBillPayment {
		// The acceptor only collects a wallet repayment: the money is owed to the wallet.
		bk.Payee, bk.PayeeFeeBP, bk.Merchant = bb.wallet, bb.feeBP, ""
	}
	res, err := b.writer.Book(ctx, bk)
	if errors.Is(err, ledger.ErrConflict) {
		return pipeline.Booked{}, fmt.Errorf("%w: %v", pipeline.ErrBookingConflict, err)
	}
	if err != nil {
		return pipeline.Booked{}, err
	}
	return pipeline.Booked{Status: string(res.Status), Refusal: refusalOf(res.Status, res.NotFound, res.AlreadyCancelled, res.Reason),
		Reason: res.Reason, Fee: res.Fee, Duplicate: res.Duplicate}, nil
}

// refusalOf sorts a ledger refusal for the response code. The ledger's rules say it in words; the
// amount rules are the refund's "exceeds what is left" and the completion's "above the hold".
func refusalOf(status ledger.Status, notFound, cancelled bool, reason string) pipeline.Refusal {
	switch {
	case status != ledger.StatusRefused:
		return pipeline.RefusalNone
	case notFound:
		return pipeline.RefusalNoOriginal
	case cancelled || strings.Contains(reason, "lapsed"):
		return pipeline.RefusalCancelled
	case strings.Contains(reason, "exceeds what is left") || strings.Contains(reason, "above the hold"):
		return pipeline.RefusalAmount
	default:
		return pipeline.RefusalOther
	}
}

// ledgerRecords answers the steps' questions about transactions already in the ledger (a repeat's
// stored answer, a refund's original, the issuer trace of what a reversal cancels). It reads the
// base tables, so q is the application role's pool.
type ledgerRecords struct {
	q ledger.Querier
}

func (r ledgerRecords) Record(ctx context.Context, key string) (pipeline.Recorded, bool, error) {
	e, ok, err := ledger.EntryOf(ctx, r.q, key)
	if err != nil || !ok {
		return pipeline.Recorded{}, ok, err
	}
	return pipeline.Recorded{
		Kind: types[e.Kind], Status: string(e.Status), Refusal: refusalOf(e.Status, e.NotFound, e.AlreadyCancelled, e.Reason),
		Issuer: e.Issuer, IssuerSTAN: e.IssuerSTAN, IssuerTime: e.IssuerTime, Merchant: e.Merchant, Currency: e.Currency,
		Amount: e.Amount, Fee: e.Fee, RRN: e.RRN, AuthCode: e.AuthCode, PANMasked: e.PANMasked,
		Cancelled: e.ConsumedBy != "", Refundable: e.Refundable(),
		Cycle: e.Cycle, CycleClosed: e.CycleClosed, At: e.At, Payee: e.Payee,
	}, true, nil
}

// noRecords is the ledger reader of a node given none: it knows no transaction and cannot check a
// refund's original.
type noRecords struct{}

var errNoLedgerReader = errors.New("node has no ledger reader (Options.Ledger)")

func (noRecords) Record(context.Context, string) (pipeline.Recorded, bool, error) {
	return pipeline.Recorded{}, false, errNoLedgerReader
}
