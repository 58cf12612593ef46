package executor

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/signals"
)

// spy counts calls whose context was cancelled while they were in flight.
type spy struct {
	*fake
	canceled atomic.Int32
}

func (s *spy) Chat(ctx context.Context, req *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	r, err := s.fake.Chat(ctx, req)
	if ctx.Err() != nil {
		s.canceled.Add(1)
	}
	return r, err
}

func (s *spy) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	st, err := s.fake.ChatStream(ctx, req)
	if ctx.Err() != nil {
		s.canceled.Add(1)
	}
	return st, err
}

func spyExec(r Resilience, spies ...*spy) *Executor {
	m := map[string]adapters.Provider{}
	rs := map[string]Resilience{}
	for _, s := range spies {
		m[s.name] = s
		rs[s.name] = r
	}
	return New(Options{Providers: m, Resilience: rs, Tracker: signals.New(0)})
}

func hedgedDecision(delayMS, maxHedges int, targets ...string) *decision.Decision {
	d := decide(targets...)
	d.Limits.MaxRetries = 0
	d.Hedge = &decision.Hedge{DelayMS: delayMS, Max: maxHedges}
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHedge(t *testing.T) {
	slow := step{delay: 5 * time.Second}
	tests := []struct {
		name      string
		a, b, c   []step
		targets   []string
		max       int
		want      string
		aCanceled bool
		bCalls    int32
	}{
		{name: "slow primary loses to the hedge", a: []step{slow}, targets: []string{"a", "b"}, max: 1, want: "b", aCanceled: true, bCalls: 1},
		{name: "fast primary sends no hedge", targets: []string{"a", "b"}, max: 1, want: "a", bCalls: 0},
		{name: "primary failing before the delay still hedges", a: []step{{err: status(500)}}, targets: []string{"a", "b"}, max: 1, want: "b", bCalls: 1},
		{name: "client error ends the group", a: []step{{err: status(400)}}, targets: []string{"a", "b"}, max: 1, want: "", bCalls: 0},
		{name: "group fails, walk goes on", a: []step{{delay: 100 * time.Millisecond, err: status(500)}}, b: []step{{err: status(503)}},
			targets: []string{"a", "b", "c"}, max: 1, want: "c", bCalls: 1},
		{name: "two hedges", a: []step{slow}, b: []step{slow}, targets: []string{"a", "b", "c"}, max: 2, want: "c", aCanceled: true, bCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &spy{fake: &fake{name: "a", steps: tc.a}}
			b := &spy{fake: &fake{name: "b", steps: tc.b}}
			c := &spy{fake: &fake{name: "c", steps: tc.c}}
			ex := spyExec(fast(), a, b, c)
			defer ex.Close()
			start := time.Now()
			res, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, hedgedDecision(30, tc.max, tc.targets...))
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v: the slow target was waited for", el)
			}
			if tc.want == "" {
				if err == nil {
					t.Fatalf("answered from %v, want an error", res.Target)
				}
			} else if err != nil || res.Target.Provider != tc.want {
				t.Fatalf("res=%v err=%v, want an answer from %s", res, err, tc.want)
			}
			if got := b.calls.Load(); got != tc.bCalls {
				t.Errorf("b called %d times, want %d", got, tc.bCalls)
			}
			if tc.aCanceled {
				waitFor(t, "the losing upstream call to be cancelled", func() bool { return a.canceled.Load() == 1 })
			}
		})
	}
}

func TestHedgedStreamOutlivesThePolicy(t *testing.T) {
	a := &spy{fake: &fake{name: "a", steps: []step{{delay: 5 * time.Second}}}}
	b := &spy{fake: &fake{name: "b", steps: []step{{chunks: 4}}}}
	r := fast()
	r.Timeout = 2 * time.Second
	ex := spyExec(r, a, b)
	defer ex.Close()
	sr, err := ex.OpenStream(context.Background(), &adapters.ChatRequest{}, hedgedDecision(30, 1, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Stream.Close()
	if sr.Target.Provider != "b" {
		t.Fatalf("stream from %v, want b", sr.Target)
	}
	waitFor(t, "the losing stream to be cancelled", func() bool { return a.canceled.Load() == 1 })
	time.Sleep(50 * time.Millisecond) // the hedge policy has long returned
	n := 1
	for {
		_, err := sr.Stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chunk %d: %v", n, err)
		}
		n++
	}
	if n != 4 {
		t.Errorf("got %d chunks, want 4", n)
	}
}
