package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/hsm/hsmbench"
	"github.com/poswitch/poswitch/hsm/service"
)

func init() { register(newHSMCmd) }

func newHSMCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hsm",
		Short: "Software HSM: payShield-style TCP service, LMK generation, benchmark",
	}
	cmd.AddCommand(newHSMServeCmd(), newHSMGenLMKCmd(), newHSMBenchCmd())
	return cmd
}

func newHSMServeCmd() *cobra.Command {
	var (
		listen   string
		lmkFile  string
		lmkEnv   string
		cfg      service.Config
		idleTime time.Duration
		logFmt   string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HSM over TCP with payShield-style framing (2-byte length, header, command)",
		Long: `Serve the HSM over TCP. Requests are framed like a Thales payShield: a 2-byte big-endian
length, a fixed-length header echoed in the reply, a 2-letter command and its fields. Commands:
NC A0 BU A6 A8 CA CC G0 DA EA DC EC CW CY M6 M8 KQ (see docs/hsm.md).

The LMK (32-byte AES key, 64 hex characters) comes from $POSWITCH_LMK when set, else from --lmk-file.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			lmk, err := hsm.LoadLMK(lmkFile, lmkEnv)
			if err != nil {
				return err
			}
			h, err := hsm.New(lmk)
			clear(lmk)
			if err != nil {
				return err
			}
			log, err := newLogger(logFmt, logLevel)
			if err != nil {
				return err
			}
			defer log.Sync()
			cfg.Logger = log
			cfg.IdleTimeout = idleTime
			srv, err := service.NewServer(h, cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return srv.ListenAndServe(ctx, listen, func(a net.Addr) {
				log.Info("hsm listening", zap.Stringer("addr", a), zap.String("lmk_check_value", string(h.LMKCheckValue())), zap.Int("header_length", cfg.HeaderLength))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:1500", "TCP address to listen on")
	f.IntVar(&cfg.HeaderLength, "header-length", 4, "message header length in bytes (echoed back)")
	f.StringVar(&lmkFile, "lmk-file", "var/dev.lmk", "file holding the LMK in hex (mode 0600)")
	f.StringVar(&lmkEnv, "lmk-env", "POSWITCH_LMK", "environment variable holding the LMK in hex; wins over --lmk-file")
	f.IntVar(&cfg.MaxConnections, "max-connections", 1024, "connections served at once")
	f.IntVar(&cfg.MaxInFlightPerConn, "max-in-flight", 256, "requests in flight per connection")
	f.IntVar(&cfg.Workers, "workers", 0, "command workers (0: one per CPU)")
	f.DurationVar(&idleTime, "idle-timeout", 10*time.Minute, "close connections silent for this long")
	f.StringVar(&logFmt, "log-format", "json", "log format: json or console")
	f.StringVar(&logLevel, "log-level", "info", "log level")
	return cmd
}

func newHSMGenLMKCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "gen-lmk",
		Short: "Write a random development LMK (mode 0600); refuses to overwrite an existing file",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := hsm.GenerateLMKFile(out); err != nil {
				return err
			}
			lmk, err := hsm.LoadLMK(out, "")
			if err != nil {
				return err
			}
			h, err := hsm.New(lmk)
			clear(lmk)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (LMK check value %s)\n", out, h.LMKCheckValue())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "var/dev.lmk", "file to write")
	return cmd
}

func newHSMBenchCmd() *cobra.Command {
	var opts hsmbench.Options
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure PIN translations per second in-process and over TCP with pipelining",
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := hsmbench.Run(context.Background(), opts)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), r.String())
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.Duration, "duration", time.Second, "length of each measurement")
	f.IntVar(&opts.Connections, "connections", 4, "TCP connections")
	f.IntVar(&opts.Depth, "depth", 32, "requests in flight per connection")
	f.IntVar(&opts.Cores, "cores", 0, "goroutines for the all-cores measurement (0: GOMAXPROCS)")
	return cmd
}
