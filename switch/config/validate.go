package config

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// knownDialects mirrors specs.DialectNames; config does not import specs so that it stays a leaf, and a
// test keeps the two lists equal.
var knownDialects = []string{"iso87a", "iso87a-bb", "iso87b"}

func (c *Config) validate() error {
	bad := func(line int, key, format string, args ...any) error {
		return &Error{File: c.path, Line: line, Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	if c.Database.URL == "" {
		return bad(0, "database.url", "is required")
	}
	if c.Database.MaxBatch < 1 || c.Database.MaxBatch > 100000 {
		return bad(0, "database.max_batch", "must be between 1 and 100000, is %d", c.Database.MaxBatch)
	}
	if _, err := time.Parse("15:04", c.Settlement.CutoverAt); err != nil {
		return bad(0, "settlement.cutover_at", "%q is not HH:MM", c.Settlement.CutoverAt)
	}
	if _, err := time.LoadLocation(c.Settlement.TimeZone); err != nil {
		return bad(0, "settlement.time_zone", "%q is not an IANA time zone: %v", c.Settlement.TimeZone, err)
	}
	switch c.HSM.Mode {
	case "in-process":
	case "remote":
		if _, _, err := net.SplitHostPort(c.HSM.Address); err != nil {
			return bad(c.HSM.line.of("address"), "hsm.address", "remote mode needs host:port: %v", err)
		}
	default:
		return bad(c.HSM.line.of("mode"), "hsm.mode", "must be in-process or remote, is %q", c.HSM.Mode)
	}
	if len(c.Listeners) == 0 {
		return bad(0, "listeners", "at least one listener is required")
	}
	names := map[string]bool{}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		if l.Name == "" {
			return bad(l.line.of("name"), key+".name", "is required")
		}
		if names[l.Name] {
			return bad(l.line.of("name"), key+".name", "%q is used twice", l.Name)
		}
		names[l.Name] = true
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			return bad(l.line.of("address"), key+".address", "%q is not host:port: %v", l.Address, err)
		}
		if !contains(knownDialects, l.Dialect) {
			return bad(l.line.of("dialect"), key+".dialect", "unknown dialect %q (known: %s)", l.Dialect, strings.Join(knownDialects, ", "))
		}
		if l.MaxInFlightPerConnection < 1 || l.MaxInFlightPerConnection > 4096 {
			return bad(l.line.of("max_in_flight_per_connection"), key+".max_in_flight_per_connection", "must be 1..4096, is %d", l.MaxInFlightPerConnection)
		}
	}
	issuers := map[string]bool{}
	for i, is := range c.Issuers {
		key := fmt.Sprintf("issuers[%d]", i)
		if is.ID == "" {
			return bad(is.line.of("id"), key+".id", "is required")
		}
		if issuers[is.ID] {
			return bad(is.line.of("id"), key+".id", "%q is used twice", is.ID)
		}
		issuers[is.ID] = true
		if len(is.Endpoints) == 0 || len(is.Endpoints) > maxEndpoints {
			return bad(is.line.of("endpoints"), key+".endpoints", "1 to %d host:port in order of preference ([primary, secondary]), has %d", maxEndpoints, len(is.Endpoints))
		}
		for j, ep := range is.Endpoints {
			if _, _, err := net.SplitHostPort(ep); err != nil {
				return bad(is.line.of("endpoints"), fmt.Sprintf("%s.endpoints[%d]", key, j), "%q is not host:port: %v", ep, err)
			}
			if k := slices.Index(is.Endpoints[:j], ep); k >= 0 {
				return bad(is.line.of("endpoints"), fmt.Sprintf("%s.endpoints[%d]", key, j), "%q repeats endpoints[%d]", ep, k)
			}
		}
		if !validPINFormat(is.PINFormat) {
			return bad(is.line.of("pin_format"), key+".pin_format", "must be 0, 1, 3 or 4, is %d", is.PINFormat)
		}
		if is.ConnectionsPerEndpoint < 1 || is.ConnectionsPerEndpoint > 64 {
			return bad(is.line.of("connections_per_endpoint"), key+".connections_per_endpoint", "must be 1..64, is %d", is.ConnectionsPerEndpoint)
		}
	}
	if err := c.validateChannels(); err != nil {
		return err
	}
	if err := c.validateSAF(); err != nil {
		return err
	}
	if err := c.validateRoutes(issuers); err != nil { // routes.go
		return err
	}
	merchants := map[string]bool{}
	for i, m := range c.Merchants {
		key := fmt.Sprintf("merchants[%d]", i)
		if m.ID == "" || len(m.ID) > 15 {
			return bad(m.line.of("id"), key+".id", "must be 1 to 15 characters (field 42), is %q", m.ID)
		}
		if merchants[m.ID] {
			return bad(m.line.of("id"), key+".id", "%q is used twice", m.ID)
		}
		merchants[m.ID] = true
		if *m.FeeBP < 0 || *m.FeeBP > 10000 {
			return bad(m.line.of("fee_bp"), key+".fee_bp", "must be 0..10000 basis points, is %d", *m.FeeBP)
		}
		for j, cur := range m.Currencies {
			if len(cur) != 3 || strings.Trim(cur, "0123456789") != "" {
				return bad(m.line.of("currencies"), fmt.Sprintf("%s.currencies[%d]", key, j), "must be an ISO 4217 numeric code like 156, is %q", cur)
			}
		}
		if err := c.validateMerchantPlace(m, key); err != nil { // merchant.go
			return err
		}
	}
	terminals := map[string]bool{}
	for i, t := range c.Terminals {
		key := fmt.Sprintf("terminals[%d]", i)
		if t.ID == "" || len(t.ID) > 8 {
			return bad(t.line.of("id"), key+".id", "must be 1 to 8 characters (field 41), is %q", t.ID)
		}
		if terminals[t.ID] {
			return bad(t.line.of("id"), key+".id", "%q is used twice", t.ID)
		}
		terminals[t.ID] = true
		if !merchants[t.Merchant] {
			return bad(t.line.of("merchant"), key+".merchant", "unknown merchant %q", t.Merchant)
		}
		if t.TPK != "" && t.BDK != "" {
			return bad(t.line.of("bdk"), key+".bdk", "a terminal has a TPK or a DUKPT BDK, not both")
		}
		if !validPINFormat(t.PINFormat) {
			return bad(t.line.of("pin_format"), key+".pin_format", "must be 0, 1, 3 or 4, is %d", t.PINFormat)
		}
		if t.MAC != "" && t.MAC != MACX919 && t.MAC != MACAESCMAC {
			return bad(t.line.of("mac"), key+".mac", "must be %s, %s or empty, is %q", MACX919, MACAESCMAC, t.MAC)
		}
		if t.TMK != "" && t.BDK != "" {
			return bad(t.line.of("tmk"), key+".tmk", "a DUKPT terminal derives its keys from the BDK and has no master key")
		}
	}
	if err := c.validateLimits(); err != nil { // limits.go
		return err
	}
	return nil
}

// MAC methods a terminal may use (Terminal.MAC).
const (
	MACX919    = "x9.19"
	MACAESCMAC = "aes-cmac"
)

func validPINFormat(f int) bool { return f == 0 || f == 1 || f == 3 || f == 4 }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkKnownKeys rejects keys the Config does not have (a typo must not silently fall back to a default).
func checkKnownKeys(path string, root *yaml.Node) error {
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		return walkKeys(path, "", root.Content[0], reflect.TypeOf(Config{}))
	}
	return nil
}

func walkKeys(path, prefix string, n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields[tag] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			key := strings.TrimPrefix(prefix+"."+k.Value, ".")
			if !ok {
				return &Error{File: path, Line: k.Line, Key: key, Reason: "unknown key"}
			}
			if err := walkKeys(path, key, n.Content[i+1], ft); err != nil {
				return err
			}
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, item := range n.Content {
			if err := walkKeys(path, fmt.Sprintf("%s[%d]", prefix, i), item, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}
