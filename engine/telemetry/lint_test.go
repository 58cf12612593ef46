package telemetry_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/gavel-gw/gavel/engine/telemetry"
)

// exercise records one sample through every method, so every family is gathered and linted.
// A new collector without a call here fails TestMetricsArePromlintClean by name.
func exercise(m *telemetry.Metrics) {
	m.Request("chat", "a/m1", "200", "b", true, time.Second)
	m.Overhead(time.Millisecond)
	m.Decision("allow", time.Millisecond)
	m.DecisionRules([]string{"route.alias:chat"})
	m.Attempt("a", "m1", "ok", time.Second)
	m.TTFT("a", "m1", time.Second)
	m.Retry("a", "m1")
	m.Fallback("a/m1", "b/m1")
	m.BreakerState("a", "m1", 2)
	m.Bundle("rev-1", "embedded", time.Now())
	m.StreamError("a", "m1")
	m.Tokens("a", "m1", "search", 10, 5)
	m.Shadow("s", "m1", "exp1", "ok", time.Second)
	m.ShadowDropped()
	m.Cost("a", "m1", "search", 42)
	m.Budget("team", "search", "month", 10, 90)
	m.LedgerUnavailable("reserve")
	m.ExperimentRequest("exp1", "b", time.Second)
	m.ExperimentCost("exp1", "b", 42)
	m.DecisionLogEvents("file", "ok", 3)
	m.DecisionLogDropped("buffer", 1)
	m.BundleActivation(true, 20*time.Millisecond)
	m.BundleDownloadError("verify")
	m.BundleChecked(time.Now())
	m.ShadowSimilarity("s", "m1", "exp1", 0.8)
	m.ShadowUsage("s", "m1", "exp1", 10, 5, 42)
	m.ShadowSkipped("s", "m1", "exp1", "budget")
	m.Hedge("b", "m1", "won")
	m.CacheRequest("hit", "search")
	m.CacheSaved("search", 42)
	m.CacheBytes(1024)
	m.CacheEvicted("size")
	m.CacheRemoteError("get")
	m.SemanticLookup("hit", "search", 0.97, true)
	m.SemanticIndexSize(3, 18432)
	m.SemanticIndexEvicted("size")
	m.InitCanary([]string{"targets", "error"})
	m.CanaryEvaluated(nil)
	m.CanaryEvaluated([]string{"targets"})
	m.CanaryDropped()
}

func TestMetricsArePromlintClean(t *testing.T) {
	m := telemetry.NewMetrics()
	exercise(m)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	gathered := map[string]bool{}
	for _, mf := range mfs {
		gathered[mf.GetName()] = true
	}
	names := m.Names()
	if len(names) < 20 {
		t.Fatalf("Names() found only %d families: %v", len(names), names)
	}
	for _, n := range names {
		if !gathered[n] {
			t.Errorf("%s has no sample: record one in exercise() so it is linted", n)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestNilMetricsAreSafe(t *testing.T) {
	exercise(nil)
}

func TestTokensAndCostCarryTheTeam(t *testing.T) {
	m := telemetry.NewMetrics()
	m.Tokens("a", "m1", "search", 10, 0)
	m.Tokens("a", "m1", "", 3, 4)
	m.Cost("a", "m1", "search", 7)
	m.Cost("a", "m1", "", 0) // nothing to count: no series for a free request
	got := samples(t, m, "gavel_tokens_total", "gavel_cost_micro_usd_total")
	want := map[string]float64{
		`gavel_tokens_total{direction="input",model="m1",provider="a",team="search"}`: 10,
		`gavel_tokens_total{direction="input",model="m1",provider="a",team=""}`:       3,
		`gavel_tokens_total{direction="output",model="m1",provider="a",team=""}`:      4,
		`gavel_cost_micro_usd_total{model="m1",provider="a",team="search"}`:           7,
	}
	if !maps.Equal(got, want) {
		t.Errorf("samples = %v\nwant %v", got, want)
	}
}

// samples renders the counters of the named families as name{labels} → value.
func samples(t *testing.T, m *telemetry.Metrics, names ...string) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, s := range mf.GetMetric() {
			var ls []string
			for _, l := range s.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = s.GetCounter().GetValue()
		}
	}
	return out
}

func TestRuleName(t *testing.T) {
	tests := []struct{ reason, want string }{
		{"route.alias:smart", "route.alias"},
		{"route.skipped_unavailable", "route.skipped_unavailable"},
		{"budget.soft:team-month->cheap", "budget.soft"},
		{"experiment:exp1:b", "experiment"},
		{"compliance.deny_term:some secret words", "compliance.deny_term"},
		{"", telemetry.OtherRule},
		{":value", telemetry.OtherRule},
		{"has space", telemetry.OtherRule},
		{"quote\"d", telemetry.OtherRule},
		{strings.Repeat("r", 65), telemetry.OtherRule},
		{strings.Repeat("r", 64) + ":x", strings.Repeat("r", 64)},
	}
	for _, tc := range tests {
		t.Run(tc.reason, func(t *testing.T) {
			if got := telemetry.RuleName(tc.reason); got != tc.want {
				t.Errorf("RuleName(%q) = %q, want %q", tc.reason, got, tc.want)
			}
		})
	}
}

func TestDecisionRulesAreBounded(t *testing.T) {
	m := telemetry.NewMetrics()
	m.DecisionRules([]string{"route.alias:chat", "route.alias:solo", "shadow:exp1"})
	if got := ruleCount(t, m, "route.alias"); got != 2 {
		t.Errorf("route.alias = %v, want 2 (values after ':' fold into the rule)", got)
	}
	for i := range telemetry.MaxRules + 50 {
		m.DecisionRules([]string{fmt.Sprintf("rule%d:x", i), "route.alias:chat"})
	}
	if n := len(samples(t, m, "gavel_decision_rules_total")); n != telemetry.MaxRules+1 {
		t.Errorf("%d series, want %d rules and %q", n, telemetry.MaxRules, telemetry.OtherRule)
	}
	// Two rules were known before the flood: 98 more fit, the remaining 52 are "other".
	if got := ruleCount(t, m, telemetry.OtherRule); got != 52 {
		t.Errorf("other = %v, want 52", got)
	}
	if got := ruleCount(t, m, "route.alias"); got != 2+telemetry.MaxRules+50 {
		t.Errorf("a known rule stopped counting past the cap: %v", got)
	}
}

func ruleCount(t *testing.T, m *telemetry.Metrics, rule string) float64 {
	t.Helper()
	return samples(t, m, "gavel_decision_rules_total")[fmt.Sprintf("gavel_decision_rules_total{rule=%q}", rule)]
}

// A decision typically names two or three rules; their cost is on every request.
func BenchmarkDecisionRules(b *testing.B) {
	m := telemetry.NewMetrics()
	reasons := []string{"route.alias:chat", "experiment:exp1:b", "shadow:exp1"}
	b.ReportAllocs()
	for b.Loop() {
		m.DecisionRules(reasons)
	}
}
