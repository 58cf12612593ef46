package telemetry

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of gavel_stream_continuations_total: a stream that failed after its first bytes
// under a decision with limits.midstream "continue".
const (
	// ContinuationOK: another target continued the answer and the client's stream ended
	// normally.
	ContinuationOK = "ok"
	// ContinuationFailed: no target could continue it (none left, all failing), or the
	// continuation failed too with no target left: the stream ended with an error event.
	ContinuationFailed = "failed"
	// ContinuationUnsupported: the stream could not be continued at all (several choices):
	// it ended with an error event.
	ContinuationUnsupported = "unsupported"
)

// ContinuationOutcomes lists the outcomes, in the order metrics list them.
var ContinuationOutcomes = []string{ContinuationOK, ContinuationFailed, ContinuationUnsupported}

// registerContinuations creates gavel_stream_continuations_total with every outcome at 0,
// so dashboards and alerts see the series before the first continuation.
func (m *Metrics) registerContinuations() {
	m.continuations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "stream_continuations_total",
		Help: "Streams that failed after their first bytes and that the decision asked to continue (limits.midstream), by outcome.",
	}, []string{"outcome"})
	for _, o := range ContinuationOutcomes {
		m.continuations.WithLabelValues(o)
	}
	m.reg.MustRegister(m.continuations)
}

// StreamContinuation counts one continuation's outcome.
func (m *Metrics) StreamContinuation(outcome string) {
	if m == nil {
		return
	}
	m.continuations.WithLabelValues(outcome).Inc()
}
