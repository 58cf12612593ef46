package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// experimentMetrics compare A/B arms, and an experiment's primary traffic with its shadow
// (gavel_shadow_*), on latency and cost. They are separate from gavel_requests_total and
// gavel_cost_micro_usd_total so those do not multiply their series by every arm, and only
// requests inside an experiment pay for them.
type experimentMetrics struct {
	seconds *prometheus.HistogramVec
	cost    *prometheus.CounterVec
}

func newExperimentMetrics(reg prometheus.Registerer) *experimentMetrics {
	e := &experimentMetrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gavel", Name: "experiment_request_duration_seconds",
			Help:    "Latency of client requests inside an experiment, to the last byte, by experiment and arm (\"\" for a request only shadowed).",
			Buckets: upstreamBuckets,
		}, []string{"experiment", "arm"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gavel", Name: "experiment_cost_micro_usd_total",
			Help: "Cost at catalog prices of client requests inside an experiment, in micro-USD, by experiment and arm.",
		}, []string{"experiment", "arm"}),
	}
	reg.MustRegister(e.seconds, e.cost)
	return e
}

// ExperimentRequest records the latency of a request inside an experiment; no-op outside one.
func (m *Metrics) ExperimentRequest(experiment, arm string, d time.Duration) {
	if m == nil || m.experiments == nil || experiment == "" {
		return
	}
	m.experiments.seconds.WithLabelValues(experiment, arm).Observe(d.Seconds())
}

// ExperimentCost counts the cost of a request inside an experiment; no-op outside one.
func (m *Metrics) ExperimentCost(experiment, arm string, microUSD int64) {
	if m == nil || m.experiments == nil || experiment == "" || microUSD <= 0 {
		return
	}
	m.experiments.cost.WithLabelValues(experiment, arm).Add(float64(microUSD))
}
