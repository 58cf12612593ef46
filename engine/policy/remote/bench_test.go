package remote

import (
	"context"
	"testing"
)

// BenchmarkPollNotModified is the cost of one check that finds the bundle unchanged: what
// every replica pays per polling period (off the request path).
func BenchmarkPollNotModified(b *testing.B) {
	f := newFixture(b, build(b, "r1", decisionRego("a"), nil, ""), nil)
	ctx := context.Background()
	if err := f.client.Poll(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := f.client.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPollNewBundle is a check that downloads, activates and persists a small bundle.
func BenchmarkPollNewBundle(b *testing.B) {
	bodies := [][]byte{build(b, "r1", decisionRego("a"), nil, ""), build(b, "r2", decisionRego("b"), nil, "")}
	f := newFixture(b, bodies[0], nil)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		f.srv.set(bodies[i%2])
		if err := f.client.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
