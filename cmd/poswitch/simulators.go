package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

// simLog holds the --log-format and --log-level flags of the simulator subcommands.
type simLog struct{ format, level string }

// addFlags registers the two flags on cmd with the given default level and format help.
func (l *simLog) addFlags(cmd *cobra.Command, level, formatHelp string) {
	cmd.Flags().StringVar(&l.format, "log-format", "json", formatHelp)
	cmd.Flags().StringVar(&l.level, "log-level", level, "log level: debug, info, warn, error")
}

func (l *simLog) logger() (*zap.Logger, error) { return newLogger(l.format, l.level) }

// serveUntilInterrupted lets a started simulator host run until SIGINT or SIGTERM, then closes it.
func serveUntilInterrupted(name string, srv io.Closer, log *zap.Logger) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	if err := srv.Close(); err != nil {
		log.Warn(name+" closing", zap.Error(err))
	}
}

// printCounts prints each map's counts (per MTI, per response code) as "  key n" lines, keys sorted.
func printCounts(out io.Writer, counts ...map[string]int64) {
	for _, m := range counts {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(out, "  %s %d\n", k, m[k])
		}
	}
}
