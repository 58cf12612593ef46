package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gavel-gw/gavel/engine/decision"
)

// registerFaults creates gavel_faults_injected_total with every kind at 0, so a drill's
// dashboard and alerts see the series before the first fault (rate() of a series that
// appears mid-drill misses its first increment).
func (m *Metrics) registerFaults() {
	m.faults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "faults_injected_total",
		Help: "Faults injected into upstream attempts by a chaos drill (a decision's fault), by kind.",
	}, []string{"kind"})
	for _, k := range decision.FaultKinds {
		m.faults.WithLabelValues(k)
	}
	m.reg.MustRegister(m.faults)
}

// FaultInjected counts one fault a drill injected.
func (m *Metrics) FaultInjected(kind string) {
	if m == nil {
		return
	}
	m.faults.WithLabelValues(kind).Inc()
}
