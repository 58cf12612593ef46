package telemetry

import (
	"strings"
	"testing"
)

// series reads one counter from the registry: name plus sorted label pairs, e.g.
// `gavel_decision_log_dropped_total{sink="buffer"}`.
func series(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "gavel_decision_log_") {
			continue
		}
		for _, c := range mf.GetMetric() {
			var labels []string
			for _, l := range c.GetLabel() {
				labels = append(labels, l.GetName()+"="+`"`+l.GetValue()+`"`)
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = c.GetCounter().GetValue()
		}
	}
	return out
}

func TestDecisionLogMetrics(t *testing.T) {
	var nilM *Metrics
	nilM.DecisionLogEvents("file", "ok", 1) // nil-safe like every other method
	nilM.DecisionLogDropped("buffer", 1)

	m := NewMetrics()
	m.DecisionLogEvents("file", "ok", 3)
	m.DecisionLogEvents("service", "error", 2)
	m.DecisionLogEvents("file", "ok", 0)
	m.DecisionLogDropped("buffer", 4)
	m.DecisionLogDropped("service", 2)
	got := series(t, m)
	want := map[string]float64{
		`gavel_decision_log_events_total{outcome="ok",sink="file"}`:       3,
		`gavel_decision_log_events_total{outcome="error",sink="service"}`: 2,
		`gavel_decision_log_dropped_total{sink="buffer"}`:                 4,
		`gavel_decision_log_dropped_total{sink="service"}`:                2,
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			if got[name] != w {
				t.Errorf("got %v, want %v (all: %v)", got[name], w, got)
			}
		})
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want exactly %v", got, want)
	}
}
