package pipeline

import (
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/telemetry"
	"github.com/gavel-gw/gavel/engine/tokens"
)

func chargeFixture() (*Pipeline, *Exchange) {
	s := New(Options{Metrics: telemetry.NewMetrics()})
	rev := &policy.Revision{ID: "r1", Data: &policy.Data{Catalog: map[string]policy.CatalogEntry{
		"a/m1": {Provider: "a", Model: "m1", Price: tokens.Price{InputMicroUSDPerMTok: 2_500_000, OutputMicroUSDPerMTok: 10_000_000}},
	}}}
	x := &Exchange{route: "a/m1", rev: rev, caller: &auth.Caller{Record: policy.KeyRecord{Team: "search"}},
		decision: &decision.Decision{Allow: true, AB: &decision.AB{Experiment: "exp1", Arm: "b"}},
		usage:    &adapters.Usage{PromptTokens: 1000, CompletionTokens: 200}}
	return s, x
}

func TestChargePricesUsageAtTheCatalogRate(t *testing.T) {
	tests := []struct {
		name   string
		route  string
		usage  *adapters.Usage
		want   int64
		priced bool
	}{
		// 1000 × 2.5 + 200 × 10 micro-USD per thousand tokens.
		{"catalog route", "a/m1", &adapters.Usage{PromptTokens: 1000, CompletionTokens: 200}, 4500, true},
		{"route not in the catalog costs nothing", "z/m9", &adapters.Usage{PromptTokens: 1000, CompletionTokens: 200}, 0, true},
		{"no usage (failed or denied)", "none", nil, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, x := chargeFixture()
			x.route, x.usage = tc.route, tc.usage
			cost, priced := s.charge(x)
			if cost != tc.want || priced != tc.priced {
				t.Errorf("charge = %d, %v; want %d, %v", cost, priced, tc.want, tc.priced)
			}
		})
	}
}

// charge runs once per request on its way out.
func BenchmarkCharge(b *testing.B) {
	s, x := chargeFixture()
	b.ReportAllocs()
	for b.Loop() {
		s.charge(x)
	}
}
