package policy

import (
	"context"
	"testing"
)

// BenchmarkDecisionCache is BenchmarkDecision's typical request under a bundle that caches
// every name (exact, coalesced), at temperature 0 (cacheable: the decision carries a cache
// field, from the plan's precomputed entry) and at 0.7 (not cacheable): what deciding a
// cache hit costs over deciding a miss.
func BenchmarkDecisionCache(b *testing.B) {
	cb, err := LoadEmbedded()
	if err != nil {
		b.Fatal(err)
	}
	cb.Data["gavel"].(map[string]any)["cache"] = map[string]any{"default": map[string]any{"mode": "exact", "ttl_s": 3600, "coalesce": true}}
	rev, err := New().Activate(context.Background(), cb, "cache")
	if err != nil {
		b.Fatal(err)
	}
	prov, plan, caller := benchSetup(b, rev)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		temp  float64
		cache bool
	}{{"cacheable", 0, true}, {"not_cacheable", 0.7, false}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				temp := tc.temp
				r := Request{Model: "smart", EstInputTokens: 520, ID: "req", Endpoint: "chat", Bucket: 4242, Sample: 9000, Temperature: &temp, Turns: 1}
				r.Messages = []Message{{Role: "system", Text: "You are helpful."}, {Role: "user", Text: "Tell me about routing LLM traffic with policies."}}
				in := Input{Request: r, Caller: caller, Providers: prov, Plan: plan, NowNS: 1}
				d, err := rev.Decide(ctx, in.Value())
				if err != nil || !d.Allow || (d.Cache != nil) != tc.cache {
					b.Fatal(err, d)
				}
			}
		})
	}
}
