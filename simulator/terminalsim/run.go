package terminalsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/poswitch/poswitch/simulator/cards"
	"github.com/poswitch/poswitch/specs"
)

// Bounds and defaults of a run.
const (
	defaultTimeout      = 30 * time.Second
	maxConns            = 10_000
	maxInFlightPerConn  = 1_000
	maxLatencyTracked   = 5 * time.Minute
	progressInterval    = 500 * time.Millisecond
	redialBackoff       = 200 * time.Millisecond
	defaultCountIfEmpty = 1
)

// Config configures a run of simulated terminals.
type Config struct {
	Addr            string
	Dialect         string // a specs dialect name
	TPDU            bool
	Conns           int           // TCP connections; 0: 1
	InFlightPerConn int           // requests in flight per connection; 0: 1
	Count           int           // purchases to send in total; 0 with Duration 0: 1
	Duration        time.Duration // stop sending after this long; 0: until Count
	Rate            float64       // purchases per second over all connections; 0: as fast as possible
	Terminals       []Terminal    // nil: DefaultTerminals(Conns)
	Cards           []cards.Card  // nil: cards.IssuerDecided()
	Currency        string        // ISO 4217 numeric; "": each card's account currency
	Amount          int64         // minor units; 0: random within cards.StandardAmountRange
	Verbose         bool          // print a receipt per transaction
	Out             io.Writer     // progress line, receipts and nothing else; nil: no output
	Log             *zap.Logger
	Timeout         time.Duration // per purchase; 0: 30s
	Seed            uint64        // for card and amount choice; runs with the same seed choose the same
	// PINPads gives terminals (by TID) a PIN pad; every PINEvery-th purchase of such a terminal then
	// carries the card's PIN (field 52, and the KSN in 62 for DUKPT pads). PINEvery 0 means 1.
	PINPads  map[string]PINPad
	PINEvery int
}

// Summary is what a run measured.
type Summary struct {
	Sent     int64
	Answered int64
	Codes    map[string]int64 // answered purchases per response code
	Timeouts int64
	Errors   int64                   // requests that failed otherwise (connection lost, bad response)
	Latency  *hdrhistogram.Histogram // microseconds, answered purchases only
	Elapsed  time.Duration
	// Expected counts, per response code, what the catalogue says the purchases sent should get.
	Expected map[string]int64
	// Mismatches counts answers whose code differs from the card's catalogue outcome.
	Mismatches int64
}

// Rate is answered purchases per second.
func (s Summary) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Answered) / s.Elapsed.Seconds()
}

// Percentile returns a latency percentile (e.g. 99.9).
func (s Summary) Percentile(p float64) time.Duration {
	if s.Latency == nil {
		return 0
	}
	return time.Duration(s.Latency.ValueAtQuantile(p)) * time.Microsecond
}

func formatCodes(codes map[string]int64) string {
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, codes[k]))
	}
	return strings.Join(parts, " ")
}

func (s Summary) String() string {
	return fmt.Sprintf("sent %d answered %d timeouts %d errors %d in %.2fs: %.0f/s, latency p50 %v p99 %v p99.9 %v; codes %s; mismatches %d",
		s.Sent, s.Answered, s.Timeouts, s.Errors, s.Elapsed.Seconds(), s.Rate(),
		s.Percentile(50), s.Percentile(99), s.Percentile(99.9), formatCodes(s.Codes), s.Mismatches)
}

// run is the shared state of one Run.
type run struct {
	cfg   Config
	log   *zap.Logger
	start time.Time

	issued   atomic.Int64 // purchases handed to workers
	stans    []atomic.Int64
	stanBase int64 // where every terminal's STAN sequence starts in this run
	limiter  *pacer

	mu      sync.Mutex // guards sum and the histogram
	sum     Summary
	outMu   sync.Mutex
	outTTY  bool
	lastLen int
}

// Run sends purchases as cfg says and returns what it measured. It returns early, with what it has,
// when ctx ends.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := normalise(&cfg); err != nil {
		return Summary{}, err
	}
	r := &run{
		cfg: cfg, log: cfg.Log, start: time.Now(),
		stans: make([]atomic.Int64, len(cfg.Terminals)),
		// Real terminals keep their STAN across sessions; starting where the clock says keeps two
		// runs in the same second from repeating each other's STANs (the issuer would see duplicates).
		stanBase: time.Now().UnixMicro() % 999_999,
		sum: Summary{Codes: map[string]int64{}, Expected: map[string]int64{},
			Latency: hdrhistogram.New(1, maxLatencyTracked.Microseconds(), 3)},
	}
	if cfg.Rate > 0 {
		r.limiter = &pacer{interval: time.Duration(float64(time.Second) / cfg.Rate)}
	}
	if f, ok := cfg.Out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			r.outTTY = true
		}
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}

	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if r.outTTY {
		progressWG.Add(1)
		go func() { defer progressWG.Done(); r.progress(progressDone) }()
	}

	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for i := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.connection(ctx, i); err != nil {
				errOnce.Do(func() { firstErr = err })
			}
		}()
	}
	wg.Wait()
	close(progressDone)
	progressWG.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Elapsed = time.Since(r.start)
	if r.outTTY {
		r.clearProgress()
	}
	if r.sum.Sent == 0 && firstErr != nil {
		return r.sum, firstErr
	}
	return r.sum, nil
}

func normalise(cfg *Config) error {
	if cfg.Addr == "" {
		return errors.New("terminal-sim: no address to send to")
	}
	if _, err := specs.DialectByName(cfg.Dialect); err != nil {
		return fmt.Errorf("terminal-sim: %w", err)
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 1
	}
	if cfg.InFlightPerConn <= 0 {
		cfg.InFlightPerConn = 1
	}
	if cfg.Conns > maxConns || cfg.InFlightPerConn > maxInFlightPerConn {
		return fmt.Errorf("terminal-sim: %d connections × %d in flight exceeds the bounds %d × %d",
			cfg.Conns, cfg.InFlightPerConn, maxConns, maxInFlightPerConn)
	}
	if cfg.Count < 0 || cfg.Duration < 0 || cfg.Rate < 0 || cfg.Amount < 0 {
		return errors.New("terminal-sim: count, duration, rate and amount must not be negative")
	}
	if cfg.Count == 0 && cfg.Duration == 0 {
		cfg.Count = defaultCountIfEmpty
	}
	if cfg.Terminals == nil {
		cfg.Terminals = DefaultTerminals(cfg.Conns)
	}
	if len(cfg.Terminals) == 0 {
		return errors.New("terminal-sim: no terminals")
	}
	for _, t := range cfg.Terminals {
		if len(t.TID) != 8 || len(t.MID) != 15 {
			return fmt.Errorf("terminal-sim: terminal %q/%q: TID must be 8 and MID 15 characters", t.TID, t.MID)
		}
	}
	if cfg.Cards == nil {
		cfg.Cards = cards.IssuerDecided()
	}
	if len(cfg.Cards) == 0 {
		return errors.New("terminal-sim: no cards")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return nil
}

// next reserves the next purchase number, or false when Count is reached.
func (r *run) next() (int64, bool) {
	n := r.issued.Add(1)
	if r.cfg.Count > 0 && n > int64(r.cfg.Count) {
		return 0, false
	}
	return n, true
}

// connection runs one TCP connection with InFlightPerConn workers, redialling if it drops.
func (r *run) connection(ctx context.Context, connIndex int) error {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(connIndex)))
	var rngMu sync.Mutex
	for ctx.Err() == nil && !r.countReached() {
		c, err := Dial(ctx, r.cfg.Addr, r.cfg.Dialect, r.cfg.TPDU)
		if err != nil {
			r.log.Warn("terminal-sim dial failed", zap.String("addr", r.cfg.Addr), zap.Error(err))
			if r.issued.Load() == 0 {
				return err
			}
			select {
			case <-ctx.Done():
			case <-time.After(redialBackoff):
			}
			continue
		}
		var wg sync.WaitGroup
		for w := range r.cfg.InFlightPerConn {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Terminals are spread over connections; each worker of a connection takes its own.
				ti := (connIndex*r.cfg.InFlightPerConn + w) % len(r.cfg.Terminals)
				r.worker(ctx, c, ti, rng, &rngMu)
			}()
		}
		wg.Wait()
		_ = c.Close()
	}
	return nil
}

func (r *run) countReached() bool {
	return r.cfg.Count > 0 && r.issued.Load() >= int64(r.cfg.Count)
}

func (r *run) worker(ctx context.Context, c *Client, ti int, rng *rand.Rand, rngMu *sync.Mutex) {
	t := r.cfg.Terminals[ti]
	for ctx.Err() == nil {
		select {
		case <-c.Done():
			return
		default:
		}
		if _, ok := r.next(); !ok {
			return
		}
		if r.limiter != nil && !r.limiter.wait(ctx) {
			return
		}
		rngMu.Lock()
		card := r.cfg.Cards[rng.IntN(len(r.cfg.Cards))]
		amount := r.cfg.Amount
		if amount == 0 {
			lo, hi := cards.StandardAmountRange[0], cards.StandardAmountRange[1]
			amount = lo + rng.Int64N(hi-lo+1)
		}
		rngMu.Unlock()
		stan := int((r.stanBase+r.stans[ti].Add(1)-1)%999_999) + 1
		req := NewPurchase(t, card, amount, r.cfg.Currency, stan)
		if pad := r.cfg.PINPads[t.TID]; pad != nil && card.PIN != "" && stan%max(r.cfg.PINEvery, 1) == 0 {
			if err := WithPIN(ctx, req, pad, card.PAN, card.PIN); err != nil {
				r.log.Warn("terminal-sim PIN pad", zap.String("tid", t.TID), zap.Error(err))
			}
		}
		r.send(ctx, c, t, card, amount, req)
	}
}

func (r *run) send(ctx context.Context, c *Client, t Terminal, card cards.Card, amount int64, req *iso8583.Message) {
	r.mu.Lock()
	r.sum.Sent++
	r.sum.Expected[card.Outcome]++
	r.mu.Unlock()
	sendCtx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	start := time.Now()
	resp, err := c.Send(sendCtx, req)
	elapsed := time.Since(start)
	cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		code, _ := resp.GetString(39)
		r.sum.Answered++
		r.sum.Codes[code]++
		if code != card.Outcome {
			r.sum.Mismatches++
		}
		_ = r.sum.Latency.RecordValue(max(elapsed.Microseconds(), 1))
		if r.cfg.Verbose && r.cfg.Out != nil {
			r.receipt(t, card, amount, req, resp)
		}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		r.sum.Timeouts++
	case ctx.Err() != nil:
		r.sum.Sent-- // the run ended while this purchase was in flight: not counted either way
		r.sum.Expected[card.Outcome]--
	default:
		r.sum.Errors++
		r.log.Warn("terminal-sim purchase failed", zap.String("tid", t.TID), zap.Error(err))
	}
}

// receipt prints one transaction as the terminal's slip (NewReceipt: PAN masked 6+4, entry mode,
// authorization code, RRN, whether a signature is needed). Called with r.mu held.
func (r *run) receipt(t Terminal, _ cards.Card, _ int64, req, resp *iso8583.Message) {
	r.write(time.Now().Format("2006-01-02 15:04:05") + "\n" + NewReceipt(t, req, resp).String())
}

func (r *run) write(s string) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	if r.outTTY && r.lastLen > 0 {
		fmt.Fprintf(r.cfg.Out, "\r%s\r", strings.Repeat(" ", r.lastLen))
		r.lastLen = 0
	}
	fmt.Fprint(r.cfg.Out, s)
}

func (r *run) progress(done <-chan struct{}) {
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		r.mu.Lock()
		s := r.sum
		line := fmt.Sprintf("%6.1fs sent %d answered %d %.0f/s p50 %v p99 %v timeouts %d  %s",
			time.Since(r.start).Seconds(), s.Sent, s.Answered, float64(s.Answered)/time.Since(r.start).Seconds(),
			time.Duration(s.Latency.ValueAtQuantile(50))*time.Microsecond,
			time.Duration(s.Latency.ValueAtQuantile(99))*time.Microsecond, s.Timeouts, formatCodes(s.Codes))
		r.mu.Unlock()
		r.outMu.Lock()
		pad := max(r.lastLen-len(line), 0)
		fmt.Fprintf(r.cfg.Out, "\r%s%s", line, strings.Repeat(" ", pad))
		r.lastLen = len(line)
		r.outMu.Unlock()
	}
}

func (r *run) clearProgress() {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	if r.lastLen > 0 {
		fmt.Fprintf(r.cfg.Out, "\r%s\r", strings.Repeat(" ", r.lastLen))
		r.lastLen = 0
	}
}

// pacer spaces purchases evenly to a rate over all workers.
type pacer struct {
	mu       sync.Mutex
	next     time.Time
	interval time.Duration
}

func (p *pacer) wait(ctx context.Context) bool {
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	p.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// FormatAmount writes minor units with the currency exponent: 1234 with exponent 2 is "12.34".
func FormatAmount(amount int64, exponent int) string {
	if exponent <= 0 {
		return fmt.Sprintf("%d", amount)
	}
	unit := int64(1)
	for range exponent {
		unit *= 10
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%d.%0*d", sign, amount/unit, exponent, amount%unit)
}
