package policy

import (
	"context"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/signals"
)

// threeUp is a SignalSource with the three providers of allUp, all healthy: the plan
// ranks the whole catalog over them (tens of milliseconds of work).
type threeUp struct{ changed chan struct{} }

func (threeUp) Version() uint64 { return 1 }

func (s threeUp) Changed() <-chan struct{} { return s.changed }

func (threeUp) Snapshot() []signals.ProviderStats {
	var out []signals.ProviderStats
	for _, name := range []string{"openai", "anthropic", "mock"} {
		out = append(out, signals.ProviderStats{Name: name, Healthy: true, Stats: signals.Stats{Circuit: signals.Closed}})
	}
	return out
}

// On one CPU (GOMAXPROCS=1, a one-core container), a goroutine woken by the network runs
// within a fraction of a millisecond while the planner evaluates the plan in the
// background. Before background evaluations yielded, it waited for the planner to be
// preempted (10 ms) or to finish: the tail at one connection (docs/performance.md).
func TestBackgroundPlanYieldsToTheNetwork(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	rev := mustEmbedded(t)
	p := NewPlanner(New(), threeUp{changed: make(chan struct{})}, 0, slog.New(slog.DiscardHandler))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echo one byte at a time
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 1)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var evaluating time.Duration
	done := make(chan struct{})
	go func() { // the planner, evaluating back to back for at least 300 ms
		defer close(done)
		start := time.Now()
		for time.Since(start) < 300*time.Millisecond && ctx.Err() == nil {
			p.build(ctx, rev, true)
		}
		evaluating = time.Since(start)
	}()
	var rtts []time.Duration
	b := []byte{1}
	for {
		select {
		case <-done:
		default:
			t0 := time.Now()
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(b); err != nil {
				t.Fatal(err)
			}
			rtts = append(rtts, time.Since(t0))
			continue
		}
		break
	}
	if p.Builds() == 0 || p.cur.Load() == nil || p.cur.Load().Plan == nil {
		t.Fatalf("no plan built in %v", evaluating)
	}
	slices.Sort(rtts)
	median := rtts[len(rtts)/2]
	t.Logf("%d plan builds (%d yields) in %v; %d round trips meanwhile, median %v, p90 %v", p.Builds(), p.Yields(), evaluating, len(rtts), median, rtts[len(rtts)*9/10])
	// A round trip is two wake-ups by the network; each may wait up to planQuantum
	// behind the planner. 2 ms leaves room for a loaded machine and is five times less
	// than one preemption slice (without the yield the median was ~50 ms).
	if bound := raceSlowdown * 2 * time.Millisecond; median > bound {
		t.Errorf("median round trip %v while the plan evaluates in the background, want ≤ %v", median, bound)
	}
}

// With nothing else to run, a background evaluation is not stretched by its yields
// (each costs the runtime's 1 ms network poll then): a breaker's opening reaches the
// plan about as fast as a full-speed evaluation would bring it.
func TestBackgroundPlanIdleIsNotStretched(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	rev := mustEmbedded(t)
	p := NewPlanner(New(), threeUp{changed: make(chan struct{})}, 0, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	p.build(ctx, rev, false) // warm
	const n = 3
	measure := func(background bool) time.Duration {
		start := time.Now()
		for range n {
			p.build(ctx, rev, background)
		}
		return time.Since(start) / n
	}
	full := measure(false)
	yields := p.Yields()
	bg := measure(true)
	t.Logf("full speed %v, background %v (%d yields per evaluation)", full, bg, (p.Yields()-yields)/n)
	// Each unused yield still costs the runtime's ~1 ms network poll, so an idle
	// evaluation runs at 4–5× its full-speed time once the quantum has grown (measured
	// 52–66 ms against 14–16 ms); a fixed 50 µs quantum made it ~10× (327 ms against 32 ms)
	// and ~20× under -race, where an evaluation's CPU is inflated and each poll is not.
	ratio := time.Duration(6)
	if raceSlowdown > 1 {
		ratio = 10
	}
	if bg > ratio*full+5*time.Millisecond {
		t.Errorf("an idle background evaluation took %v, against %v at full speed: want ≤ %d× + 5 ms", bg, full, ratio)
	}
}
