package hsmbench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRunReportsEveryMeasurement runs a very short benchmark: it checks the plumbing (real HSM, real
// TCP), not the figures, which belong to `make bench`.
func TestRunReportsEveryMeasurement(t *testing.T) {
	r, err := Run(context.Background(), Options{Duration: 50 * time.Millisecond, Connections: 2, Depth: 4})
	if err != nil {
		t.Fatal(err)
	}
	if r.InProcessOneGoroutine <= 0 || r.InProcessAllCores <= 0 || r.TCPPipelined <= 0 || r.TCPErrors != 0 {
		t.Fatalf("report %+v", r)
	}
	s := r.String()
	for _, want := range []string{"in-process, 1 goroutine", "per core", "TCP, 2 connections × 4 in flight", "payShield 10K"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}
