// Command poswitch is the one binary of the project: the switch, the HSM service, the simulators,
// the ledger tools and the demo that wires them all together are its subcommands.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// subcommands is filled by each subcommand's file (one file per subcommand), so that adding a command
// touches only its own file.
var subcommands []func() *cobra.Command

func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "poswitch",
		Short:         "ISO 8583 switch and acquirer host with a software HSM and a double-entry ledger",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "poswitch:", err)
		os.Exit(1)
	}
}
