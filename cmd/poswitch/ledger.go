package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/ledger"
	"github.com/poswitch/poswitch/ledger/currency"
)

func init() { register(newLedgerCmd) }

// ledgerOpts are the flags every `poswitch ledger` subcommand shares.
type ledgerOpts struct {
	db      string
	asJSON  bool
	timeout time.Duration
}

func newLedgerCmd() *cobra.Command {
	o := &ledgerOpts{}
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Auditor and operator tools for the ledger: reports, verify, export, cut-over, the read-only HTTP API",
		Long: `Auditor and operator tools for the ledger (docs/ledger.md).

Reports, verify and export need only the read-only auditor role; cutover needs the application
role, migrate the owner role. The database URL comes from --db or $POSWITCH_LEDGER_DB.
Amounts are printed in major units of their currency (CNY 12.34, JPY 1234, KWD 1.234).`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.db, "db", os.Getenv("POSWITCH_LEDGER_DB"), "PostgreSQL URL (auditor role for reports; $POSWITCH_LEDGER_DB)")
	pf.BoolVar(&o.asJSON, "json", false, "print JSON instead of a table")
	pf.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	cmd.AddCommand(newLedgerTrialBalanceCmd(o), newLedgerStatementCmd(o), newLedgerTxnCmd(o), newLedgerSettlementCmd(o),
		newLedgerFeesCmd(o), newLedgerVerifyCmd(o), newLedgerExportCmd(o), newLedgerCutoverCmd(o), newLedgerMigrateCmd(o),
		newLedgerServeCmd(o), newLedgerSignatureCmd(o))
	return cmd
}

func (o *ledgerOpts) pool(ctx context.Context) (*pgxpool.Pool, error) {
	if o.db == "" {
		return nil, errors.New("no database: give --db or set POSWITCH_LEDGER_DB")
	}
	p, err := pgxpool.New(ctx, o.db)
	if err != nil {
		return nil, fmt.Errorf("connecting to the ledger: %w", err)
	}
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("connecting to the ledger: %w", err)
	}
	return p, nil
}

// run connects, runs f with a bounded context, and closes.
func (o *ledgerOpts) run(f func(ctx context.Context, p *pgxpool.Pool) error) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, o.timeout)
	defer cancel2()
	p, err := o.pool(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	return f(ctx, p)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// money prints minor units in major units of the currency (numeric code).
func money(minor int64, cur string) string {
	if c, ok := currency.ByNumeric(cur); ok {
		return c.Format(minor)
	}
	return fmt.Sprint(minor)
}

func alpha(cur string) string {
	if c, ok := currency.ByNumeric(cur); ok {
		return c.Alpha
	}
	return cur
}

func newLedgerTrialBalanceCmd(o *ledgerOpts) *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "trial-balance",
		Short: "Every account's balance at a time, and the per-currency totals (which must be zero)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var t time.Time
			if at != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, at); err != nil {
					return fmt.Errorf("--at %q: want an RFC 3339 time, e.g. 2025-01-31T23:00:00+08:00", at)
				}
			}
			read := func(ctx context.Context, p *pgxpool.Pool) (ledger.TrialBalance, error) {
				return ledger.TrialBalanceAt(ctx, p, t)
			}
			return report(o, cmd.OutOrStdout(), read, func(out io.Writer, tb ledger.TrialBalance) error {
				w := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintf(w, "ACCOUNT\tCCY\tDEBITS\tCREDITS\tBALANCE\t\n")
				for _, a := range tb.Accounts {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t\n", a.Account, alpha(a.Currency), money(a.Debits, a.Currency), money(a.Credits, a.Currency), money(a.Balance, a.Currency))
				}
				for _, c := range tb.Totals {
					fmt.Fprintf(w, "TOTAL\t%s\t%s\t%s\t%s\t\n", alpha(c.Currency), money(c.Debits, c.Currency), money(c.Credits, c.Currency), money(c.Difference, c.Currency))
				}
				fmt.Fprintf(w, "as of %s\t\t\t\t\t\n", tb.At.Format(time.RFC3339))
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "balance as of this RFC 3339 time (default now)")
	return cmd
}

func newLedgerStatementCmd(o *ledgerOpts) *cobra.Command {
	var account, cur string
	var limit int
	cmd := &cobra.Command{
		Use:   "statement",
		Short: "An account's postings with running balance",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if account == "" {
				return errors.New("--account is required (e.g. merchant_payable:M001, fee_income)")
			}
			if cur != "" {
				c, ok := currency.Lookup(cur)
				if !ok {
					return fmt.Errorf("--currency %q: unknown", cur)
				}
				cur = c.Numeric
			}
			read := func(ctx context.Context, p *pgxpool.Pool) ([]ledger.StatementLine, error) {
				return ledger.Statement(ctx, p, account, cur, limit)
			}
			return report(o, cmd.OutOrStdout(), read, func(out io.Writer, lines []ledger.StatementLine) error {
				w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
				fmt.Fprintf(w, "BOOKED\tCYCLE\tKIND\tTXN\tAMOUNT\tBALANCE\n")
				for _, l := range lines {
					c := cur
					if c == "" {
						c = "156"
					}
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", l.BookedAt.Format(time.RFC3339), l.Cycle, l.Kind, l.TxnKey, money(l.Amount, c), money(l.Balance, c))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "account name, e.g. merchant_payable:M001")
	cmd.Flags().StringVar(&cur, "currency", "", "currency (156 or CNY); default all")
	cmd.Flags().IntVar(&limit, "limit", 1000, "the last N postings")
	return cmd
}

// report reads one result from the ledger and prints it: as JSON with --json, else with table.
func report[T any](o *ledgerOpts, out io.Writer, read func(context.Context, *pgxpool.Pool) (T, error), table func(io.Writer, T) error) error {
	return o.run(func(ctx context.Context, p *pgxpool.Pool) error {
		v, err := read(ctx, p)
		if err != nil {
			return err
		}
		if o.asJSON {
			return printJSON(out, v)
		}
		return table(out, v)
	})
}

func printEntries(out io.Writer, es []ledger.EntryView) error {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, e := range es {
		fmt.Fprintf(w, "%s\t%s %s\tkey %s\n", e.BookedAt.Format(time.RFC3339), e.Kind, e.Status, e.Key)
		fmt.Fprintf(w, "\tamount %s %s fee %s\tmerchant %s terminal %s issuer %s stan %s rrn %s auth %s card %s cycle %d\n",
			money(e.Amount, e.Currency), alpha(e.Currency), money(e.Fee, e.Currency), e.Merchant, e.Terminal, e.Issuer, e.STAN, e.RRN, e.AuthCode, e.PANMasked, e.Cycle)
		if e.OriginalKey != "" {
			fmt.Fprintf(w, "\tacts on %s\n", e.OriginalKey)
		}
		if e.ClosedBy != "" {
			fmt.Fprintf(w, "\tclosed by %s\n", e.ClosedBy)
		}
		if e.Reason != "" {
			fmt.Fprintf(w, "\t%s\n", e.Reason)
		}
		for _, p := range e.Postings {
			side := "Dr"
			amt := p.Amount
			if amt < 0 {
				side, amt = "Cr", -amt
			}
			fmt.Fprintf(w, "\t  %s %s\t%s\n", side, p.Account, money(amt, p.Currency))
		}
	}
	return w.Flush()
}

func newLedgerTxnCmd(o *ledgerOpts) *cobra.Command {
	var tq ledger.TxnQuery
	cmd := &cobra.Command{
		Use:   "txn",
		Short: "One transaction's life cycle (purchase, reversal, refunds, …) by RRN, or by terminal and STAN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tq.RRN == "" && (tq.Terminal == "" || tq.STAN == "") {
				return errors.New("give --rrn, or --terminal and --stan")
			}
			read := func(ctx context.Context, p *pgxpool.Pool) ([]ledger.EntryView, error) {
				return ledger.Transactions(ctx, p, tq)
			}
			return report(o, cmd.OutOrStdout(), read, func(out io.Writer, es []ledger.EntryView) error {
				if len(es) == 0 {
					fmt.Fprintln(out, "no such transaction")
					return nil
				}
				return printEntries(out, es)
			})
		},
	}
	cmd.Flags().StringVar(&tq.RRN, "rrn", "", "retrieval reference number (field 37)")
	cmd.Flags().StringVar(&tq.Terminal, "terminal", "", "terminal id (field 41)")
	cmd.Flags().StringVar(&tq.STAN, "stan", "", "system trace audit number (field 11)")
	return cmd
}

func printCycle(out io.Writer, rep ledger.CycleReport) error {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	state := "open"
	if !rep.Open && rep.ClosedAt != nil {
		state = "closed " + rep.ClosedAt.Format(time.RFC3339) + " (" + rep.Reason + ")"
	}
	if rep.AlreadyClosed {
		fmt.Fprintf(w, "cycle %d already closed by a scheduled cut-over (another node)\n", rep.Cycle)
		return w.Flush()
	}
	fmt.Fprintf(w, "cycle %d, %s", rep.Cycle, state)
	if rep.BusinessDate != nil {
		fmt.Fprintf(w, ", business date %s", rep.BusinessDate.Format("2006-01-02"))
	}
	fmt.Fprintf(w, "\n\nMERCHANT\tCCY\tGROSS\tFEE\tREFUNDS\tFEE RETURNED\tCHARGEBACKS\tNET\tACCOUNT\tVALUE DATE\n")
	for _, p := range rep.Payouts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Merchant, alpha(p.Currency), money(p.Gross, p.Currency), money(p.Fee, p.Currency),
			money(p.Refunds, p.Currency), money(p.FeeReturned, p.Currency), money(p.Chargebacks, p.Currency), money(p.Net, p.Currency),
			p.SettlementAccount, p.ValueDate.Format("2006-01-02"))
	}
	fmt.Fprintf(w, "\nISSUER\tCCY\tDEBITS\tCREDITS\tNET (owes us)\n")
	for _, i := range rep.Issuers {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", i.Issuer, alpha(i.Currency), money(i.Debits, i.Currency), money(i.Credits, i.Currency), money(i.Net, i.Currency))
	}
	return w.Flush()
}

func newLedgerSettlementCmd(o *ledgerOpts) *cobra.Command {
	var cycle int64
	cmd := &cobra.Command{
		Use:   "settlement",
		Short: "A closed cycle's merchant payouts and issuer net positions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			read := func(ctx context.Context, p *pgxpool.Pool) (ledger.CycleReport, error) {
				return ledger.SettlementReport(ctx, p, cycle)
			}
			return report(o, cmd.OutOrStdout(), read, printCycle)
		},
	}
	cmd.Flags().Int64Var(&cycle, "cycle", 0, "cycle number (default: the newest closed cycle)")
	return cmd
}

func newLedgerFeesCmd(o *ledgerOpts) *cobra.Command {
	var cycle int64
	cmd := &cobra.Command{
		Use:   "fees",
		Short: "Fees charged and returned per cycle, merchant and currency",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			read := func(ctx context.Context, p *pgxpool.Pool) ([]ledger.FeeLine, error) {
				return ledger.FeeReport(ctx, p, cycle)
			}
			return report(o, cmd.OutOrStdout(), read, func(out io.Writer, fs []ledger.FeeLine) error {
				w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
				fmt.Fprintf(w, "CYCLE\tMERCHANT\tCCY\tCHARGED\tRETURNED\tNET\n")
				for _, f := range fs {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", f.Cycle, f.Merchant, alpha(f.Currency), money(f.Charged, f.Currency), money(f.Returned, f.Currency), money(f.Net, f.Currency))
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().Int64Var(&cycle, "cycle", 0, "only this cycle (default all)")
	return cmd
}

func newLedgerVerifyCmd(o *ledgerOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Recompute the hash chains and all balances; report the first divergence (exit 1 if any)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(func(ctx context.Context, p *pgxpool.Pool) error {
				rep, err := ledger.Verify(ctx, p)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if o.asJSON {
					if err := printJSON(out, rep); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(out, "%d chains, %d batches, %d entries, %d postings checked in %s\n", rep.Chains, rep.Batches, rep.Entries, rep.Postings, rep.Took.Round(time.Millisecond))
					for c, s := range rep.TrialBalance {
						fmt.Fprintf(out, "trial balance %s: %s\n", alpha(c), money(s, c))
					}
					for c, h := range rep.Heads {
						fmt.Fprintf(out, "head %s %s\n", c, h)
					}
					if rep.OK() {
						fmt.Fprintln(out, "OK: every batch hash, chain link, entry and balance checks out")
					} else {
						fmt.Fprintf(out, "DIVERGENCE: %s\n", rep.Problems[0])
						for _, pr := range rep.Problems[1:] {
							fmt.Fprintf(out, "  also: %s\n", pr)
						}
					}
				}
				if !rep.OK() {
					return fmt.Errorf("ledger verify: %d problems, first: %s", len(rep.Problems), rep.Problems[0])
				}
				return nil
			})
		},
	}
}

func newLedgerExportCmd(o *ledgerOpts) *cobra.Command {
	var format, table string
	var cycle int64
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export journal entries or postings as CSV or JSON lines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(func(ctx context.Context, p *pgxpool.Pool) error {
				return ledger.Export(ctx, p, cmd.OutOrStdout(), table, format, cycle)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "csv", "csv or json (one object per line)")
	cmd.Flags().StringVar(&table, "table", "entries", "entries or postings")
	cmd.Flags().Int64Var(&cycle, "cycle", 0, "only this cycle (default all)")
	return cmd
}

func newLedgerCutoverCmd(o *ledgerOpts) *cobra.Command {
	var date string
	cmd := &cobra.Command{
		Use:   "cutover",
		Short: "Close the open settlement cycle now (manual cut-over; needs the application role)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bd := time.Now()
			if date != "" {
				var err error
				if bd, err = time.Parse("2006-01-02", date); err != nil {
					return fmt.Errorf("--business-date %q: want YYYY-MM-DD", date)
				}
			} else if _, d, err := (ledger.CutoverSchedule{}).Next(time.Now()); err == nil {
				bd = d
			}
			read := func(ctx context.Context, p *pgxpool.Pool) (ledger.CycleReport, error) {
				return ledger.Cutover(ctx, p, "manual", bd, nil)
			}
			return report(o, cmd.OutOrStdout(), read, printCycle)
		},
	}
	cmd.Flags().StringVar(&date, "business-date", "", "business date of the closed cycle (default: the date of the next scheduled cut-over, 23:00 Asia/Shanghai)")
	return cmd
}

func newLedgerMigrateCmd(o *ledgerOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the ledger schema migrations (needs the owner role; the switch also does this at start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.db == "" {
				return errors.New("no database: give --db or set POSWITCH_LEDGER_DB")
			}
			ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
			defer cancel()
			if err := ledger.Migrate(ctx, o.db); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ledger schema is up to date")
			return nil
		},
	}
}

func newLedgerServeCmd(o *ledgerOpts) *cobra.Command {
	var listen, tokenFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the read-only auditor HTTP JSON API (bearer token from $POSWITCH_LEDGER_TOKEN or --token-file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token := os.Getenv("POSWITCH_LEDGER_TOKEN")
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				token = strings.TrimSpace(string(b))
			}
			log, err := newLogger("json", "info")
			if err != nil {
				return err
			}
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			p, err := o.pool(ctx)
			if err != nil {
				return err
			}
			defer p.Close()
			h, err := ledger.NewAuditHandler(p, token, log)
			if err != nil {
				return err
			}
			srv := &http.Server{Addr: listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- srv.ListenAndServe() }()
			log.Info("ledger audit API listening", zap.String("addr", listen))
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
				sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer scancel()
				return srv.Shutdown(sctx)
			}
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8089", "address to listen on")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the bearer token (at least 16 characters)")
	return cmd
}

func newLedgerSignatureCmd(o *ledgerOpts) *cobra.Command {
	var entry, key, out string
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "signature",
		Short: "A transaction's e-signature (the PNG its cardholder signed), by entry id; without --entry, the signatures received",
		Long: `Fetch the e-signature kept with a journal entry (docs/ledger.md, Signatures) and write it as the
PNG the terminal uploaded; its SHA-256 is checked against the one recorded when it was received.
Without --entry and --key, list the signatures received in the last --since (v_signatures).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			return o.run(func(ctx context.Context, p *pgxpool.Pool) error {
				if entry == "" && key == "" {
					sigs, err := ledger.Signatures(ctx, p, time.Now().Add(-since), 0)
					if err != nil {
						return err
					}
					if o.asJSON {
						return printJSON(w, sigs)
					}
					tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "ENTRY\tRECEIVED\tMERCHANT\tTERMINAL\tCARD\tAMOUNT\tRRN\tBYTES\tSHA-256")
					for _, s := range sigs {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s %s\t%s\t%d\t%s\n", s.EntryID, s.ReceivedAt.Format(time.RFC3339), s.Merchant,
							s.Terminal, s.PANMasked, alpha(s.Currency), money(s.Amount, s.Currency), s.RRN, s.Size, s.SHA256)
					}
					return tw.Flush()
				}
				var sig ledger.Signature
				var ok bool
				var err error
				if entry != "" {
					id, perr := ledger.ParseEntryID(entry)
					if perr != nil {
						return fmt.Errorf("--entry: %w", perr)
					}
					sig, ok, err = ledger.SignatureOf(ctx, p, id)
				} else {
					sig, ok, err = ledger.SignatureByKey(ctx, p, key)
				}
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("no signature kept for that transaction")
				}
				if out == "" {
					return errors.New("give --out FILE.png to write the image")
				}
				if err := os.WriteFile(out, sig.Image, 0o600); err != nil {
					return fmt.Errorf("writing the signature: %w", err)
				}
				if o.asJSON {
					return printJSON(w, sig)
				}
				fmt.Fprintf(w, "entry %s  %s %s  %s %s  card %s  RRN %s\nwrote %s: %d bytes, sha256 %s\n", sig.EntryID, sig.Merchant,
					sig.Terminal, alpha(sig.Currency), money(sig.Amount, sig.Currency), sig.PANMasked, sig.RRN, out, sig.Size, sig.SHA256)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&entry, "entry", "", "journal entry id (UUID) of the signed transaction")
	cmd.Flags().StringVar(&key, "key", "", "or the transaction's identity (txn_key)")
	cmd.Flags().StringVar(&out, "out", "", "write the PNG here")
	cmd.Flags().DurationVar(&since, "since", 24*time.Hour, "without --entry: list the signatures received this long ago until now")
	return cmd
}
