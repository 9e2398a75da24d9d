// Package pipeline runs a transaction through the switch's named steps, in the spirit of jPOS's
// TransactionManager participants: each step reads and enriches the canonical transaction and may end
// it with a response code. The order of steps lives in one place (node.newPipeline); each step lives
// in its own file and can be tested alone with a hand-built transaction.
package pipeline

import (
	"context"
	"time"

	"github.com/poswitch/poswitch/switch/txn"
)

// Step is one participant.
type Step interface {
	Name() string
	Run(ctx context.Context, t *txn.Transaction)
}

// Observer hears how long each step took, for metrics.
type Observer func(step string, took time.Duration)

// Pipeline is an ordered list of steps.
type Pipeline struct {
	steps   []Step
	observe Observer
}

// New builds a pipeline from steps in order.
func New(observe Observer, steps ...Step) *Pipeline {
	return &Pipeline{steps: steps, observe: observe}
}

// Process runs the steps until one ends the transaction. A transaction that no step answered is a
// programming error in the step list and is answered 96 rather than left without a response.
func (p *Pipeline) Process(ctx context.Context, t *txn.Transaction) {
	for _, s := range p.steps {
		if t.Ended() {
			break
		}
		start := time.Now()
		s.Run(ctx, t)
		if p.observe != nil {
			p.observe(s.Name(), time.Since(start))
		}
	}
	if t.Response == "" {
		t.End(txn.RCSystemError, "no step answered the transaction")
	}
}

// Steps names the steps in order, for logs and docs.
func (p *Pipeline) Steps() []string {
	names := make([]string, len(p.steps))
	for i, s := range p.steps {
		names[i] = s.Name()
	}
	return names
}
