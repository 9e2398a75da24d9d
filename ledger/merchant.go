package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// MerchantSettings is a merchant's row in the ledger: fee rule, payout account and delay.
type MerchantSettings struct {
	ID                string
	Name              string
	FeeBP             int64    // basis points; 0 means the default 60 unless FeeBPSet
	FeeBPSet          bool     // FeeBP is explicit (lets a merchant have a zero fee)
	Rounding          Rounding // "" means half-up
	RefundsReturnFee  bool     // a refund gives back the proportional fee
	FeeCap            int64    // minor units; 0 means no cap
	SettlementAccount string   // the merchant's own bank account (一清: paid straight to it)
	PayoutDelayDays   int      // value date = business date + T+n; 0 means the default 1 unless PayoutDelaySet
	PayoutDelaySet    bool
}

// defaultMerchant is used for a merchant the ledger has no row for.
func defaultMerchant(id string) MerchantSettings {
	return MerchantSettings{ID: id, FeeBP: DefaultFeeBP, FeeBPSet: true, Rounding: HalfUp, PayoutDelayDays: 1, PayoutDelaySet: true}
}

func (m MerchantSettings) normalized() (MerchantSettings, error) {
	if m.ID == "" {
		return m, fmt.Errorf("merchant settings: empty id")
	}
	if !m.FeeBPSet && m.FeeBP == 0 {
		m.FeeBP = DefaultFeeBP
	}
	if m.FeeBP < 0 || m.FeeBP > 10000 {
		return m, fmt.Errorf("merchant %s: fee %d bp outside 0..10000", m.ID, m.FeeBP)
	}
	if m.Rounding == "" {
		m.Rounding = HalfUp
	}
	if !m.Rounding.valid() {
		return m, fmt.Errorf("merchant %s: unknown rounding %q (half_up, half_even, down, up)", m.ID, m.Rounding)
	}
	if m.FeeCap < 0 {
		return m, fmt.Errorf("merchant %s: negative fee cap", m.ID)
	}
	if !m.PayoutDelaySet && m.PayoutDelayDays == 0 {
		m.PayoutDelayDays = 1
	}
	if m.PayoutDelayDays < 0 || m.PayoutDelayDays > 30 {
		return m, fmt.Errorf("merchant %s: payout delay T+%d outside 0..30", m.ID, m.PayoutDelayDays)
	}
	m.FeeBPSet, m.PayoutDelaySet = true, true
	return m, nil
}

func (m MerchantSettings) feeRule() FeeRule {
	return FeeRule{BP: m.FeeBP, Rounding: m.Rounding, Cap: m.FeeCap}
}

// UpsertMerchant writes a merchant's settings (the switch syncs its configured merchants at start).
// Writers pick changes up within WriterConfig.MerchantTTL.
func UpsertMerchant(ctx context.Context, pool *pgxpool.Pool, m MerchantSettings) error {
	m, err := m.normalized()
	if err != nil {
		return err
	}
	var feeCap any
	if m.FeeCap > 0 {
		feeCap = m.FeeCap
	}
	_, err = pool.Exec(ctx, `
INSERT INTO merchant (id, name, fee_bp, rounding, refunds_return_fee, fee_cap, settlement_account, payout_delay_days, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, fee_bp = EXCLUDED.fee_bp, rounding = EXCLUDED.rounding,
    refunds_return_fee = EXCLUDED.refunds_return_fee, fee_cap = EXCLUDED.fee_cap,
    settlement_account = EXCLUDED.settlement_account, payout_delay_days = EXCLUDED.payout_delay_days, updated_at = now()
WHERE (merchant.name, merchant.fee_bp, merchant.rounding, merchant.refunds_return_fee, merchant.fee_cap,
       merchant.settlement_account, merchant.payout_delay_days)
      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.fee_bp, EXCLUDED.rounding, EXCLUDED.refunds_return_fee,
       EXCLUDED.fee_cap, EXCLUDED.settlement_account, EXCLUDED.payout_delay_days)`,
		m.ID, m.Name, m.FeeBP, string(m.Rounding), m.RefundsReturnFee, feeCap, m.SettlementAccount, m.PayoutDelayDays)
	if err != nil {
		return fmt.Errorf("upserting merchant %s: %w", m.ID, err)
	}
	return nil
}
