package policy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/signals"
)

// countingSource is a SignalSource whose version and breaker state a test sets, and which
// counts how often the planner asked for the version (once per tick, or per build).
type countingSource struct {
	version atomic.Uint64
	open    atomic.Bool
	moving  bool // the version changes every time it is read: traffic on every tick
	reads   atomic.Int64
	changed chan struct{}
}

func (s *countingSource) Version() uint64 {
	s.reads.Add(1)
	if s.moving {
		return s.version.Add(1)
	}
	return s.version.Load()
}

func (s *countingSource) Changed() <-chan struct{} { return s.changed }

func (s *countingSource) Snapshot() []signals.ProviderStats {
	c := signals.Closed
	if s.open.Load() {
		c = signals.Open
	}
	return []signals.ProviderStats{{Name: "mock", Healthy: true,
		Stats: signals.Stats{Circuit: c}, Models: map[string]signals.Stats{"mock-1": {Circuit: c}}}}
}

// ageingSource is a countingSource whose version moves with no activity: samples ageing
// out of the window after traffic stopped.
type ageingSource struct{ *countingSource }

func (ageingSource) Activity() uint64 { return 7 }

// The planner re-evaluates the plan on a tick only when something it reads may have
// changed: an idle gateway builds nothing, traffic and a breaker that is not closed do;
// figures merely ageing out re-plan at most every AgeingRefresh.
func TestPlannerRebuildsOnlyOnChange(t *testing.T) {
	const ticks = 20
	tests := []struct {
		name      string
		moving    bool
		ageing    bool // the version moves, the activity does not
		open      bool
		minBuilds uint64 // over the ticks, after the first build
		maxBuilds uint64
	}{
		{name: "idle", maxBuilds: 0},
		{name: "traffic", moving: true, minBuilds: ticks / 2, maxBuilds: ticks * 2},
		{name: "ageing only", moving: true, ageing: true, maxBuilds: 0},
		{name: "breaker open", open: true, minBuilds: ticks / 2, maxBuilds: ticks * 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := LoadEmbedded()
			if err != nil {
				t.Fatal(err)
			}
			e := New()
			src := &countingSource{moving: tc.moving, changed: make(chan struct{})}
			src.open.Store(tc.open)
			var source SignalSource = src
			if tc.ageing {
				source = ageingSource{src}
			}
			p := NewPlanner(e, source, time.Millisecond, slog.New(slog.DiscardHandler))
			rev, err := e.Activate(context.Background(), b, "embedded")
			if err != nil {
				t.Fatal(err)
			}
			p.Build(context.Background(), rev)
			first := p.Builds()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); p.Run(ctx) }()
			// The activation's kick may rebuild once more; then count ticks by version reads.
			start := src.reads.Load()
			deadline := time.Now().Add(time.Minute)
			for src.reads.Load()-start < ticks {
				if time.Now().After(deadline) {
					t.Fatalf("only %d ticks in a minute", src.reads.Load()-start)
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
			<-done
			got := p.Builds() - first
			if tc.maxBuilds == 0 && got > 1 { // the activation's kick
				t.Errorf("%s: %d plan builds over %d ticks, want at most 1", tc.name, got, ticks)
			}
			if tc.maxBuilds > 0 && (got < tc.minBuilds || got > tc.maxBuilds) {
				t.Errorf("%d plan builds over %d ticks, want %d–%d", got, ticks, tc.minBuilds, tc.maxBuilds)
			}
		})
	}
}
