package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/poswitch/poswitch/simulator/walletsim"
)

func init() { register(newWalletSimCmd) }

func newWalletSimCmd() *cobra.Command {
	var (
		cfg      walletsim.Config
		codes    int
		customer string
		logOpts  simLog
	)
	cmd := &cobra.Command{
		Use:   "wallet-sim",
		Short: "Run a simulated wallet host (Alipay-, WeChat Pay- or UnionPay QR-style) on the issuer-link dialect",
		Long: "wallet-sim plays one wallet behind an issuer link: it pays the payment codes it issued (entry\n" +
			"mode 03x) from a customer's balance or Huabei-style credit line (field 63 instalments 3, 6, 12),\n" +
			"takes reversals, refunds (field 90) and credit-line repayment advices, and answers field 63\n" +
			"\"<WALLET>|<FUNDING>|<nn>\". --codes prints that many fresh payment codes of --customer at start\n" +
			"(valid for --code-ttl). It runs until interrupted, then prints what it saw. See docs/simulators.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logOpts.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			cfg.Log = log
			cfg.Wallet = strings.ToUpper(cfg.Wallet)
			srv, err := walletsim.New(cfg)
			if err != nil {
				return err
			}
			if err := srv.Start(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if codes > 0 && customer == "" {
				customer = walletsim.DefaultCustomers(cfg.Wallet)[0].ID
			}
			for range codes {
				code, err := srv.NewPaymentCode(customer)
				if err != nil {
					_ = srv.Close()
					return err
				}
				fmt.Fprintf(out, "payment code %s (customer %s)\n", code, customer)
			}
			serveUntilInterrupted("wallet-sim", srv, log)
			st := srv.Stats()
			fmt.Fprintf(out, "wallet-sim %s %s: %d connections, %d payments, %d refunds, %d reversals, %d repayments, %d duplicates, %d bad messages\n",
				cfg.Wallet, srv.Addr(), st.Connections, st.Payments, st.Refunds, st.Reversals, st.Repayments, st.Duplicates, st.BadMessages)
			printCounts(out, st.Requests, st.Responses)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "listen", "127.0.0.1:9201", "address to listen on")
	f.StringVar(&cfg.Wallet, "wallet", walletsim.Alipay, "wallet to play: ALIPAY, WECHAT or UNIONPAY")
	f.StringVar(&cfg.IssuerID, "issuer", "", "the wallet's issuer ID at the switch; empty: the wallet in lower case")
	f.DurationVar(&cfg.CodeTTL, "code-ttl", walletsim.DefaultCodeTTL, "how long a payment code may be used")
	f.IntVar(&cfg.MaxConns, "max-conns", 256, "concurrent connections accepted")
	f.IntVar(&cfg.MaxRecords, "max-records", 100_000, "requests and advices remembered (repeats, reversals, refunds); the oldest are forgotten")
	f.IntVar(&codes, "codes", 0, "print this many fresh payment codes at start")
	f.StringVar(&customer, "customer", "", "customer of the printed codes; empty: the wallet's first default customer")
	logOpts.addFlags(cmd, "info", "log format: json or console")
	return cmd
}
