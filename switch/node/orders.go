package node

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/pipeline"
	"github.com/poswitch/poswitch/switch/qrorder"
)

// openOrderDesk builds the merchant-presented QR order desk and opens its notification endpoint
// when channels.orders.notify_address is set (nil otherwise: the order step answers 12). Every
// wallet issuer needs its notify_key, and the HSM must verify MACs (the in-process HSM does).
func openOrderDesk(cfg *config.Config, pool *pgxpool.Pool, booker pipeline.Booker, h hsm.PINTranslator, log *zap.Logger) (*qrorder.Desk, error) {
	o := cfg.Channels.Orders
	if o.NotifyAddress == "" {
		return nil, nil
	}
	keys := map[string]hsm.KeyBlock{}
	for i, is := range cfg.Issuers {
		if !is.Wallet {
			continue
		}
		if is.NotifyKey == "" {
			return nil, cfg.ErrorAt("issuers", i, "notify_key", "wallet %s has no notify_key, which channels.orders "+
				"needs to check the MAC of its order payment notifications", is.ID)
		}
		keys[is.ID] = hsm.KeyBlock(is.NotifyKey)
	}
	mac, ok := h.(qrorder.MACVerifier)
	if !ok {
		return nil, fmt.Errorf("channels.orders.notify_address: order notifications need an HSM that verifies MACs " +
			"(hsm.lmk_file, hsm.lmk_env or hsm.address)")
	}
	merchants := map[string]qrorder.Merchant{}
	for _, m := range cfg.Merchants {
		merchants[m.ID] = qrorder.Merchant{ID: m.ID, Name: m.Name, MCC: m.MCC, City: m.City, Country: m.Country}
	}
	desk, err := qrorder.New(pool, booker, mac, qrorder.Config{
		AcquirerID: cfg.Node.AcquirerID, AcquirerGUID: o.AcquirerGUID, TTL: o.TTL.D(), Merchants: merchants,
		NotifyAddress: o.NotifyAddress, WalletKeys: keys, Log: log.Named("orders"),
	})
	if err != nil {
		return nil, err
	}
	if err := desk.Serve(); err != nil {
		return nil, fmt.Errorf("channels.orders.notify_address: %w", err)
	}
	return desk, nil
}
