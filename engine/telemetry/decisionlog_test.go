package telemetry

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDecisionLogMetrics(t *testing.T) {
	var nilM *Metrics
	nilM.DecisionLogEvents("file", "ok", 1) // nil-safe: gavel runs without metrics in some tools
	nilM.DecisionLogDropped("buffer", 1)

	m := NewMetrics()
	m.DecisionLogEvents("file", "ok", 3)
	m.DecisionLogEvents("service", "error", 2)
	m.DecisionLogEvents("file", "ok", 0)
	m.DecisionLogDropped("buffer", 4)
	m.DecisionLogDropped("service", 2)
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"file ok", testutil.ToFloat64(m.dlog.events.WithLabelValues("file", "ok")), 3},
		{"service error", testutil.ToFloat64(m.dlog.events.WithLabelValues("service", "error")), 2},
		{"buffer dropped", testutil.ToFloat64(m.dlog.dropped.WithLabelValues("buffer")), 4},
		{"service dropped", testutil.ToFloat64(m.dlog.dropped.WithLabelValues("service")), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if n, err := testutil.GatherAndCount(m.Registry(), "gavel_decision_log_events_total", "gavel_decision_log_dropped_total"); err != nil || n != 4 {
		t.Errorf("registered series: %d, %v", n, err)
	}
}
