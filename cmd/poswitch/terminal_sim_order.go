package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/poswitch/poswitch/ledger/currency"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

// newTerminalSimOrderCmd is `terminal-sim order`: one merchant-presented QR order, shown as a QR code
// the customer scans, polled until it is paid, cancelled or expired (docs/channels.md).
func newTerminalSimOrderCmd() *cobra.Command {
	var (
		addr, dialect, tid, mid, cur, amountText, png string
		tpdu, cancel                                  bool
		pollEvery, deadline                           time.Duration
		pixels                                        int
	)
	cmd := &cobra.Command{
		Use:   "order",
		Short: "Ask the switch for a dynamic QR order, show its QR code (and a PNG), poll until paid",
		Long: "order sends an 0600 order request (processing code 710000) for --amount in --currency from\n" +
			"terminal --tid, prints the EMVCo payload and draws it as a QR code in the terminal; --png also\n" +
			"writes it as a PNG. It then polls the order (720000) every --poll until the switch answers\n" +
			"paid (00), cancelled (17) or expired (68), and prints the receipt. --cancel cancels it instead.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ok := currency.ByNumeric(cur)
			if !ok {
				return fmt.Errorf("--currency %q is not an ISO 4217 numeric code this switch knows", cur)
			}
			amount, err := c.Parse(amountText)
			if err != nil || amount <= 0 {
				return fmt.Errorf("--amount %q is not a positive amount in %s (%d decimals)", amountText, c.Alpha, c.Exponent)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			client, err := terminalsim.Dial(ctx, addr, dialect, tpdu)
			if err != nil {
				return err
			}
			defer client.Close()
			out := cmd.OutOrStdout()
			t := terminalsim.Terminal{TID: tid, MID: mid}
			stan := int(time.Now().UnixMicro() % 999_999)
			o, _, err := terminalsim.CreateOrder(ctx, client, t, amount, cur, stan)
			if err != nil {
				return err
			}
			art, err := terminalsim.QRText(o.Payload)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "order %s for %s %s\npayload %s\n%s", o.ID, c.Alpha, c.Format(amount), o.Payload, art)
			if png != "" {
				if err := terminalsim.WriteQRPNG(png, o.Payload, pixels); err != nil {
					return err
				}
				fmt.Fprintf(out, "QR written to %s\n", png)
			}
			if cancel {
				resp, err := terminalsim.CancelOrder(ctx, client, o, stan+1)
				if err != nil {
					return err
				}
				rc, _ := resp.GetString(39)
				fmt.Fprintf(out, "cancel: %s\n", rc)
				return nil
			}
			next := stan + 1
			res, err := terminalsim.PollOrder(ctx, client, o, terminalsim.PollConfig{Interval: pollEvery, Deadline: deadline,
				NextSTAN: func() int { next++; return next % 1_000_000 }})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "order %s after %d polls\n", res.Status, res.Polls)
			if res.Status == terminalsim.OrderPaid {
				fmt.Fprint(out, terminalsim.NewReceipt(t, res.Request, res.Response))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8583", "switch address")
	f.StringVar(&dialect, "dialect", "iso87a", "wire dialect: iso87a, iso87a-bb, iso87b")
	f.BoolVar(&tpdu, "tpdu", false, "put a 5-byte TPDU after the length prefix")
	f.StringVar(&tid, "tid", "TERM0001", "terminal ID (field 41)")
	f.StringVar(&mid, "mid", "MERCHANT0000001", "merchant ID (field 42)")
	f.StringVar(&cur, "currency", "156", "ISO 4217 numeric currency")
	f.StringVar(&amountText, "amount", "12.34", "amount in the currency's units, e.g. 12.34")
	f.StringVar(&png, "png", "", "also write the QR code as a PNG to this file")
	f.IntVar(&pixels, "pixels", 256, "PNG width and height")
	f.BoolVar(&cancel, "cancel", false, "cancel the order right after showing it")
	f.DurationVar(&pollEvery, "poll", 500*time.Millisecond, "status poll interval")
	f.DurationVar(&deadline, "deadline", 6*time.Minute, "give up polling after")
	return cmd
}
