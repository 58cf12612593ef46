package telemetry

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestShadowMetrics(t *testing.T) {
	var none *Metrics // every method is a no-op on nil
	none.ShadowSimilarity("p", "m", "e", 1)
	none.ShadowUsage("p", "m", "e", 1, 1, 1)
	none.ShadowSkipped("p", "m", "e", "budget")
	none.Hedge("p", "m", "won")

	m := NewMetrics()
	m.ShadowSimilarity("s", "m1", "exp1", 0.93)
	m.ShadowUsage("s", "m1", "exp1", 12, 0, 18)
	m.ShadowSkipped("s", "m1", "exp1", "budget")
	m.Hedge("b", "m1", "won")
	m.Hedge("a", "m1", "lost")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, tc := range []struct{ name, want string }{
		{"similarity bucket", `gavel_shadow_similarity_bucket{experiment="exp1",model="m1",provider="s",le="0.95"} 1`},
		{"similarity below", `gavel_shadow_similarity_bucket{experiment="exp1",model="m1",provider="s",le="0.9"} 0`},
		{"input tokens", `gavel_shadow_tokens_total{direction="input",experiment="exp1",model="m1",provider="s"} 12`},
		{"cost", `gavel_shadow_cost_micro_usd_total{experiment="exp1",model="m1",provider="s"} 18`},
		{"skipped for budget", `gavel_shadow_requests_total{experiment="exp1",model="m1",outcome="budget",provider="s"} 1`},
		{"hedge won", `gavel_hedges_total{model="m1",outcome="won",provider="b"} 1`},
		{"hedge lost", `gavel_hedges_total{model="m1",outcome="lost",provider="a"} 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(text, tc.want+"\n") {
				t.Errorf("missing %s", tc.want)
			}
		})
	}
	if strings.Contains(text, `direction="output"`) {
		t.Error("zero output tokens made a series")
	}
}
