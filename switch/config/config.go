// Package config reads the switch's one YAML file: listeners, issuers and their endpoints, BIN routes,
// merchants and terminals, the database, and the HSM. A bad file fails at start with the file, the line,
// the key and the reason.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole file.
type Config struct {
	Node       Node       `yaml:"node"`
	Database   Database   `yaml:"database"`
	HSM        HSM        `yaml:"hsm"`
	Listeners  []Listener `yaml:"listeners"`
	Issuers    []Issuer   `yaml:"issuers"`
	Routes     []Route    `yaml:"routes"`
	Merchants  []Merchant `yaml:"merchants"`
	Terminals  []Terminal `yaml:"terminals"`
	Limits     Limits     `yaml:"limits"` // risk limits per merchant, terminal and card (limits.go)
	Settlement Settlement `yaml:"settlement"`
	SAF        SAF        `yaml:"saf"`      // store-and-forward queue (saf.go)
	Channels   Channels   `yaml:"channels"` // contactless CVM, refunds, QR orders, billers (channels.go)

	path string
}

// Settlement says when the switch closes a settlement cycle by itself (docs/ledger.md, Settlement).
type Settlement struct {
	CutoverAt string `yaml:"cutover_at"` // "HH:MM", default 23:00
	TimeZone  string `yaml:"time_zone"`  // IANA zone, default Asia/Shanghai
}

// Node holds settings of this switch instance.
type Node struct {
	AcquirerID string `yaml:"acquirer_id"` // field 32 on issuer links
	LogFormat  string `yaml:"log_format"`  // json (default) or console
	LogLevel   string `yaml:"log_level"`   // debug, info (default), warn, error
	Metrics    string `yaml:"metrics"`     // listen address of the Prometheus endpoint; empty: off
}

// Database is where the ledger lives.
type Database struct {
	URL            string   `yaml:"url"`       // the application role; the switch books through it
	OwnerURL       string   `yaml:"owner_url"` // runs migrations at start; empty: URL
	BatchWindow    Duration `yaml:"batch_window"`
	MaxBatch       int      `yaml:"max_batch"`
	MaxConnections int      `yaml:"max_connections"`
}

// HSM says where PINs are translated: in-process (default) or a remote `poswitch hsm serve`.
type HSM struct {
	Mode    string `yaml:"mode"` // in-process | remote
	Address string `yaml:"address"`
	LMKFile string `yaml:"lmk_file"`
	LMKEnv  string `yaml:"lmk_env"`

	line lines
}

// Listener is one TCP port for terminals speaking one dialect.
type Listener struct {
	Name                     string   `yaml:"name"`
	Address                  string   `yaml:"address"`
	Dialect                  string   `yaml:"dialect"` // iso87a, iso87a-bb, iso87b
	TPDU                     bool     `yaml:"tpdu"`
	MaxConnections           int      `yaml:"max_connections"`
	MaxInFlightPerConnection int      `yaml:"max_in_flight_per_connection"`
	IdleTimeout              Duration `yaml:"idle_timeout"`

	line lines
}

// Issuer is one issuer host (or network link) and how the switch talks to it.
type Issuer struct {
	ID                     string   `yaml:"id"`
	Endpoints              []string `yaml:"endpoints"` // host:port in order of preference: [primary, secondary]
	ConnectionsPerEndpoint int      `yaml:"connections_per_endpoint"`
	Timeout                Duration `yaml:"timeout"`
	EchoInterval           Duration `yaml:"echo_interval"`
	ReconnectWait          Duration `yaml:"reconnect_wait"`
	MaxReconnectWait       Duration `yaml:"max_reconnect_wait"`
	// ZPK is the zone PIN key shared with this issuer, as a TR-31 key block under the switch's LMK;
	// PIN blocks are translated to it. Without it, PIN transactions to this issuer get 88.
	ZPK       string `yaml:"zpk"`
	PINFormat int    `yaml:"pin_format"` // ISO 9564 format on this link: 0 (default), 1, 3 or 4
	// StandIn lets the switch approve within limits when this issuer is down or silent (saf.go).
	StandIn StandIn `yaml:"stand_in"`
	// Wallet marks the issuer as a wallet (payment codes, QR orders, biller of repayments).
	Wallet bool `yaml:"wallet"`
	// NotifyKey is the MAC key (TR-31 key block under the LMK) this wallet MACs its order payment
	// notifications with (channels.orders); required for a wallet when orders are on.
	NotifyKey string `yaml:"notify_key"`

	line lines
}

// Route sends cards whose PAN (or payment code) starts with Prefix, or whose leading digits fall in
// Range ("622126-622925", inclusive, both bounds of the same length), to Issuer; the most specific
// route wins (see switch/routing). Default: true makes the route the catch-all.
type Route struct {
	Prefix  string `yaml:"prefix"`
	Range   string `yaml:"range"`
	Issuer  string `yaml:"issuer"`
	Default bool   `yaml:"default"`
	// PaymentCodes and Length narrow a route to wallet payment codes and to numbers of one length
	// (routes.go, docs/configuration.md).
	PaymentCodes bool `yaml:"payment_codes"`
	Length       int  `yaml:"length"`

	line lines
}

// Merchant is an acceptor with its fee and currencies.
type Merchant struct {
	ID         string   `yaml:"id"` // field 42
	Name       string   `yaml:"name"`
	MCC        string   `yaml:"mcc"`
	FeeBP      *int     `yaml:"fee_bp"` // basis points; default 60
	Currencies []string `yaml:"currencies"`
	// City and Country are where the merchant is, as its merchant-presented QR says them (EMV
	// QRCPS IDs 60 and 58; merchant.go): City printable ASCII, at most 15 characters, default
	// BEIJING; Country ISO 3166-1 alpha-2 in upper case, default CN.
	City    string `yaml:"city"`
	Country string `yaml:"country"`

	line lines
}

// Terminal is one POS device (field 41) and the merchant it belongs to.
type Terminal struct {
	ID       string `yaml:"id"`
	Merchant string `yaml:"merchant"`
	// TPK is the terminal PIN key (TR-31 key block under the LMK) its PIN blocks are encrypted under;
	// BDK instead makes it a DUKPT terminal whose requests carry the KSN in field 62.
	TPK       string `yaml:"tpk"`
	BDK       string `yaml:"bdk"`
	PINFormat int    `yaml:"pin_format"` // ISO 9564 format the PIN pad sends: 0 (default), 1, 3 or 4
	// TMK is the terminal master key loaded at deployment (TR-31 key block under the LMK): sign-on
	// (0800, field 70 = 001) returns fresh PIN and MAC working keys under it. With a TMK, the TPK
	// above is only the key used until the first sign-on.
	TMK string `yaml:"tmk"`
	// MAC is how the terminal's requests and answers are MACed (field 64, or 128 with a secondary
	// bitmap): "x9.19" (ISO 9797-1 algorithm 3, TDES) or "aes-cmac"; empty: no MAC.
	MAC string `yaml:"mac"`

	line lines
}

// Defaults that a file may override.
const (
	DefaultFeeBP                    = 60
	defaultIssuerTimeout            = 5 * time.Second
	defaultEchoInterval             = 10 * time.Second
	defaultReconnectWait            = 200 * time.Millisecond
	defaultMaxReconnectWait         = 5 * time.Second
	defaultMaxConnections           = 20000
	defaultMaxInFlightPerConnection = 64
	defaultMaxBatch                 = 2000
)

// Error is a problem in the file, located by line and key.
type Error struct {
	File   string
	Line   int
	Key    string
	Reason string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Reason)
}

// Load reads, decodes, defaults and validates a file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for bytes already read; path only names the file in errors.
func Parse(path string, data []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, yamlError(path, err)
	}
	cfg := &Config{path: path}
	if err := root.Decode(cfg); err != nil {
		return nil, yamlError(path, err)
	}
	if err := checkKnownKeys(path, &root); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// yamlError turns yaml.v3's "line N: reason" into our file:line form.
func yamlError(path string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return &Error{File: path, Line: line, Key: "yaml", Reason: strings.TrimSpace(msg)}
}

var lineRE = regexp.MustCompile(`^line (\d+):`)

func (c *Config) applyDefaults() {
	if c.Node.AcquirerID == "" {
		c.Node.AcquirerID = "00000000001"
	}
	if c.Node.LogFormat == "" {
		c.Node.LogFormat = "json"
	}
	if c.Node.LogLevel == "" {
		c.Node.LogLevel = "info"
	}
	if c.Database.OwnerURL == "" {
		c.Database.OwnerURL = c.Database.URL
	}
	if c.Database.MaxBatch == 0 {
		c.Database.MaxBatch = defaultMaxBatch
	}
	if c.Database.MaxConnections == 0 {
		c.Database.MaxConnections = 8
	}
	if c.Settlement.CutoverAt == "" {
		c.Settlement.CutoverAt = "23:00"
	}
	if c.Settlement.TimeZone == "" {
		c.Settlement.TimeZone = "Asia/Shanghai"
	}
	if c.HSM.Mode == "" {
		c.HSM.Mode = "in-process"
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.MaxConnections == 0 {
			l.MaxConnections = defaultMaxConnections
		}
		if l.MaxInFlightPerConnection == 0 {
			l.MaxInFlightPerConnection = defaultMaxInFlightPerConnection
		}
	}
	for i := range c.Issuers {
		is := &c.Issuers[i]
		if is.ConnectionsPerEndpoint == 0 {
			is.ConnectionsPerEndpoint = 1
		}
		if is.Timeout == 0 {
			is.Timeout = Duration(defaultIssuerTimeout)
		}
		if is.EchoInterval == 0 {
			is.EchoInterval = Duration(defaultEchoInterval)
		}
		if is.ReconnectWait == 0 {
			is.ReconnectWait = Duration(defaultReconnectWait)
		}
		if is.MaxReconnectWait == 0 {
			is.MaxReconnectWait = Duration(defaultMaxReconnectWait)
		}
	}
	c.applySAFDefaults()
	c.applyChannelDefaults()
	c.applyLimitsDefaults()
	for i := range c.Merchants {
		if c.Merchants[i].FeeBP == nil {
			bp := DefaultFeeBP
			c.Merchants[i].FeeBP = &bp
		}
	}
}

// Path is the file the configuration came from.
func (c *Config) Path() string { return c.path }

// Duration is a time.Duration written as "250ms", "5s" in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write e.g. 250ms, 5s)", n.Line, n.Value)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %q is negative", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// The list elements remember their line so that validation can point at them.
func (l *Listener) UnmarshalYAML(n *yaml.Node) error {
	type plain Listener
	l.line = keyLines(n)
	return n.Decode((*plain)(l))
}
func (i *Issuer) UnmarshalYAML(n *yaml.Node) error {
	type plain Issuer
	i.line = keyLines(n)
	return n.Decode((*plain)(i))
}
func (r *Route) UnmarshalYAML(n *yaml.Node) error {
	type plain Route
	r.line = keyLines(n)
	return n.Decode((*plain)(r))
}
func (m *Merchant) UnmarshalYAML(n *yaml.Node) error {
	type plain Merchant
	m.line = keyLines(n)
	return n.Decode((*plain)(m))
}
func (t *Terminal) UnmarshalYAML(n *yaml.Node) error {
	type plain Terminal
	t.line = keyLines(n)
	return n.Decode((*plain)(t))
}
func (h *HSM) UnmarshalYAML(n *yaml.Node) error {
	type plain HSM
	h.line = keyLines(n)
	return n.Decode((*plain)(h))
}

// lines remembers where an element and each of its keys stand in the file.
type lines map[string]int

// keyLines records the line of the element ("") and of each key in it.
func keyLines(n *yaml.Node) lines {
	l := lines{"": n.Line}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			l[n.Content[i].Value] = n.Content[i].Line
		}
	}
	return l
}

// of is the line of a key, or of the element when the key is absent.
func (l lines) of(key string) int {
	if v, ok := l[key]; ok {
		return v
	}
	return l[""]
}

// ErrorAt builds an Error for a key of the i-th element of a list section ("issuers", "terminals",
// "listeners", "merchants", "routes", "limits.merchants", "limits.terminals", "limits.cards"),
// located at that key's line: for problems found after parsing, such as a key block the HSM refuses.
func (c *Config) ErrorAt(section string, i int, key, format string, args ...any) error {
	var l lines
	switch section {
	case "issuers":
		l = c.Issuers[i].line
	case "terminals":
		l = c.Terminals[i].line
	case "listeners":
		l = c.Listeners[i].line
	case "merchants":
		l = c.Merchants[i].line
	case "routes":
		l = c.Routes[i].line
	case "limits.merchants":
		l = c.Limits.Merchants[i].line
	case "limits.terminals":
		l = c.Limits.Terminals[i].line
	case "limits.cards":
		l = c.Limits.Cards[i].line
	}
	return &Error{File: c.path, Line: l.of(key), Key: fmt.Sprintf("%s[%d].%s", section, i, key), Reason: fmt.Sprintf(format, args...)}
}
