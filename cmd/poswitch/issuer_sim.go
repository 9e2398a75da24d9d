package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/poswitch/poswitch/simulator/issuersim"
)

func init() { register(newIssuerSimCmd) }

func newIssuerSimCmd() *cobra.Command {
	var (
		cfg     issuersim.Config
		logOpts simLog
	)
	cmd := &cobra.Command{
		Use:   "issuer-sim",
		Short: "Run a simulated issuer host (issuer-link dialect) with the test-card accounts",
		Long: "issuer-sim answers authorizations, reversals and network management on the issuer-link\n" +
			"dialect for the cards of docs/test-cards.md. It runs until interrupted, then prints what it saw.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logOpts.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			cfg.Log = log
			srv, err := issuersim.New(cfg)
			if err != nil {
				return err
			}
			if err := srv.Start(); err != nil {
				return err
			}
			serveUntilInterrupted("issuer-sim", srv, log)
			st := srv.Stats()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "issuer-sim %s: %d connections, %d sign-ons, %d echoes, %d sign-offs, %d reversals (%d restored money, %d of unknown originals), %d advices, %d duplicates, %d unanswered, %d bad messages\n",
				srv.Addr(), st.Connections, st.SignOns, st.Echoes, st.SignOffs, st.Reversals, st.ReversalsApplied,
				st.ReversalsUnknown, st.Advices, st.Duplicates, st.Unanswered, st.BadMessages)
			if cfg.Faults != (issuersim.Faults{}) {
				fmt.Fprintf(out, "  faults: %d answers dropped, %d delayed, %d connections closed, %d sign-ons refused\n",
					st.Dropped, st.Delayed, st.Closed, st.SignOnsRefused)
			}
			printCounts(out, st.Requests, st.Responses)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "listen", "127.0.0.1:9101", "address to listen on")
	f.StringVar(&cfg.IssuerID, "issuer", "", "serve only this issuer's cards (bank-a, bank-b); empty serves all")
	f.DurationVar(&cfg.Latency, "latency", 0, "fixed delay before each answer, e.g. 2ms")
	f.DurationVar(&cfg.Jitter, "jitter", 0, "extra random delay in [0, jitter) per answer")
	f.IntVar(&cfg.MaxConns, "max-conns", 1024, "concurrent connections accepted")
	f.IntVar(&cfg.MaxInFlightPerConn, "max-inflight", 1024, "requests in flight per connection")
	f.IntVar(&cfg.MaxRecords, "max-records", 1_000_000, "financial requests and advices remembered (duplicates, reversals); the oldest are forgotten")
	f.Float64Var(&cfg.Faults.DropShare, "drop", 0, "share of financial answers to drop after processing the request, 0 to 1")
	f.Float64Var(&cfg.Faults.DelayShare, "delay-share", 0, "share of financial answers to send late, 0 to 1 (needs --delay)")
	f.DurationVar(&cfg.Faults.Delay, "delay", 0, "how much later a delayed answer is sent, e.g. 15s (past the switch's timeout)")
	f.Float64Var(&cfg.Faults.CloseShare, "close-share", 0, "share of financial requests answered by closing the connection, 0 to 1")
	f.BoolVar(&cfg.Faults.RefuseSignOn, "refuse-sign-on", false, "answer sign-on (0800, 70=001) with 91 so links never come up")
	f.Uint64Var(&cfg.Faults.Seed, "seed", 0, "seed choosing which requests are faulted")
	logOpts.addFlags(cmd, "info", "log format: json or console")
	return cmd
}
