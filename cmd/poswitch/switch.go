package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/hsm/service"
	"github.com/poswitch/poswitch/switch/config"
	"github.com/poswitch/poswitch/switch/node"
)

func init() { register(newSwitchCmd) }

func newSwitchCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "switch",
		Short: "Run the switch: terminal listeners, issuer links, HSM and ledger from one YAML file",
		Long: `Run one switch node. The configuration file (docs/configuration.md) names the listeners,
issuers, BIN routes, merchants, terminals, the database and the HSM. A bad file fails at start with
its file name, line, key and reason. The ledger is migrated at start. SIGHUP re-reads the file and
swaps in its routes and limits without dropping a connection (other sections need a restart; a bad
file keeps the routes and limits in force and logs its line and key). SIGINT or SIGTERM stops the
node: listeners close, in-flight transactions finish and are booked, issuer links sign off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log, err := newLogger(cfg.Node.LogFormat, cfg.Node.LogLevel)
			if err != nil {
				return fmt.Errorf("%s: node: %w", path, err)
			}
			defer log.Sync()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runSwitch(ctx, cfg, log)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "poswitch.yaml", "configuration file")
	return cmd
}

// runSwitch runs a node until ctx ends.
func runSwitch(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	parts, closeParts, err := switchParts(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeParts()
	st, err := node.Open(ctx, cfg, parts, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Start(ctx); err != nil {
		return err
	}
	// SIGHUP reloads the routes and the limits from the same file; one at a time, on this goroutine.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log.Info("switch running", zap.String("config", cfg.Path()))
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return nil
		case <-hup:
			log.Info("SIGHUP: reloading routes and limits", zap.String("config", cfg.Path()))
			if err := st.Reload(cfg.Path()); err != nil {
				log.Error("reload refused; the routes and limits in force are kept", zap.Error(err))
			}
		}
	}
}

// switchParts builds the HSM side of the node from the configuration: an in-process HSM under the
// LMK from hsm.lmk_file (or the variable hsm.lmk_env), or a client of a remote `poswitch hsm serve`.
func switchParts(ctx context.Context, cfg *config.Config, log *zap.Logger) (node.Parts, func(), error) {
	switch cfg.HSM.Mode {
	case "remote":
		c, err := service.Dial(ctx, cfg.HSM.Address, service.ClientConfig{})
		if err != nil {
			return node.Parts{}, nil, fmt.Errorf("%s: hsm.address: %w", cfg.Path(), err)
		}
		return node.Parts{HSM: c}, func() { c.Close() }, nil
	default:
		if cfg.HSM.LMKFile == "" && cfg.HSM.LMKEnv == "" {
			log.Warn("no hsm.lmk_file or hsm.lmk_env: PIN transactions will be declined 88")
			return node.Parts{}, func() {}, nil
		}
		lmk, err := hsm.LoadLMK(cfg.HSM.LMKFile, cfg.HSM.LMKEnv)
		if err != nil {
			return node.Parts{}, nil, fmt.Errorf("%s: hsm: %w", cfg.Path(), err)
		}
		h, err := hsm.New(lmk)
		clear(lmk)
		if err != nil {
			return node.Parts{}, nil, fmt.Errorf("%s: hsm: %w", cfg.Path(), err)
		}
		log.Info("in-process HSM", zap.String("lmk_check_value", fmt.Sprint(h.LMKCheckValue())))
		return node.Parts{HSM: h, Digest: h, Vault: h}, func() {}, nil
	}
}
