package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// canaryMetrics follow a canary candidate bundle (engine/canary): sampled requests it
// decided, those it decided as the active bundle did, its disagreements by kind, and the
// samples dropped because its queue was full.
type canaryMetrics struct {
	evaluations   prometheus.Counter
	agreements    prometheus.Counter
	disagreements *prometheus.CounterVec
	dropped       prometheus.Counter
}

func (m *Metrics) registerCanary() {
	c := &canaryMetrics{
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gavel", Name: "policy_canary_evaluations_total",
			Help: "Sampled live requests the canary candidate bundle decided beside the active one (never executed).",
		}),
		agreements: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gavel", Name: "policy_canary_agreements_total",
			Help: "Canary evaluations whose decision equals the active bundle's in every field (reasons aside).",
		}),
		disagreements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gavel", Name: "policy_canary_disagreements_total",
			Help: "Canary evaluations that differ from the active bundle's decision, by decision field (allow, targets, deny, limits, ab, shadow, …) or error; one evaluation counts once per field that differs.",
		}, []string{"kind"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gavel", Name: "policy_canary_dropped_total",
			Help: "Sampled requests not evaluated by the canary because its queue was full (the request is never slowed).",
		}),
	}
	m.reg.MustRegister(c.evaluations, c.agreements, c.disagreements, c.dropped)
	m.canary = c
}

// InitCanary publishes every disagreement kind at 0, so dashboards and alerts see the
// series from the start (rate() of a series that appears with its first increment misses
// that increment). The app calls it when a canary is configured.
func (m *Metrics) InitCanary(kinds []string) {
	if m == nil {
		return
	}
	for _, k := range kinds {
		m.canary.disagreements.WithLabelValues(k)
	}
}

// CanaryEvaluated counts one canary evaluation: agreed when kinds is empty, else one
// disagreement per kind.
func (m *Metrics) CanaryEvaluated(kinds []string) {
	if m == nil {
		return
	}
	m.canary.evaluations.Inc()
	if len(kinds) == 0 {
		m.canary.agreements.Inc()
		return
	}
	for _, k := range kinds {
		m.canary.disagreements.WithLabelValues(k).Inc()
	}
}

// CanaryDropped counts a sample the canary's full queue turned away.
func (m *Metrics) CanaryDropped() {
	if m == nil {
		return
	}
	m.canary.dropped.Inc()
}
