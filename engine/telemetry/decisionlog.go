package telemetry

import "github.com/prometheus/client_golang/prometheus"

// decisionLogMetrics count what becomes of decision-log events, per sink.
type decisionLogMetrics struct {
	events  *prometheus.CounterVec
	dropped *prometheus.CounterVec
}

func (m *Metrics) registerDecisionLog() {
	m.dlog.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "decision_log_events_total",
		Help: "Decision-log events by sink (console, file, service) and outcome (ok, error).",
	}, []string{"sink", "outcome"})
	m.dlog.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "decision_log_dropped_total",
		Help: "Decision-log events lost, by sink; sink=\"buffer\" is the request path's queue being full.",
	}, []string{"sink"})
	m.reg.MustRegister(m.dlog.events, m.dlog.dropped)
}

// DecisionLogEvents counts n events a sink delivered (outcome ok) or failed to (error).
func (m *Metrics) DecisionLogEvents(sink, outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.dlog.events.WithLabelValues(sink, outcome).Add(float64(n))
}

// DecisionLogDropped counts n events a sink (or the queue, "buffer") lost.
func (m *Metrics) DecisionLogDropped(sink string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.dlog.dropped.WithLabelValues(sink).Add(float64(n))
}

// InitDecisionLog publishes the counters of the queue ("buffer") and the configured sinks
// at 0, so the first drop is an increase alerts can see rather than a new series.
func (m *Metrics) InitDecisionLog(sinks []string) {
	if m == nil {
		return
	}
	m.dlog.dropped.WithLabelValues("buffer")
	for _, s := range sinks {
		m.dlog.dropped.WithLabelValues(s)
		m.dlog.events.WithLabelValues(s, "ok")
		m.dlog.events.WithLabelValues(s, "error")
	}
}
