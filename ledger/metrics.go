package ledger

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	bookings    *prometheus.CounterVec
	conflicts   prometheus.Counter
	unavailable prometheus.Counter
	batches     prometheus.Counter
	batchSize   prometheus.Histogram
	commit      prometheus.Histogram
	// blindRetries counts blind batches the database refused (a repeat of a booked key, a cycle
	// closed, a chain moved) that were tried again read-first.
	blindRetries prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		bookings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "poswitch_ledger_bookings_total",
			Help: "Bookings by kind and outcome (booked, noop, refused, duplicate, conflict, failed)."}, []string{"kind", "outcome"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "poswitch_ledger_identity_conflicts_total",
			Help: "Bookings refused because their identity was booked before with different content. Alert on any."}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{Name: "poswitch_ledger_unavailable_total",
			Help: "Batches failed because the database did not answer or confirm the commit."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "poswitch_ledger_batches_total", Help: "Committed batches."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "poswitch_ledger_batch_bookings",
			Help: "Bookings per committed batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "poswitch_ledger_batch_seconds",
			Help: "Time from batch start to commit.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		blindRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "poswitch_ledger_blind_batch_retries_total",
			Help: "Batches written without reading first that the database refused and that were retried read-first."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.bookings, m.conflicts, m.unavailable, m.batches, m.batchSize, m.commit, m.blindRetries} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					panic("ledger: registering metrics: " + err.Error())
				}
			}
		}
	}
	return m
}
