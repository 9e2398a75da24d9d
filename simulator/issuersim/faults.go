package issuersim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Faults makes the simulated issuer misbehave the way real issuer hosts do, so that tests can watch
// the switch time out, reverse and reconnect. The shares are fractions in [0, 1] of the financial
// requests, advices and reversals (0100/0120/0200/0220/0400/0420 and their repeats) whose answer is
// dropped, delayed or replaced by closing the connection; together they may not exceed 1. Echo and
// sign-off are never faulted. Every faulted request is processed first (an approved purchase IS
// debited), as when a real issuer's answer is lost on the way back.
type Faults struct {
	DropShare    float64       // answer never sent
	DelayShare   float64       // answer sent Delay later than usual
	Delay        time.Duration // how much later a delayed answer is sent, e.g. past the switch's timeout
	CloseShare   float64       // connection closed instead of answering
	RefuseSignOn bool          // 0800 sign-on (70 = 001) answered 0810 with 91: the link never comes up
	// Seed chooses which requests are faulted. The n-th faultable request since the faults were set
	// gets a decision that depends on (Seed, n) only, so a run of N requests faults the same number of
	// them whatever the order they arrive in.
	Seed uint64
}

// Validate checks the shares and the delay.
func (f Faults) Validate() error {
	for _, s := range []struct {
		name  string
		share float64
	}{{"drop share", f.DropShare}, {"delay share", f.DelayShare}, {"close share", f.CloseShare}} {
		if math.IsNaN(s.share) || s.share < 0 || s.share > 1 {
			return fmt.Errorf("issuer-sim faults: %s %v is not in [0, 1]", s.name, s.share)
		}
	}
	if sum := f.DropShare + f.DelayShare + f.CloseShare; sum > 1 {
		return fmt.Errorf("issuer-sim faults: drop, delay and close shares add up to %v, more than 1", sum)
	}
	if f.Delay < 0 {
		return fmt.Errorf("issuer-sim faults: delay %v must not be negative", f.Delay)
	}
	if f.DelayShare > 0 && f.Delay == 0 {
		return fmt.Errorf("issuer-sim faults: delay share %v needs a delay greater than 0", f.DelayShare)
	}
	return nil
}

// any reports whether some answer may be faulted.
func (f Faults) any() bool { return f.DropShare > 0 || f.DelayShare > 0 || f.CloseShare > 0 }

// fate is what happens to the answer of one request.
type fate int

const (
	fateAnswer fate = iota
	fateDrop
	fateDelay
	fateClose
)

func (f fate) String() string {
	return [...]string{"answered", "dropped", "delayed", "closed"}[f]
}

// faultState is one setting of the faults and the count of requests drawn under it; SetFaults swaps a
// new one in atomically, which restarts the sequence.
type faultState struct {
	faults Faults
	drawn  atomic.Uint64
}

// draw decides the fate of the next faultable request.
func (st *faultState) draw() fate {
	f := st.faults
	if !f.any() {
		return fateAnswer
	}
	n := st.drawn.Add(1) - 1
	// A PCG stream per request number: the decision for n depends on (Seed, n) alone.
	pcg := rand.NewPCG(f.Seed, n)
	u := float64(pcg.Uint64()>>11) / (1 << 53)
	switch {
	case u < f.DropShare:
		return fateDrop
	case u < f.DropShare+f.DelayShare:
		return fateDelay
	case u < f.DropShare+f.DelayShare+f.CloseShare:
		return fateClose
	}
	return fateAnswer
}

// faultable reports whether a request of this MTI may be faulted: financial requests, advices and
// reversals with their repeats, never network management.
func faultable(mti string) bool {
	if len(mti) != 4 {
		return false
	}
	switch mti[1] {
	case '1', '2', '4':
	default:
		return false
	}
	return mti[2] == '0' || mti[2] == '2'
}

// SetFaults replaces the faults at run time; requests already read keep the fate they drew.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.faults.Store(&faultState{faults: f})
	s.log.Info("issuer-sim faults set", zap.Float64("drop_share", f.DropShare),
		zap.Float64("delay_share", f.DelayShare), zap.Duration("delay", f.Delay),
		zap.Float64("close_share", f.CloseShare), zap.Bool("refuse_sign_on", f.RefuseSignOn),
		zap.Uint64("seed", f.Seed))
	return nil
}

// Faults returns the faults in force.
func (s *Server) Faults() Faults { return s.faults.Load().faults }
