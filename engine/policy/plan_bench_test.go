package policy

import (
	"context"
	"testing"
)

// BenchmarkPlan is one evaluation of data.gavel.plan for the default bundle with every
// catalog provider configured: what the planner pays off the request path per rebuild.
func BenchmarkPlan(b *testing.B) {
	rev := mustEmbedded(b)
	prov := providers(b, allUp)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rev.Plan(context.Background(), prov); err != nil {
			b.Fatal(err)
		}
	}
}
