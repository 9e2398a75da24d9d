package terminalsim_test

import (
	"context"
	"testing"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/simulator/terminalsim"
)

// BenchmarkDirectPath measures terminal-sim straight to issuer-sim (no switch): the ceiling the
// switch's end-to-end figure is compared with.
func BenchmarkDirectPath(b *testing.B) {
	srv, err := issuersim.New(issuersim.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	b.ResetTimer()
	sum, err := terminalsim.Run(context.Background(), terminalsim.Config{
		Addr: srv.Addr(), Dialect: "issuer-link", Conns: 10, InFlightPerConn: 16, Count: b.N, Cards: cards.Load(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(sum.Rate(), "auth/s")
	b.ReportMetric(float64(sum.Percentile(50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(sum.Percentile(99).Microseconds()), "p99-µs")
}
