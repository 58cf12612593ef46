package executor

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

func TestFaultInjectedIntoTheAttemptItNames(t *testing.T) {
	tests := []struct {
		name      string
		fault     *decision.Fault
		retries   int // decision's limits.max_retries; -1: the provider's (2)
		a         []step
		wantFrom  string
		wantErr   adapters.Kind
		wantCalls [2]int32
		injected  bool
		minTime   time.Duration
	}{
		{"error retried at the same target", &decision.Fault{Kind: "error", Status: 503, Attempt: 1}, -1, nil, "a", 0, [2]int32{1, 0}, true, 0},
		{"error without retries fails over", &decision.Fault{Kind: "error", Status: 500, Attempt: 1}, 0, nil, "b", 0, [2]int32{0, 1}, true, 0},
		{"error 400 ends the walk", &decision.Fault{Kind: "error", Status: 400, Attempt: 1}, -1, nil, "", adapters.KindBadRequest, [2]int32{0, 0}, true, 0},
		{"second attempt is the fallback", &decision.Fault{Kind: "error", Status: 503, Attempt: 2}, 0, []step{{err: status(500)}}, "", adapters.KindServer, [2]int32{1, 0}, true, 0},
		{"attempt never reached", &decision.Fault{Kind: "error", Status: 503, Attempt: 3}, -1, nil, "a", 0, [2]int32{1, 0}, false, 0},
		{"latency delays the call", &decision.Fault{Kind: "latency", DelayMS: 80, Attempt: 1}, -1, nil, "a", 0, [2]int32{1, 0}, true, 80 * time.Millisecond},
		{"latency past the attempt timeout", &decision.Fault{Kind: "latency", DelayMS: 5000, Attempt: 1}, -1, nil, "a", 0, [2]int32{1, 0}, true, 200 * time.Millisecond},
		{"timeout waits for the attempt timeout", &decision.Fault{Kind: "timeout", Attempt: 1}, 0, nil, "b", 0, [2]int32{0, 1}, true, 200 * time.Millisecond},
		{"cut of a non-streamed call", &decision.Fault{Kind: "cut_stream", Attempt: 1}, 0, nil, "b", 0, [2]int32{1, 1}, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := &fake{name: "a", steps: tc.a}, &fake{name: "b"}
			r := fast()
			r.Timeout = 200 * time.Millisecond
			r.Breaker.FailureThreshold = 1
			ex, _ := newExec(r, a, b)
			d := decide("a", "b")
			d.Limits.MaxRetries = tc.retries
			d.Fault = tc.fault
			start := time.Now()
			res, err := ex.Chat(context.Background(), &adapters.ChatRequest{Model: "alias"}, d)
			if el := time.Since(start); el < tc.minTime {
				t.Errorf("answered after %v, want at least %v", el, tc.minTime)
			}
			if tc.wantFrom != "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Target.Provider != tc.wantFrom {
					t.Errorf("answered by %s, want %s", res.Target.Provider, tc.wantFrom)
				}
			} else if k := classify(err); err == nil || k != tc.wantErr {
				t.Errorf("err = %v (%s), want %s", err, k, tc.wantErr)
			}
			if got := [2]int32{a.calls.Load(), b.calls.Load()}; got != tc.wantCalls {
				t.Errorf("calls = %v, want %v", got, tc.wantCalls)
			}
			if d.Fault.Injected() != tc.injected {
				t.Errorf("injected = %v, want %v", d.Fault.Injected(), tc.injected)
			}
			// A drill's failure never opens a breaker, even at threshold 1.
			if tc.name != "second attempt is the fallback" {
				if _, open := ex.OpenFor([]decision.Target{{Provider: "a", Model: "m"}}); open {
					t.Error("an injected fault opened a's breaker")
				}
			}
		})
	}
}

func TestFaultCutsAStreamAfterChunks(t *testing.T) {
	for _, after := range []int{1, 2, 3} {
		a := &fake{name: "a", steps: []step{{chunks: 5}}}
		ex, _ := newExec(fast(), a)
		d := decide("a")
		d.Fault = &decision.Fault{Kind: "cut_stream", AfterChunks: after, Attempt: 1}
		res, err := ex.OpenStream(context.Background(), &adapters.ChatRequest{Model: "alias", Stream: true}, d)
		if err != nil {
			t.Fatal(err)
		}
		n := 1 // First
		for {
			_, err = res.Stream.Recv()
			if err != nil {
				break
			}
			n++
		}
		res.Stream.Close()
		if errors.Is(err, io.EOF) || !injected(err) || n != after {
			t.Errorf("after_chunks %d: %d chunks then %v, want %d then an injected error", after, n, err, after)
		}
		if _, open := ex.OpenFor(d.Targets); open {
			t.Errorf("after_chunks %d: the cut opened the breaker", after)
		}
	}
	// after_chunks 0: the stream fails before its first chunk, so the walk fails over.
	a, b := &fake{name: "a"}, &fake{name: "b"}
	ex, _ := newExec(fast(), a, b)
	d := decide("a", "b")
	d.Limits.MaxRetries = 0
	d.Fault = &decision.Fault{Kind: "cut_stream", Attempt: 1}
	res, err := ex.OpenStream(context.Background(), &adapters.ChatRequest{Model: "alias", Stream: true}, d)
	if err != nil {
		t.Fatal(err)
	}
	res.Stream.Close()
	if res.Target.Provider != "b" {
		t.Errorf("after_chunks 0: answered by %s, want the fallback b", res.Target.Provider)
	}
}
