package executor

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/signals"
)

func TestBreakerStates(t *testing.T) {
	// Each letter is one admitted attempt's end: s success, f failure, a abandoned
	// (cancelled); x is an attempt that must be rejected, w waits out the delay.
	tests := []struct {
		name  string
		cfg   Breaker
		steps string
		want  circuitbreaker.State
	}{
		{"consecutive failures open", Breaker{FailureThreshold: 3, Delay: time.Hour}, "fffx", circuitbreaker.OpenState},
		{"a success breaks the run", Breaker{FailureThreshold: 3, Delay: time.Hour}, "ffsff", circuitbreaker.ClosedState},
		{"a cancelled attempt does not", Breaker{FailureThreshold: 3, Delay: time.Hour}, "ffafx", circuitbreaker.OpenState},
		{"many cancelled attempts do not", Breaker{FailureThreshold: 2, Delay: time.Hour}, "faaaaaafx", circuitbreaker.OpenState},
		{"window: 2 of the last 4", Breaker{FailureThreshold: 2, FailureWindow: 4, Delay: time.Hour}, "fssfx", circuitbreaker.OpenState},
		{"window: old failures leave it", Breaker{FailureThreshold: 2, FailureWindow: 3, Delay: time.Hour}, "fsssf", circuitbreaker.ClosedState},
		{"probe success closes", Breaker{FailureThreshold: 1, Delay: time.Millisecond, SuccessThreshold: 1}, "fws", circuitbreaker.ClosedState},
		{"probe failure reopens", Breaker{FailureThreshold: 1, Delay: time.Millisecond, SuccessThreshold: 1}, "fwf", circuitbreaker.OpenState},
		{"a cancelled probe neither closes nor reopens", Breaker{FailureThreshold: 1, Delay: time.Millisecond, SuccessThreshold: 1}, "fwa", circuitbreaker.HalfOpenState},
		{"its permit is given back", Breaker{FailureThreshold: 1, Delay: time.Millisecond, SuccessThreshold: 1}, "fwaaas", circuitbreaker.ClosedState},
		{"two probes needed", Breaker{FailureThreshold: 1, Delay: time.Millisecond, SuccessThreshold: 2}, "fwsas", circuitbreaker.ClosedState},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var changes []string
			b := newBreaker(tc.cfg, func(from, to circuitbreaker.State) { changes = append(changes, from.String()+"→"+to.String()) })
			for i, c := range tc.steps {
				switch c {
				case 'w':
					time.Sleep(tc.cfg.Delay + time.Millisecond)
					continue
				case 'x':
					if b.acquire() {
						t.Fatalf("step %d: an attempt was admitted; want rejected", i)
					}
					continue
				}
				if !b.acquire() {
					t.Fatalf("step %d (%c): rejected", i, c)
				}
				switch c {
				case 's':
					b.success()
				case 'f':
					b.failure()
				case 'a':
					b.abandon()
				}
			}
			b.mu.Lock()
			got := b.state
			b.mu.Unlock()
			if got != tc.want {
				t.Errorf("state %s after %q, want %s (changes %v)", got, tc.steps, tc.want, changes)
			}
		})
	}
}

func TestBreakerHalfOpenAdmitsOnlyItsProbes(t *testing.T) {
	b := newBreaker(Breaker{FailureThreshold: 1, Delay: time.Millisecond, SuccessThreshold: 1}, nil)
	b.acquire()
	b.failure()
	if d := b.remainingDelay(); d <= 0 || d > time.Millisecond {
		t.Errorf("remaining delay %v right after opening", d)
	}
	time.Sleep(2 * time.Millisecond)
	if !b.acquire() {
		t.Fatal("the probe was rejected after the delay")
	}
	if b.acquire() {
		t.Fatal("a second attempt was admitted while the probe is out")
	}
	b.abandon()
	if !b.acquire() {
		t.Fatal("the cancelled probe's permit was not given back")
	}
}

// An attempt the request ended counts as neither success nor failure of its target: not
// a lost hedge, not a client that left, not the request's deadline passing. Before gavel
// had its own breaker, each counted as a success (a run of failures was reset, a probe
// closed the circuit) and a request deadline as a failure.
func TestCancelledAttemptIsNeitherSuccessNorFailure(t *testing.T) {
	cancelled := func(after time.Duration) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(after, cancel)
		return ctx, cancel
	}
	deadline := func(after time.Duration) (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), after)
	}
	for _, tc := range []struct {
		name string
		ctx  func(time.Duration) (context.Context, context.CancelFunc)
	}{{"client gone", cancelled}, {"request deadline", deadline}} {
		t.Run(tc.name+" between failures", func(t *testing.T) {
			r := fast()
			r.MaxRetries = 0
			r.Breaker = Breaker{FailureThreshold: 2, Delay: time.Hour, SuccessThreshold: 1}
			a := &fake{name: "a", steps: []step{{err: status(500)}, {delay: time.Second}, {delay: time.Second}, {err: status(500)}}}
			ex, tr := newExec(r, a)
			ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a"))
			for range 2 {
				ctx, cancel := tc.ctx(20 * time.Millisecond)
				ex.Chat(ctx, &adapters.ChatRequest{}, decide("a"))
				cancel()
			}
			if c := tr.Target("a", "m").Circuit(); c != signals.Closed {
				t.Fatalf("circuit %s after one failure and two cancelled attempts", c)
			}
			if st := tr.Target("a", "m").Stats(); st.Errors > 1 {
				t.Errorf("signals count %d errors; the cancelled attempts are none", st.Errors)
			}
			ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a"))
			if c := tr.Target("a", "m").Circuit(); c != signals.Open {
				t.Errorf("circuit %s after two failures with cancelled attempts between them; want open", c)
			}
		})
		t.Run(tc.name+" as the probe", func(t *testing.T) {
			r := fast()
			r.MaxRetries = 0
			r.Breaker = Breaker{FailureThreshold: 1, Delay: 20 * time.Millisecond, SuccessThreshold: 1}
			a := &fake{name: "a", steps: []step{{err: status(500)}, {delay: time.Second}, {err: status(500)}}}
			ex, tr := newExec(r, a)
			ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a"))
			time.Sleep(30 * time.Millisecond)
			ctx, cancel := tc.ctx(20 * time.Millisecond)
			ex.Chat(ctx, &adapters.ChatRequest{}, decide("a")) // the probe, cancelled
			cancel()
			if c := tr.Target("a", "m").Circuit(); c == signals.Closed {
				t.Fatal("a cancelled probe closed the circuit")
			}
			if _, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a")); err == nil || a.calls.Load() != 3 {
				t.Fatalf("the next request was not the probe: err=%v calls=%d", err, a.calls.Load())
			}
			if c := tr.Target("a", "m").Circuit(); c != signals.Open {
				t.Errorf("circuit %s after the probe failed; want open", c)
			}
		})
	}
	t.Run("hedge loser", func(t *testing.T) {
		r := fast()
		r.MaxRetries = 0
		r.Breaker = Breaker{FailureThreshold: 2, Delay: time.Hour, SuccessThreshold: 1}
		a := &fake{name: "a", steps: []step{{err: status(500)}, {delay: time.Second}, {err: status(500)}}}
		ex, tr := newExec(r, a, &fake{name: "b"})
		ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a"))
		res, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, hedgedDecision(10, 1, "a", "b"))
		if err != nil || res.Target.Provider != "b" {
			t.Fatalf("hedge: res=%v err=%v", res, err)
		}
		waitFor(t, "the loser's attempt to end", func() bool { return tr.Target("a", "m").Stats().InFlight == 0 })
		ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a"))
		if c := tr.Target("a", "m").Circuit(); c != signals.Open {
			t.Errorf("circuit %s: the lost hedge between two failures counted as a success", c)
		}
	})
}

func TestOpenFor(t *testing.T) {
	r := fast()
	r.MaxRetries = 0
	r.Breaker = Breaker{FailureThreshold: 1, Delay: time.Hour, SuccessThreshold: 1}
	a := &fake{name: "a", steps: []step{{err: status(500)}}}
	b := &fake{name: "b", steps: []step{{err: status(500)}}}
	ex, _ := newExec(r, a, b, &fake{name: "c"})
	ta, tb, tc := decide("a").Targets[0], decide("b").Targets[0], decide("c").Targets[0]
	if _, ok := ex.OpenFor([]decision.Target{ta}); ok {
		t.Fatal("a target never called has no open breaker")
	}
	ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a"))
	time.Sleep(5 * time.Millisecond)
	ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("b"))
	ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("c"))
	for _, tt := range []struct {
		name    string
		targets []decision.Target
		ok      bool
	}{
		{"none", nil, false},
		{"one open", []decision.Target{ta}, true},
		{"both open: the sooner", []decision.Target{ta, tb}, true},
		{"one closed", []decision.Target{ta, tc}, false},
	} {
		wait, ok := ex.OpenFor(tt.targets)
		if ok != tt.ok || ok && (wait <= 59*time.Minute || wait > time.Hour) {
			t.Errorf("%s: %v %v", tt.name, wait, ok)
		}
	}
	wa, _ := ex.OpenFor([]decision.Target{ta})
	if wab, _ := ex.OpenFor([]decision.Target{ta, tb}); wab != min(wa, wab) || wab > wa {
		t.Errorf("both open: %v, a alone %v; want the sooner", wab, wa)
	}
}
