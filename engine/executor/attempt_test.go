package executor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// The delays between retries are failsafe-go's for the retry policy gavel used to build
// with it (WithBackoff(Backoff, MaxBackoff), WithJitterFactor(0.2), Retry-After through
// a DelayFunc), which run replaced.
func TestRetryDelay(t *testing.T) {
	r := Resilience{Backoff: 100 * time.Millisecond, MaxBackoff: 350 * time.Millisecond}
	e500 := status(500)
	ra := &adapters.Error{Kind: adapters.KindRateLimited, Status: 429, RetryAfter: 2 * time.Second}
	for _, tc := range []struct {
		name        string
		n           int
		backoff     time.Duration
		err         error
		random      float64
		delay, next time.Duration
	}{
		{"first retry: the backoff, no jitter at 0.5", 0, 0, e500, 0.5, 100 * time.Millisecond, 100 * time.Millisecond},
		{"jitter up to +20 %", 0, 0, e500, 0, 120 * time.Millisecond, 100 * time.Millisecond},
		{"jitter down to -20 %", 0, 0, e500, 1, 80 * time.Millisecond, 100 * time.Millisecond},
		{"second retry doubles", 1, 100 * time.Millisecond, e500, 0.5, 200 * time.Millisecond, 200 * time.Millisecond},
		{"capped at max_backoff", 2, 200 * time.Millisecond, e500, 0.5, 350 * time.Millisecond, 350 * time.Millisecond},
		{"stays capped", 3, 350 * time.Millisecond, e500, 0.5, 350 * time.Millisecond, 350 * time.Millisecond},
		{"a backoff after a Retry-After starts over", 1, 0, e500, 0.5, 100 * time.Millisecond, 100 * time.Millisecond},
		{"Retry-After, scaled so the jitter never shortens it", 0, 0, ra, 1, 2 * time.Second, 0},
		{"Retry-After leaves the backoff as it was", 2, 200 * time.Millisecond, ra, 0.5, 2500 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			delay, next := r.retryDelay(tc.n, tc.backoff, tc.err, tc.random)
			if d := delay - tc.delay; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("delay = %v, want %v", delay, tc.delay)
			}
			if next != tc.next {
				t.Errorf("next backoff = %v, want %v", next, tc.next)
			}
		})
	}
}

// A request that ends while a retry waits out its backoff ends the walk at once, with
// the request's error, without another attempt.
func TestRequestEndDuringBackoff(t *testing.T) {
	r := fast()
	r.Backoff, r.MaxBackoff = time.Minute, time.Minute
	a := &fake{name: "a", steps: []step{{err: status(503)}}}
	ex, _ := newExec(r, a)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := ex.Chat(ctx, &adapters.ChatRequest{}, decide("a"))
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("the walk waited %v, past the request's end", el)
	}
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Tried) != 1 || classify(fe.Tried[0].Err) != adapters.KindCanceled {
		t.Fatalf("err = %v, want the request's cancellation", err)
	}
	if n := a.calls.Load(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// The retry → breaker → timeout pipeline costs an answered call a handful of
// allocations (the attempt, its context and timer), not failsafe-go's ~25 executions,
// copies and policy executors per call; the walk's FailedError is made only on a
// failure (11 before that, 10 since).
func TestChatPipelineAllocations(t *testing.T) {
	a := &fake{name: "a"}
	ex, _ := newExec(fast(), a)
	d := decide("a")
	req := &adapters.ChatRequest{Model: "m"}
	ctx := context.Background()
	if _, err := ex.Chat(ctx, req, d); err != nil {
		t.Fatal(err)
	}
	base := testing.AllocsPerRun(200, func() {
		if _, err := a.Chat(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	got := testing.AllocsPerRun(200, func() {
		if _, err := ex.Chat(ctx, req, d); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Executor.Chat %.0f allocs, the provider's own call %.0f", got, base)
	if got-base > 10 {
		t.Errorf("Executor.Chat allocates %.0f times around the provider's %.0f; want at most 10 more", got, base)
	}
}
