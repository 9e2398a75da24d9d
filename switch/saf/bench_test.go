package saf_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/poswitch/poswitch/ledger/pgtest"
	"github.com/poswitch/poswitch/simulator/issuersim"
	"github.com/poswitch/poswitch/switch/saf"
)

// BenchmarkEnqueue is one committed reversal per op, one after another (what a timeout costs the
// terminal's answer on top of the issuer timeout).
func BenchmarkEnqueue(b *testing.B) {
	db := pgtest.NewDatabase(b)
	q := saf.NewQueue(pgtest.Pool(b, db.App), saf.Config{}, nil)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := q.Enqueue(ctx, reversal(fmt.Sprintf("%06d", i%1_000_000), fmt.Sprintf("01%08d", i/1_000_000), 100)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDrain is one item claimed, sent to issuer-sim over TCP, answered and settled per op, by
// one node with the default batch.
func BenchmarkDrain(b *testing.B) {
	db := pgtest.NewDatabase(b)
	srv := startSim(b, issuersim.Faults{})
	link := startLink(b, srv.Addr(), time.Second, true)
	q := saf.NewQueue(pgtest.Pool(b, db.App), saf.Config{PollInterval: 5 * time.Millisecond}, nil)
	ctx := context.Background()
	for i := range b.N {
		if err := q.Enqueue(ctx, reversal(fmt.Sprintf("%06d", i%1_000_000), fmt.Sprintf("01%08d", i/1_000_000), 100)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	stop := running(q, map[string]saf.Sender{issuer: link})
	for {
		st, err := q.Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.Done == int64(b.N) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "items/s")
}
