package drills

import (
	"context"
	"slices"
	"testing"
	"time"
)

// The soak: steady mixed load (streamed and not, with and without fallback) for 5 s in the
// short form and 60 s in the long one. Goroutines and heap are sampled after every round;
// neither may grow from the first third of the run to the last.
func TestDrillSoak(t *testing.T) {
	w := newWorld(t)
	p := w.startGavel(w.yaml(cfg{}))
	c := httpClient(10 * time.Second)
	send := func(ctx context.Context, i int) outcome {
		return chat(ctx, c, p.URL, w.key, []string{"chat", "solo"}[i%2], i%3 == 0)
	}
	load(100, 8, 2*time.Second, send) // warm up: pools, caches, the planner
	r := begin(t, "soak", p)
	dur := time.Duration(scale(5, 60)) * time.Second
	var gor []int
	var heap []float64
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		res := load(200, 8, 2*time.Second, send)
		r.add(res)
		if res.ok != res.requests || res.hung != 0 {
			t.Fatalf("soak round: %d of %d ok, %d hung, %v; first: %s", res.ok, res.requests, res.hung, res.errors, res.firstErr())
		}
		m := p.metrics()
		gor = append(gor, int(m["go_goroutines"]))
		heap = append(heap, m["go_memstats_heap_inuse_bytes"])
	}
	r.done(p, c)
	if len(gor) < 3 {
		t.Fatalf("only %d rounds in %v", len(gor), dur)
	}
	third := len(gor) / 3
	firstG, lastG := slices.Max(gor[:third]), slices.Max(gor[len(gor)-third:])
	firstH, lastH := slices.Max(heap[:third]), slices.Max(heap[len(heap)-third:])
	t.Logf("%d rounds: goroutines %v, heap in use %.1f → %.1f MB", len(gor), gor, firstH/(1<<20), lastH/(1<<20))
	if lastG > firstG+goroutineSlack {
		t.Errorf("goroutines grew over the soak: %d early, %d late (%v)", firstG, lastG, gor)
	}
	// The heap in use swings with the GC cycle (GOGC 400, and a 5 s short form may see a
	// single cycle, its peak still rising): a leak raises the floor of the sawtooth, so
	// the late floor is compared with the early one.
	firstH, lastH = slices.Min(heap[:third]), slices.Min(heap[len(heap)-third:])
	if lastH > 1.5*firstH+16<<20 {
		t.Errorf("heap in use grew over the soak: floor %.1f MB early, %.1f MB late (%v)", firstH/(1<<20), lastH/(1<<20), heap)
	}
	requireGoroutinesBack(t, r)
}
