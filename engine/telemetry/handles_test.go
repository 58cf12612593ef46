package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a counter's value.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// The cached children are the vectors' own: what the per-request methods count is what
// /metrics shows, label for label, however often a child is reused.
func TestCachedChildrenCountInTheirVectors(t *testing.T) {
	m := NewMetrics()
	for range 3 {
		m.Request("chat", "openai/gpt-4o-mini", "200", "", false, 10*time.Millisecond)
		m.Attempt("openai", "gpt-4o-mini", "ok", 5*time.Millisecond)
		m.Tokens("openai", "gpt-4o-mini", "ml", 40, 12)
		m.Cost("openai", "gpt-4o-mini", "ml", 7)
		m.Decision("allow", time.Millisecond)
	}
	m.Request("chat", "openai/gpt-4o-mini", "429", "", true, time.Millisecond)
	for _, tc := range []struct {
		got  float64
		want float64
		name string
	}{
		{value(t, m.requests.WithLabelValues("chat", "openai/gpt-4o-mini", "200", "")), 3, "requests 200"},
		{value(t, m.requests.WithLabelValues("chat", "openai/gpt-4o-mini", "429", "")), 1, "requests 429"},
		{value(t, m.attempts.WithLabelValues("openai", "gpt-4o-mini", "ok")), 3, "attempts"},
		{value(t, m.tokens.WithLabelValues("openai", "gpt-4o-mini", "ml", "input")), 120, "input tokens"},
		{value(t, m.tokens.WithLabelValues("openai", "gpt-4o-mini", "ml", "output")), 36, "output tokens"},
		{value(t, m.costMicroUSD.WithLabelValues("openai", "gpt-4o-mini", "ml")), 21, "cost"},
		{value(t, m.decisions.WithLabelValues("allow")), 3, "decisions"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	for _, stream := range []string{"false", "true"} {
		var d dto.Metric
		if err := m.requestSeconds.WithLabelValues("chat", stream).(prometheus.Histogram).Write(&d); err != nil {
			t.Fatal(err)
		}
		if want := map[string]uint64{"false": 3, "true": 1}[stream]; d.GetHistogram().GetSampleCount() != want {
			t.Errorf("request durations with stream=%s: %d, want %d", stream, d.GetHistogram().GetSampleCount(), want)
		}
	}
	// Invalid label values fail as client_golang fails them, cached or not.
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "UTF-8") {
			t.Errorf("invalid UTF-8 in a label value: recovered %v, want client_golang's panic", r)
		}
	}()
	m.Attempt("openai", "bad\xff", "ok", 0)
}

// BenchmarkRequestMetrics is what a request's metrics cost: the request, its decision, one
// attempt, tokens and cost.
func BenchmarkRequestMetrics(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.Request("chat", "openai/gpt-4o-mini", "200", "", false, 10*time.Millisecond)
		m.Decision("allow", time.Millisecond)
		m.Attempt("openai", "gpt-4o-mini", "ok", 5*time.Millisecond)
		m.Tokens("openai", "gpt-4o-mini", "ml", 40, 12)
		m.Cost("openai", "gpt-4o-mini", "ml", 7)
	}
}
