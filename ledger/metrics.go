package ledger

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ledger's Prometheus collectors, registered per Handler.
type metrics struct {
	granted      prometheus.Counter
	spent        prometheus.Counter
	refunded     prometheus.Counter
	adjusted     *prometheus.CounterVec // by direction
	insufficient prometheus.Counter
	conflicts    prometheus.Counter
	postings     *prometheus.CounterVec   // by kind and outcome
	spendLatency *prometheus.HistogramVec // by outcome
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		granted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_ledger_credits_granted_total", Help: "Credits granted to users (replays not counted).",
		}),
		spent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_ledger_credits_spent_total", Help: "Credits spent by users (replays not counted).",
		}),
		refunded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_ledger_credits_refunded_total", Help: "Credits refunded to users.",
		}),
		adjusted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_ledger_credits_adjusted_total", Help: "Credits moved by admin adjustments.",
		}, []string{"direction"}),
		insufficient: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_ledger_insufficient_credits_total", Help: "Debits refused for insufficient credits.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authd_ledger_reference_conflicts_total", Help: "Postings refused because their reference was already used with another body.",
		}),
		postings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authd_ledger_postings_total", Help: "Ledger postings by kind and outcome.",
		}, []string{"kind", "outcome"}),
		spendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "authd_ledger_spend_duration_seconds", Help: "Latency of spend postings, database transaction included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.granted, m.spent, m.refunded, m.adjusted, m.insufficient, m.conflicts, m.postings, m.spendLatency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe counts one posting's outcome.
func (m *metrics) observe(kind Kind, dir Direction, res Result, err error) {
	outcome := "ok"
	switch {
	case err != nil:
		outcome = failureCode(err)
		if outcome == "" {
			outcome = "error"
		}
	case res.Replayed:
		outcome = "replayed"
	}
	m.postings.WithLabelValues(string(kind), outcome).Inc()
	switch outcome {
	case "insufficient_credits":
		m.insufficient.Inc()
	case "reference_conflict":
		m.conflicts.Inc()
	}
	if outcome != "ok" {
		return
	}
	amount := float64(res.Transaction.Amount)
	switch kind {
	case KindGrant:
		m.granted.Add(amount)
	case KindSpend:
		m.spent.Add(amount)
	case KindRefund:
		m.refunded.Add(amount)
	case KindAdjust:
		m.adjusted.WithLabelValues(string(dir)).Add(amount)
	}
}
