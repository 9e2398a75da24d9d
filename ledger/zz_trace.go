package ledger

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// TEMPORARY tracing for performance work; removed before hand-off.
var trMu sync.Mutex
var trSum = map[string]time.Duration{}
var trN = map[string]int{}

func tr(stage string, t0 time.Time) time.Time {
	now := time.Now()
	trMu.Lock()
	trSum[stage] += now.Sub(t0)
	trN[stage]++
	trMu.Unlock()
	return now
}

func TraceDump() {
	if os.Getenv("LEDGER_TRACE") == "" {
		return
	}
	trMu.Lock()
	defer trMu.Unlock()
	var ks []string
	for k := range trSum {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(os.Stderr, "%-20s n=%6d mean=%v total=%v\n", k, trN[k], trSum[k]/time.Duration(trN[k]), trSum[k])
	}
	trSum = map[string]time.Duration{}
	trN = map[string]int{}
}
