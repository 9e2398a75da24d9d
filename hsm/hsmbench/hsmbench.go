// Package hsmbench measures PIN translations per second: in-process on one goroutine and on every
// core, and over TCP against the payShield-style service with pipelining. `poswitch hsm bench` and
// `make bench` print its report next to the 2,500 calls per second of payShield 10K's top tier.
package hsmbench

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poswitch/poswitch/hsm"
	"github.com/poswitch/poswitch/hsm/service"
)

// PayShield10KTopTier is the calls per second of payShield 10K's highest performance licence.
const PayShield10KTopTier = 2500

// Options sets the size of a run. Zero values take the defaults.
type Options struct {
	// Duration of each measurement. Default 1 second.
	Duration time.Duration
	// Connections to the TCP service. Default 4.
	Connections int
	// Depth is the number of requests each connection keeps in flight. Default 32.
	Depth int
	// Cores used for the parallel in-process measurement. Default GOMAXPROCS.
	Cores int
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = time.Second
	}
	if o.Connections <= 0 {
		o.Connections = 4
	}
	if o.Depth <= 0 {
		o.Depth = 32
	}
	if o.Cores <= 0 {
		o.Cores = runtime.GOMAXPROCS(0)
	}
	return o
}

// Report holds the measured rates in PIN translations (TPK → ZPK, ISO 0 → ISO 0, TDES) per second.
type Report struct {
	Options
	InProcessOneGoroutine float64
	InProcessAllCores     float64
	TCPPipelined          float64
	TCPErrors             int64
}

// String prints one line per measurement, for `make bench`.
func (r Report) String() string {
	var b strings.Builder
	line := func(name string, rate float64) {
		fmt.Fprintf(&b, "hsm %-44s %10.0f PIN translations/s  (%6.0f× payShield 10K top tier of %d/s)\n", name, rate, rate/PayShield10KTopTier, PayShield10KTopTier)
	}
	line("in-process, 1 goroutine", r.InProcessOneGoroutine)
	line(fmt.Sprintf("in-process, %d cores", r.Cores), r.InProcessAllCores)
	fmt.Fprintf(&b, "hsm %-44s %10.0f PIN translations/s\n", "in-process, per core", r.InProcessAllCores/float64(r.Cores))
	line(fmt.Sprintf("TCP, %d connections × %d in flight", r.Connections, r.Depth), r.TCPPipelined)
	if r.TCPErrors > 0 {
		fmt.Fprintf(&b, "hsm TCP errors: %d\n", r.TCPErrors)
	}
	return b.String()
}

// fixture is the HSM, keys and one PIN block every measurement translates.
type fixture struct {
	h   *hsm.HSM
	req hsm.TranslatePIN
}

func newFixture(ctx context.Context) (*fixture, error) {
	h := hsm.NewDevelopment()
	tpk, _, err := h.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsagePIN, Algorithm: hsm.TDES})
	if err != nil {
		return nil, err
	}
	zpk, _, err := h.GenerateKey(ctx, hsm.KeySpec{Usage: hsm.UsagePIN, Algorithm: hsm.TDES})
	if err != nil {
		return nil, err
	}
	card := hsm.Card{PAN: "4012345678909"}
	block, err := h.EncryptPIN(ctx, hsm.EncryptPIN{Key: tpk, Format: hsm.ISO0, PIN: "1234", Card: card})
	if err != nil {
		return nil, err
	}
	return &fixture{h: h, req: hsm.TranslatePIN{SourceKey: tpk, SourceFormat: hsm.ISO0, PINBlock: block, DestKey: zpk, DestFormat: hsm.ISO0, Card: card}}, nil
}

// Run measures and returns the report. It listens on a loopback port for the TCP part.
func Run(ctx context.Context, opts Options) (Report, error) {
	opts = opts.withDefaults()
	r := Report{Options: opts}
	fx, err := newFixture(ctx)
	if err != nil {
		return r, fmt.Errorf("preparing keys: %w", err)
	}
	inProcess := func(ctx context.Context, _ int) error {
		_, err := fx.h.TranslatePIN(ctx, fx.req)
		return err
	}
	if r.InProcessOneGoroutine, err = measure(ctx, opts.Duration, 1, inProcess); err != nil {
		return r, err
	}
	if r.InProcessAllCores, err = measure(ctx, opts.Duration, opts.Cores, inProcess); err != nil {
		return r, err
	}
	r.TCPPipelined, r.TCPErrors, err = runTCP(ctx, fx, opts)
	return r, err
}

func runTCP(ctx context.Context, fx *fixture, opts Options) (float64, int64, error) {
	srv, err := service.NewServer(fx.h, service.Config{MaxInFlightPerConn: opts.Depth * 2})
	if err != nil {
		return 0, 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, fmt.Errorf("listening for the TCP benchmark: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() { stop(); <-served }()

	clients := make([]*service.Client, opts.Connections)
	for i := range clients {
		c, err := service.Dial(ctx, ln.Addr().String(), service.ClientConfig{MaxInFlight: opts.Depth})
		if err != nil {
			return 0, 0, err
		}
		defer c.Close()
		clients[i] = c
	}
	// Each connection gets Depth goroutines, so it keeps Depth requests in flight.
	var errs atomic.Int64
	rate, err := measure(ctx, opts.Duration, opts.Connections*opts.Depth, func(ctx context.Context, worker int) error {
		if _, err := clients[worker%len(clients)].TranslatePIN(ctx, fx.req); err != nil {
			errs.Add(1)
		}
		return nil
	})
	return rate, errs.Load(), err
}

// measure runs op on n goroutines (each told its index) for d and returns completed operations per
// second.
func measure(ctx context.Context, d time.Duration, n int, op func(ctx context.Context, worker int) error) (float64, error) {
	var (
		count    atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
		firstErr atomic.Value
	)
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := int64(0)
			for !stop.Load() {
				if err := op(ctx, w); err != nil {
					firstErr.CompareAndSwap(nil, err)
					break
				}
				local++
				if local%64 == 0 {
					count.Add(64)
					local = 0
				}
			}
			count.Add(local)
		}(w)
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, fmt.Errorf("benchmark operation failed: %w", err)
	}
	return float64(count.Load()) / elapsed.Seconds(), nil
}
