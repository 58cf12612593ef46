package executor

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/signals"
)

// fake is a scripted provider: each call pops the next step; an empty script answers.
type fake struct {
	name  string
	mu    sync.Mutex
	steps []step
	calls atomic.Int32
}

type step struct {
	err    error
	delay  time.Duration
	chunks int
	// each delays every chunk of a stream; stallAt (1-based) is a chunk that never comes.
	each    time.Duration
	stallAt int
}

func (f *fake) Name() string { return f.name }

func (f *fake) next() step {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.steps) == 0 {
		return step{}
	}
	s := f.steps[0]
	f.steps = f.steps[1:]
	return s
}

func (f *fake) wait(ctx context.Context, s step) error {
	if s.delay == 0 {
		return nil
	}
	select {
	case <-time.After(s.delay):
		return nil
	case <-ctx.Done():
		return adapters.TransportError(f.name, ctx, ctx.Err())
	}
}

func (f *fake) Chat(ctx context.Context, req *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	s := f.next()
	if err := f.wait(ctx, s); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	return &adapters.ChatResponse{ID: "x", Model: req.Model, Choices: []adapters.Choice{{Message: adapters.Message{Role: "assistant", Content: adapters.TextContent(f.name)}}}}, nil
}

func (f *fake) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	s := f.next()
	if err := f.wait(ctx, s); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	n := s.chunks
	if n == 0 {
		n = 3
	}
	return &fakeStream{ctx: ctx, left: n, model: req.Model, each: s.each, stallAt: s.stallAt}, nil
}

type fakeStream struct {
	ctx     context.Context
	left    int
	model   string
	each    time.Duration
	stallAt int
	n       int // chunks returned
}

func (s *fakeStream) Recv() (*adapters.ChatChunk, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	if s.left == 0 {
		return nil, io.EOF
	}
	if s.n+1 == s.stallAt {
		<-s.ctx.Done()
		return nil, s.ctx.Err()
	}
	if s.each > 0 {
		select {
		case <-time.After(s.each):
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		}
	}
	s.n++
	s.left--
	txt := "x"
	return &adapters.ChatChunk{Model: s.model, Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Content: &txt}}}}, nil
}

func (s *fakeStream) Close() error { return nil }

func status(code int) error {
	return &adapters.Error{Provider: "p", Kind: adapters.KindForStatus(code), Status: code, Message: "scripted"}
}

func fast() Resilience {
	r := DefaultResilience()
	r.Backoff, r.MaxBackoff = time.Millisecond, 2*time.Millisecond
	r.Timeout = time.Second
	return r
}

func newExec(r Resilience, provs ...*fake) (*Executor, *signals.Tracker) {
	m := map[string]adapters.Provider{}
	rs := map[string]Resilience{}
	for _, p := range provs {
		m[p.name] = p
		rs[p.name] = r
	}
	tr := signals.New(0)
	return New(Options{Providers: m, Resilience: rs, Tracker: tr}), tr
}

func decide(targets ...string) *decision.Decision {
	d := &decision.Decision{Allow: true, Limits: decision.Limits{MaxRetries: -1}}
	for _, t := range targets {
		d.Targets = append(d.Targets, decision.Target{Provider: t, Model: "m"})
	}
	return d
}

func TestChatRetriesAndFailover(t *testing.T) {
	tests := []struct {
		name      string
		a, b      []step
		wantFrom  string
		wantErr   adapters.Kind
		wantCalls [2]int32
	}{
		{"first answers", nil, nil, "a", 0, [2]int32{1, 0}},
		{"500 retried then ok", []step{{err: status(500)}}, nil, "a", 0, [2]int32{2, 0}},
		{"429 retried then ok", []step{{err: status(429)}}, nil, "a", 0, [2]int32{2, 0}},
		{"retries exhausted fail over", []step{{err: status(503)}, {err: status(503)}, {err: status(503)}}, nil, "b", 0, [2]int32{3, 1}},
		{"400 is not retried nor failed over", []step{{err: status(400)}}, nil, "", adapters.KindBadRequest, [2]int32{1, 0}},
		{"401 fails over without retry", []step{{err: status(401)}}, nil, "b", 0, [2]int32{1, 1}},
		{"404 fails over without retry", []step{{err: status(404)}}, nil, "b", 0, [2]int32{1, 1}},
		{"connection error retried", []step{{err: &adapters.Error{Kind: adapters.KindConnection}}}, nil, "a", 0, [2]int32{2, 0}},
		{"everything fails", []step{{err: status(500)}, {err: status(500)}, {err: status(500)}}, []step{{err: status(502)}, {err: status(502)}, {err: status(502)}}, "", adapters.KindServer, [2]int32{3, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := &fake{name: "a", steps: tc.a}, &fake{name: "b", steps: tc.b}
			ex, _ := newExec(fast(), a, b)
			res, err := ex.Chat(context.Background(), &adapters.ChatRequest{Model: "alias"}, decide("a", "b"))
			if tc.wantFrom != "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Target.Provider != tc.wantFrom || res.Response.Model != "m" {
					t.Errorf("answered by %v", res.Target)
				}
			} else {
				var fe *FailedError
				if !errors.As(err, &fe) {
					t.Fatalf("err = %v, want FailedError", err)
				}
				if k := classify(fe.Last()); k != tc.wantErr {
					t.Errorf("last kind = %v, want %v", k, tc.wantErr)
				}
			}
			if got := [2]int32{a.calls.Load(), b.calls.Load()}; got != tc.wantCalls {
				t.Errorf("calls = %v, want %v", got, tc.wantCalls)
			}
		})
	}
}

func TestRetryAfterHonouredOrFailedOver(t *testing.T) {
	r := fast()
	r.MaxRetryAfter = 200 * time.Millisecond
	short := &adapters.Error{Kind: adapters.KindRateLimited, Status: 429, RetryAfter: 80 * time.Millisecond}
	a, b := &fake{name: "a", steps: []step{{err: short}}}, &fake{name: "b"}
	ex, _ := newExec(r, a, b)
	start := time.Now()
	res, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a", "b"))
	if err != nil || res.Target.Provider != "a" {
		t.Fatalf("res=%v err=%v", res, err)
	}
	if el := time.Since(start); el < 70*time.Millisecond {
		t.Errorf("retry came after %v, before Retry-After", el)
	}
	long := &adapters.Error{Kind: adapters.KindRateLimited, Status: 429, RetryAfter: time.Minute}
	a2, b2 := &fake{name: "a", steps: []step{{err: long}}}, &fake{name: "b"}
	ex2, _ := newExec(r, a2, b2)
	res, err = ex2.Chat(context.Background(), &adapters.ChatRequest{}, decide("a", "b"))
	if err != nil || res.Target.Provider != "b" || a2.calls.Load() != 1 {
		t.Fatalf("long Retry-After should fail over at once: res=%v err=%v calls=%d", res, err, a2.calls.Load())
	}
}

func TestBreakerOpensAndIsSkipped(t *testing.T) {
	r := fast()
	r.MaxRetries = 0
	r.Breaker = Breaker{FailureThreshold: 3, Delay: time.Hour, SuccessThreshold: 1}
	var steps []step
	for i := 0; i < 10; i++ {
		steps = append(steps, step{err: status(500)})
	}
	a, b := &fake{name: "a", steps: steps}, &fake{name: "b"}
	ex, tr := newExec(r, a, b)
	for i := 0; i < 6; i++ {
		res, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a", "b"))
		if err != nil || res.Target.Provider != "b" {
			t.Fatalf("request %d: res=%v err=%v", i, res, err)
		}
	}
	if got := a.calls.Load(); got != 3 {
		t.Errorf("a called %d times; the breaker should have opened after 3", got)
	}
	if c := tr.Target("a", "m").Circuit(); c != signals.Open {
		t.Errorf("circuit = %s, want open", c)
	}
	_, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a"))
	var fe *FailedError
	if !errors.As(err, &fe) || !fe.AllRejected() || !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Errorf("err = %v, want all rejected by the open breaker", err)
	}
}

func TestAttemptTimeout(t *testing.T) {
	r := fast()
	r.Timeout = 30 * time.Millisecond
	r.MaxRetries = 1
	a, b := &fake{name: "a", steps: []step{{delay: time.Second}, {delay: time.Second}}}, &fake{name: "b"}
	ex, _ := newExec(r, a, b)
	start := time.Now()
	res, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("a", "b"))
	if err != nil || res.Target.Provider != "b" {
		t.Fatalf("res=%v err=%v", res, err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("took %v; attempt timeouts did not fire", el)
	}
}

func TestDecisionOverridesRetries(t *testing.T) {
	a, b := &fake{name: "a", steps: []step{{err: status(500)}}}, &fake{name: "b"}
	ex, _ := newExec(fast(), a, b)
	d := decide("a", "b")
	d.Limits.MaxRetries = 0
	res, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, d)
	if err != nil || res.Target.Provider != "b" || a.calls.Load() != 1 {
		t.Fatalf("res=%v err=%v calls=%d", res, err, a.calls.Load())
	}
}

func TestMaxTokensCapped(t *testing.T) {
	d := decide("a")
	d.Limits.MaxTokens = 100
	big, small := 500, 50
	for _, tc := range []struct {
		in   *int
		want int
	}{{nil, 100}, {&big, 100}, {&small, 50}} {
		r := upstreamRequest(&adapters.ChatRequest{MaxTokens: tc.in}, d.Targets[0], d, false)
		if *r.MaxTokens != tc.want {
			t.Errorf("max_tokens %v → %d, want %d", tc.in, *r.MaxTokens, tc.want)
		}
	}
}

func TestStreamFailsOverBeforeFirstChunk(t *testing.T) {
	a := &fake{name: "a", steps: []step{{err: status(500)}, {err: status(500)}, {err: status(500)}}}
	b := &fake{name: "b", steps: []step{{chunks: 0}}}
	ex, _ := newExec(fast(), a, b)
	sr, err := ex.OpenStream(context.Background(), &adapters.ChatRequest{}, decide("a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Stream.Close()
	if sr.Target.Provider != "b" || sr.First == nil {
		t.Fatalf("stream from %v first=%v", sr.Target, sr.First)
	}
	n := 1
	for {
		_, err := sr.Stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("got %d chunks, want 3", n)
	}
}

func TestStreamContextOutlivesAttempt(t *testing.T) {
	// The attempt's timeout must not cancel a stream that is being read after the
	// pipeline returned (failsafe-go cancels on return unless told otherwise).
	r := fast()
	r.Timeout = 50 * time.Millisecond
	a := &fake{name: "a", steps: []step{{chunks: 5}}}
	ex, _ := newExec(r, a)
	sr, err := ex.OpenStream(context.Background(), &adapters.ChatRequest{}, decide("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Stream.Close()
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 4; i++ {
		if _, err := sr.Stream.Recv(); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
}

// The attempt timeout bounds the wait for each chunk of a stream, not the stream: reads
// that each come within it never end the stream, however long the stream or the
// consumer's pauses between reads, and a read that does not ends it with a timeout.
func TestStreamIdleBound(t *testing.T) {
	const idle = 80 * time.Millisecond
	for _, tc := range []struct {
		name  string
		step  step
		pause time.Duration // the consumer's, between reads
		stall bool
	}{
		{"chunks within the bound", step{chunks: 8, each: idle / 2}, 0, false},
		{"slow consumer", step{chunks: 4}, 2 * idle, false},
		{"upstream stalls", step{chunks: 6, stallAt: 4}, 0, true},
		{"upstream stalls after a slow consumer", step{chunks: 6, stallAt: 3}, 2 * idle, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fast()
			r.Timeout = idle
			ex, _ := newExec(r, &fake{name: "a", steps: []step{tc.step}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sr, err := ex.OpenStream(ctx, &adapters.ChatRequest{}, decide("a"))
			if err != nil {
				t.Fatal(err)
			}
			defer sr.Stream.Close()
			var rerr error
			for rerr == nil {
				time.Sleep(tc.pause)
				start := time.Now()
				_, rerr = sr.Stream.Recv()
				if rerr != nil && tc.stall {
					if waited := time.Since(start); waited < idle || waited > 20*idle {
						t.Errorf("the stalled read ended after %v; the bound is %v", waited, idle)
					}
				}
			}
			var ae *adapters.Error
			switch {
			case ctx.Err() != nil:
				t.Fatalf("the stream hung until the test's deadline: %v", rerr)
			case !tc.stall && !errors.Is(rerr, io.EOF):
				t.Fatalf("stream ended with %v, want its end", rerr)
			case tc.stall && (!errors.As(rerr, &ae) || ae.Kind != adapters.KindTimeout):
				t.Fatalf("stalled stream ended with %v, want a timeout", rerr)
			}
		})
	}
}

func TestClientCancelStopsWalk(t *testing.T) {
	a, b := &fake{name: "a", steps: []step{{delay: time.Second}}}, &fake{name: "b"}
	ex, _ := newExec(fast(), a, b)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := ex.Chat(ctx, &adapters.ChatRequest{}, decide("a", "b"))
	if err == nil || b.calls.Load() != 0 {
		t.Fatalf("err=%v b calls=%d; a cancelled client must not fail over", err, b.calls.Load())
	}
}

func TestNoProvider(t *testing.T) {
	ex, _ := newExec(fast(), &fake{name: "b"})
	res, err := ex.Chat(context.Background(), &adapters.ChatRequest{}, decide("missing", "b"))
	if err != nil || res.Target.Provider != "b" {
		t.Fatalf("res=%v err=%v", res, err)
	}
}

func TestResilienceValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Resilience)
		ok   bool
	}{
		{"defaults", func(*Resilience) {}, true},
		{"negative timeout", func(r *Resilience) { r.Timeout = -1 }, false},
		{"too many retries", func(r *Resilience) { r.MaxRetries = 11 }, false},
		{"backoff over max", func(r *Resilience) { r.Backoff, r.MaxBackoff = time.Second, time.Millisecond }, false},
		{"window under threshold", func(r *Resilience) { r.Breaker.FailureWindow = 2 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := DefaultResilience()
			tc.mod(&r)
			if err := r.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, ok want %v", err, tc.ok)
			}
		})
	}
}

func TestStreamEndedByItsRequestIsNoUpstreamFailure(t *testing.T) {
	// A stream that ends because its request did (the deadline passed while a slow client
	// held it, the client left) says nothing about the upstream: no breaker failure.
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 30*time.Millisecond)
		}},
		{"client gone", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(30*time.Millisecond, cancel)
			return ctx, cancel
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fast()
			r.MaxRetries = 0
			r.Breaker = Breaker{FailureThreshold: 1, Delay: time.Hour, SuccessThreshold: 1}
			ex, tr := newExec(r, &fake{name: "a", steps: []step{{chunks: 100}}})
			ctx, cancel := tc.ctx()
			defer cancel()
			sr, err := ex.OpenStream(ctx, &adapters.ChatRequest{}, decide("a"))
			if err != nil {
				t.Fatal(err)
			}
			<-ctx.Done()
			// The attempt's context is failsafe-go's child of the request's, cancelled a
			// moment later: a chunk or two may still come.
			var rerr error
			for range 100 {
				if _, rerr = sr.Stream.Recv(); rerr != nil {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if rerr == nil || errors.Is(rerr, io.EOF) {
				t.Fatalf("the stream outlived its request: %v", rerr)
			}
			sr.Stream.Close()
			if c := tr.Target("a", "m").Circuit(); c != signals.Closed {
				t.Errorf("circuit = %s after a stream its request ended", c)
			}
		})
	}
}
