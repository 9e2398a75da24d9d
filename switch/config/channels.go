package config

import (
	"fmt"
	"net"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Channels configures the ways of paying beyond a card read online: contactless cardholder
// verification, refund windows, merchant-presented QR orders and billers (docs/channels.md). Every
// key is optional.
type Channels struct {
	// NoCVMLimits: contactless amounts up to and including the limit need no PIN and no signature;
	// per ISO 4217 numeric currency, in its minor units. Default {"156": 100000} (CNY 1,000.00). A
	// currency without a limit needs a PIN (or the chip) for every contactless amount.
	NoCVMLimits map[string]int64 `yaml:"no_cvm_limits"`
	// RefundWindow: how long after its original a refund is accepted; default 180 days (4320h).
	RefundWindow Duration `yaml:"refund_window"`
	Orders       Orders   `yaml:"orders"`
	Billers      []Biller `yaml:"billers"`

	line lines
}

// Orders are merchant-presented dynamic QR orders (switch/qrorder).
type Orders struct {
	// NotifyAddress is the HTTP listen address where wallets report the payment of an order; empty:
	// the switch answers order requests 12.
	NotifyAddress string   `yaml:"notify_address"`
	TTL           Duration `yaml:"ttl"` // how long an unpaid order stays payable; default 5m
	// AcquirerGUID names this acquirer in the QR's merchant account information (EMV QRCPS ID 26,
	// sub-ID 00), reverse-domain style; default "cn.poswitch.qr".
	AcquirerGUID string `yaml:"acquirer_guid"`

	line lines
}

// Biller is a payee of bill payments (field 48 "<biller>|<account>"), e.g. a wallet's credit line
// repaid at a POS. Its bill payments are booked to the wallet's payable with the biller's own fee.
type Biller struct {
	ID     string `yaml:"id"`     // field 48's first part, e.g. HUABEI
	Wallet string `yaml:"wallet"` // the issuer (a wallet) the money is owed to and that hears of each payment
	FeeBP  *int   `yaml:"fee_bp"` // basis points; default 0

	line lines
}

const (
	defaultNoCVMCurrency = "156"
	defaultNoCVMLimit    = 100000 // CNY 1,000.00
	defaultRefundWindow  = 180 * 24 * time.Hour
	defaultOrderTTL      = 5 * time.Minute
	defaultAcquirerGUID  = "cn.poswitch.qr"
)

func (c *Channels) UnmarshalYAML(n *yaml.Node) error {
	type plain Channels
	c.line = keyLines(n)
	return n.Decode((*plain)(c))
}

func (o *Orders) UnmarshalYAML(n *yaml.Node) error {
	type plain Orders
	o.line = keyLines(n)
	return n.Decode((*plain)(o))
}

func (b *Biller) UnmarshalYAML(n *yaml.Node) error {
	type plain Biller
	b.line = keyLines(n)
	return n.Decode((*plain)(b))
}

func (c *Config) applyChannelDefaults() {
	ch := &c.Channels
	if ch.NoCVMLimits == nil {
		ch.NoCVMLimits = map[string]int64{defaultNoCVMCurrency: defaultNoCVMLimit}
	}
	if ch.RefundWindow == 0 {
		ch.RefundWindow = Duration(defaultRefundWindow)
	}
	if ch.Orders.TTL == 0 {
		ch.Orders.TTL = Duration(defaultOrderTTL)
	}
	if ch.Orders.AcquirerGUID == "" {
		ch.Orders.AcquirerGUID = defaultAcquirerGUID
	}
	for i := range ch.Billers {
		if ch.Billers[i].FeeBP == nil {
			zero := 0
			ch.Billers[i].FeeBP = &zero
		}
	}
}

func (c *Config) validateChannels() error {
	ch := c.Channels
	bad := func(l lines, key, name, format string, args ...any) error {
		return &Error{File: c.path, Line: l.of(key), Key: "channels." + name, Reason: fmt.Sprintf(format, args...)}
	}
	for cur, limit := range ch.NoCVMLimits {
		if len(cur) != 3 || strings.Trim(cur, "0123456789") != "" {
			return bad(ch.line, "no_cvm_limits", "no_cvm_limits", "%q is not an ISO 4217 numeric currency", cur)
		}
		if limit < 0 {
			return bad(ch.line, "no_cvm_limits", "no_cvm_limits."+cur, "must not be negative, is %d", limit)
		}
	}
	if ch.RefundWindow.D() < time.Hour || ch.RefundWindow.D() > 3*365*24*time.Hour {
		return bad(ch.line, "refund_window", "refund_window", "must be 1h..3 years, is %v", ch.RefundWindow.D())
	}
	o := ch.Orders
	if o.NotifyAddress != "" {
		if _, _, err := net.SplitHostPort(o.NotifyAddress); err != nil {
			return bad(o.line, "notify_address", "orders.notify_address", "%q is not host:port: %v", o.NotifyAddress, err)
		}
	}
	if o.TTL.D() < time.Second || o.TTL.D() > 24*time.Hour {
		return bad(o.line, "ttl", "orders.ttl", "must be 1s..24h, is %v", o.TTL.D())
	}
	if len(o.AcquirerGUID) > 32 {
		return bad(o.line, "acquirer_guid", "orders.acquirer_guid", "must be at most 32 characters (EMV QRCPS), is %d", len(o.AcquirerGUID))
	}
	ids := map[string]bool{}
	for i, b := range ch.Billers {
		name := fmt.Sprintf("billers[%d]", i)
		switch {
		case b.ID == "" || strings.Contains(b.ID, "|"):
			return bad(b.line, "id", name+".id", "is required and must not contain '|', is %q", b.ID)
		case ids[b.ID]:
			return bad(b.line, "id", name+".id", "%q is used twice", b.ID)
		case !c.hasIssuer(b.Wallet):
			return bad(b.line, "wallet", name+".wallet", "%q is not an issuer in this file", b.Wallet)
		case *b.FeeBP < 0 || *b.FeeBP > 10000:
			return bad(b.line, "fee_bp", name+".fee_bp", "must be 0..10000, is %d", *b.FeeBP)
		}
		ids[b.ID] = true
	}
	return nil
}

func (c *Config) hasIssuer(id string) bool {
	for _, is := range c.Issuers {
		if is.ID == id {
			return true
		}
	}
	return false
}
