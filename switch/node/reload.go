package node

import (
	"bytes"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/limits"
	"github.com/poswitch/poswitch/switch/pipeline"
)

// Reload re-reads the configuration file and swaps in its routing table and its risk limits, each
// atomically, without dropping a connection: requests already routed keep their issuer, and
// reservations already made are kept or released as usual. The day's limit usage is kept.
//
// Nothing else is reloaded — node, database, HSM, listeners, issuers and their endpoints, merchants,
// terminals, settlement, store-and-forward: a change there is logged as needing a restart. A file
// that does not load, or whose routes name an issuer this node has no link for, changes nothing; the
// error names the file, line and key.
func (n *Node) Reload(path string) error {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	for i, r := range cfg.Routes {
		if _, ok := n.links[r.Issuer]; !ok {
			return cfg.ErrorAt("routes", i, "issuer", "issuer %q has no link in the running node (adding an issuer needs a restart)", r.Issuer)
		}
	}
	table, err := cfg.RoutingTable()
	if err != nil {
		return err
	}
	if err := n.limiter.SetPolicy(limitsPolicy(cfg)); err != nil {
		return fmt.Errorf("%s: limits: %w", path, err)
	}
	n.router.Replace(table)

	restart := changedSections(n.cfg, cfg)
	n.log.Info("configuration reloaded: routes and limits in force",
		zap.String("config", path), zap.Int("routes", table.Len()),
		zap.Int("merchant_limits", len(cfg.Limits.Merchants)), zap.Int("terminal_limits", len(cfg.Limits.Terminals)),
		zap.Int("card_limits", len(cfg.Limits.Cards)), zap.String("limits_time_zone", cfg.Limits.TimeZone))
	if len(restart) > 0 {
		n.log.Warn("configuration changes that need a restart were not applied", zap.Strings("sections", restart))
	}
	return nil
}

// changedSections lists the sections of the file, other than routes and limits, that differ from
// the ones the node runs with. They are compared as YAML, so moving a line is not a change.
func changedSections(running, next *config.Config) []string {
	sections := []struct {
		name       string
		old, fresh any
	}{
		{"node", running.Node, next.Node}, {"database", running.Database, next.Database}, {"hsm", running.HSM, next.HSM},
		{"listeners", running.Listeners, next.Listeners}, {"issuers", running.Issuers, next.Issuers},
		{"merchants", running.Merchants, next.Merchants}, {"terminals", running.Terminals, next.Terminals},
		{"settlement", running.Settlement, next.Settlement}, {"saf", running.SAF, next.SAF},
	}
	var changed []string
	for _, s := range sections {
		a, errA := yaml.Marshal(s.old)
		b, errB := yaml.Marshal(s.fresh)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			changed = append(changed, s.name)
		}
	}
	return changed
}

// limitsPolicy is the limits section of a validated file as the limiter takes it.
func limitsPolicy(cfg *config.Config) *limits.Policy {
	p := &limits.Policy{
		Location: cfg.LimitsLocation(), MaxCardsPerDay: cfg.Limits.MaxCardsPerDay,
		Merchants: subjects(cfg.Limits.Merchants), Terminals: subjects(cfg.Limits.Terminals),
		Cards: map[string]limits.Rule{},
	}
	for _, e := range cfg.Limits.Cards {
		p.Cards[e.Currency] = rule(e)
	}
	return p
}

func subjects(entries []config.LimitEntry) map[string]limits.Subject {
	m := map[string]limits.Subject{}
	for _, e := range entries {
		s, ok := m[e.ID]
		if !ok {
			s = limits.Subject{Rules: map[string]limits.Rule{}, BlockedMCCs: map[string]bool{}}
		}
		if e.HasAmounts() {
			s.Rules[e.Currency] = rule(e)
		}
		for _, mcc := range e.BlockedMCCs {
			s.BlockedMCCs[mcc] = true
		}
		m[e.ID] = s
	}
	return m
}

func rule(e config.LimitEntry) limits.Rule {
	return limits.Rule{MaxAmount: e.MaxAmount, DailyAmount: e.DailyAmount, DailyCount: e.DailyCount}
}

// newLimits builds the limiter of a file, registers its metrics, and the pipeline step that uses it.
// Without a PAN digester (a remote HSM that offers none) card limits are off, and a file that sets
// them gets a warning.
func newLimits(cfg *config.Config, digest PANDigester, log *zap.Logger, reg prometheus.Registerer) (*limits.Limiter, *pipeline.Limits, error) {
	l, err := limits.New(limits.Config{Policy: limitsPolicy(cfg), Log: log.Named("limits")})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: limits: %w", cfg.Path(), err)
	}
	if err := l.Register(reg); err != nil {
		return nil, nil, err
	}
	var d func(string) []byte
	if digest != nil {
		d = digest.PANDigest
	} else if len(cfg.Limits.Cards) > 0 {
		log.Warn("limits.cards is set but no PAN digest is available (HSM without PANDigest): card limits are off")
	}
	return l, pipeline.NewLimits(l, d), nil
}
