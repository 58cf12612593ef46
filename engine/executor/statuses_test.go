package executor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/signals"
)

// failedWith runs a chat that must fail and returns the walk's error.
func failedWith(t *testing.T, ex *Executor, ctx context.Context, targets ...string) *FailedError {
	t.Helper()
	_, err := ex.Chat(ctx, &adapters.ChatRequest{}, decide(targets...))
	var fe *FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a FailedError", err)
	}
	return fe
}

// What the signals (the policy's input.providers) and the walk's error make of an
// attempt timeout and of a client that goes away.
func TestTimeoutAndCancelInSignals(t *testing.T) {
	tests := []struct {
		name       string
		cancel     bool // the caller's context is cancelled mid-attempt
		wantKind   adapters.Kind
		wantErrors int
		wantCircle signals.Circuit
	}{
		{"attempt timeout is the target's failure", false, adapters.KindTimeout, 1, signals.Open},
		{"client gone is not", true, adapters.KindCanceled, 0, signals.Closed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := fast()
			r.Timeout = 50 * time.Millisecond
			r.MaxRetries = 0
			r.Breaker = Breaker{FailureThreshold: 1, Delay: time.Hour, SuccessThreshold: 1}
			a := &fake{name: "a", steps: []step{{delay: 5 * time.Second}}}
			ex, tr := newExec(r, a)
			ctx := context.Background()
			if tc.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(10*time.Millisecond, cancel)
			}
			fe := failedWith(t, ex, ctx, "a")
			ae := adapters.AsError(fe.Last())
			if ae == nil || ae.Kind != tc.wantKind {
				t.Errorf("last error = %#v, want an *adapters.Error of kind %v", fe.Last(), tc.wantKind)
			}
			st := tr.Target("a", "m").Stats()
			if st.Errors != tc.wantErrors || (tc.wantErrors > 0) != (st.ErrorRateBP > 0) {
				t.Errorf("signals: %d errors, error_rate_bp %d; want %d errors", st.Errors, st.ErrorRateBP, tc.wantErrors)
			}
			if tc.cancel && st.Requests != 0 {
				t.Errorf("signals counted the abandoned attempt as a request (%d)", st.Requests)
			}
			if st.InFlight != 0 {
				t.Errorf("in flight = %d after the attempt ended", st.InFlight)
			}
			if c := tr.Target("a", "m").Circuit(); c != tc.wantCircle {
				t.Errorf("circuit = %s, want %s", c, tc.wantCircle)
			}
		})
	}
}

// A walk rejected by open breakers says when the first of them lets a probe through.
func TestOpenBreakersRetryAfter(t *testing.T) {
	r := fast()
	r.MaxRetries = 0
	r.Breaker = Breaker{FailureThreshold: 1, Delay: time.Hour, SuccessThreshold: 1}
	rb := r
	rb.Breaker.Delay = 90 * time.Second
	a := &fake{name: "a", steps: []step{{err: status(500)}}}
	b := &fake{name: "b", steps: []step{{err: status(500)}}}
	ex := New(Options{Providers: map[string]adapters.Provider{"a": a, "b": b}, Resilience: map[string]Resilience{"a": r, "b": rb}})
	if fe := failedWith(t, ex, context.Background(), "a", "b"); fe.AllRejected() {
		t.Fatal("the first walk reached no upstream")
	}
	fe := failedWith(t, ex, context.Background(), "a", "b")
	d, ok := fe.RetryAfter()
	if !fe.AllRejected() || !ok || d > 90*time.Second || d < 80*time.Second {
		t.Errorf("rejected=%v retry after %v (%v), want b's remaining ~90 s", fe.AllRejected(), d, ok)
	}
	if a.calls.Load() != 1 || b.calls.Load() != 1 {
		t.Errorf("calls a=%d b=%d", a.calls.Load(), b.calls.Load())
	}
}

// Failures that must not be retried at the same target: a protocol error (the upstream
// answered, and was likely paid), and one that opened the target's breaker.
func TestNoSameTargetRetry(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		breaker Breaker
	}{
		{"protocol error", &adapters.Error{Provider: "a", Kind: adapters.KindProtocol, Status: 200, Message: "cannot decode"}, Breaker{}},
		{"breaker just opened", status(500), Breaker{FailureThreshold: 1, Delay: time.Hour, SuccessThreshold: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := fast()
			r.MaxRetries = 2
			r.Backoff, r.MaxBackoff = time.Second, time.Second // would show in the elapsed time
			r.Breaker = tc.breaker
			r = r.WithDefaults()
			a := &fake{name: "a", steps: []step{{err: tc.err}, {err: tc.err}, {err: tc.err}}}
			b := &fake{name: "b"}
			ex, _ := newExec(r, a, b)
			start := time.Now()
			res, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a", "b"))
			if err != nil || res.Target.Provider != "b" {
				t.Fatalf("res=%v err=%v, want b's answer", res, err)
			}
			if a.calls.Load() != 1 {
				t.Errorf("a called %d times, want 1", a.calls.Load())
			}
			if el := time.Since(start); el > 700*time.Millisecond {
				t.Errorf("took %v: a backoff was waited", el)
			}
		})
	}
}
