package node

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus series; each node has its own registry (no global state).
type metrics struct {
	registry     *prometheus.Registry
	transactions *prometheus.CounterVec
	latency      prometheus.Histogram
	steps        *prometheus.HistogramVec
	formatErrors prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "poswitch_transactions_total", Help: "Terminal requests answered, by type and response code.",
		}, []string{"type", "rc"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "poswitch_transaction_seconds", Help: "Time from a request's arrival to its answer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "poswitch_step_seconds", Help: "Time spent in each pipeline step.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}, []string{"step"}),
		formatErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "poswitch_format_errors_total", Help: "Requests answered 30 because a field could not be read.",
		}),
	}
	m.registry.MustRegister(m.transactions, m.latency, m.steps, m.formatErrors)
	return m
}
