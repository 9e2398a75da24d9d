package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

func init() { register(newTerminalSimCmd) }

func newTerminalSimCmd() *cobra.Command {
	var (
		cfg       terminalsim.Config
		cardSet   string
		terminals int
		logOpts   simLog
	)
	cmd := &cobra.Command{
		Use:   "terminal-sim",
		Short: "Send purchases from simulated POS terminals and report outcomes and latency",
		Long: "terminal-sim opens --conns connections to --addr and keeps --inflight purchases in flight on\n" +
			"each, in the given dialect, until --count purchases are sent or --duration passes. On a terminal\n" +
			"it shows a live progress line; --verbose prints a receipt per transaction. PANs are masked 6+4.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logOpts.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			cfg.Log = log
			if cfg.Cards, err = cards.Selection(cardSet); err != nil {
				return err
			}
			if terminals > 0 {
				cfg.Terminals = terminalsim.DefaultTerminals(terminals)
			}
			cfg.Out = os.Stdout
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sum, err := terminalsim.Run(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "terminal-sim:", sum)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:8583", "switch (or issuer host) address")
	f.StringVar(&cfg.Dialect, "dialect", "iso87a", "wire dialect: iso87a, iso87a-bb, iso87b, issuer-link")
	f.BoolVar(&cfg.TPDU, "tpdu", false, "put a 5-byte TPDU (60 0001 0000) after the length prefix")
	f.IntVar(&cfg.Conns, "conns", 1, "TCP connections")
	f.IntVar(&cfg.InFlightPerConn, "inflight", 1, "purchases in flight per connection")
	f.IntVar(&cfg.Count, "count", 0, "purchases to send (0 with no --duration: 1)")
	f.DurationVar(&cfg.Duration, "duration", 0, "send for this long, e.g. 30s")
	f.Float64Var(&cfg.Rate, "rate", 0, "purchases per second over all connections (0: as fast as possible)")
	f.BoolVar(&cfg.Verbose, "verbose", false, "print a receipt per transaction")
	f.StringVar(&cfg.Currency, "currency", "", "ISO 4217 numeric currency (empty: each card's own)")
	f.Int64Var(&cfg.Amount, "amount", 0, "amount in minor units (0: random 1.00-200.00)")
	f.DurationVar(&cfg.Timeout, "timeout", 0, "per-purchase timeout (0: 30s)")
	f.StringVar(&cardSet, "cards", "issuer", "cards to use: issuer, load, all, bank-a, bank-b, a response code, or PANs")
	f.IntVar(&terminals, "terminals", 0, "terminals TERM0001… to use (0: one per connection)")
	logOpts.addFlags(cmd, "warn", "log format (to stderr): json or console")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed for card and amount choice")
	cmd.AddCommand(newTerminalSimOrderCmd())
	return cmd
}
