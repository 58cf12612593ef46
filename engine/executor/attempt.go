package executor

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/gavel-gw/gavel/adapters"
)

// try is one attempt at one target: the context the upstream call runs under (the
// request's, cancelled by the attempt timeout), which retry it is, and whether the
// attempt timeout cut it short.
//
// The retry → breaker → timeout pipeline used to be failsafe-go's retry policy and
// timeout around gavel's breaker. Its executors built an execution, copies of it, a
// policy executor per policy and result records on every call — some 25 allocations per
// request before anything was sent. The loop in run keeps their semantics (see run) and
// costs the attempt's context and timer.
type try struct {
	ctx     context.Context
	cancel  context.CancelFunc
	retries int // retries before this attempt: 0 for the first
	// state: tryRunning until the attempt returns (tryDone) or its timeout fires first
	// (tryTimedOut); whichever comes first decides the attempt's result.
	state    atomic.Int32
	deferred atomic.Bool // deferCancel: the context outlives the attempt
}

const (
	tryRunning int32 = iota
	tryDone
	tryTimedOut
)

// Context is the attempt's context: the upstream call must use it.
func (t *try) Context() context.Context { return t.ctx }

// Retries is how many attempts at this target came before this one.
func (t *try) Retries() int { return t.retries }

// timedOut reports whether the attempt timeout cancelled the attempt.
func (t *try) timedOut() bool { return t.state.Load() == tryTimedOut }

// expire is the attempt timeout: unless the attempt already returned, it is now the
// upstream's failure and its context is cancelled.
func (t *try) expire() {
	if t.state.CompareAndSwap(tryRunning, tryTimedOut) {
		t.cancel()
	}
}

// deferCancel keeps the attempt's context alive after the attempt returns successfully
// (a stream is read after it); the returned function cancels it once the stream is done.
func (t *try) deferCancel() func() {
	t.deferred.Store(true)
	return func() {
		if t.deferred.CompareAndSwap(true, false) {
			t.cancel()
		}
	}
}

// run executes one target's pipeline: attempts at the target, each through the breaker
// and under the attempt timeout, retried with backoff. It keeps failsafe-go's retry
// policy's semantics, which this loop replaced:
//
//   - an attempt's result counts only if it returned before its timeout; otherwise the
//     attempt failed with timeout.ErrExceeded (an outcome it produced late is closed);
//   - once the request's context has ended, the result is its error, whatever the
//     attempt returned;
//   - a failure is retried when it is retryable (classify) and not the breaker's
//     rejection, at most retries times (a negative retries: the target's max_retries),
//     but never when the breaker is now open or the upstream's Retry-After exceeds
//     max_retry_after; the last failure is returned;
//   - a retry waits for the upstream's Retry-After (scaled so that the jitter cannot
//     shorten it) or else the backoff (Backoff, doubling up to MaxBackoff), jittered by
//     ±jitterFactor, and stops waiting when the request ends.
func (p *pipeline) run(ctx context.Context, e *Executor, retries int, call attempt) (*outcome, error) {
	if retries < 0 {
		retries = p.res.MaxRetries
	}
	var backoff time.Duration // the last backoff delay, as failsafe-go's lastDelay
	for n := 0; ; n++ {
		out, err := p.attempt(ctx, n, call)
		if ctx.Err() != nil {
			closeOutcome(out, nil)
			return nil, p.failure(ctx.Err())
		}
		if err == nil {
			if out == nil {
				return nil, &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindUnknown, Message: "no result"}
			}
			return out, nil
		}
		closeOutcome(out, nil)
		if !p.retryable(err) || n >= retries || p.abort(err) {
			return nil, p.failure(err)
		}
		delay, next := p.res.retryDelay(n, backoff, err, rand.Float64())
		backoff = next
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil, p.failure(ctx.Err())
		}
		e.metrics.Retry(p.target.Provider, p.target.Model)
	}
}

// retryDelay is how long to wait before retrying after attempt n (0 for the first)
// failed with err, given the backoff that preceded it (0 for none yet) and a uniform
// random number in [0, 1) for the jitter; it returns the delay and the backoff to carry to
// the next retry. It is failsafe-go's retry policy's delay for the policy gavel built
// with it (WithBackoff, WithJitterFactor, a DelayFunc for Retry-After): the upstream's
// Retry-After, scaled so that the jitter cannot shorten it, else the backoff (Backoff,
// doubling up to MaxBackoff from the second retry on; a Retry-After leaves it where it
// was), then ±jitterFactor of jitter.
func (r Resilience) retryDelay(n int, backoff time.Duration, err error, random float64) (time.Duration, time.Duration) {
	var delay time.Duration
	if ae := adapters.AsError(err); ae != nil && ae.RetryAfter > 0 {
		delay = time.Duration(float64(ae.RetryAfter) / (1 - jitterFactor))
	} else {
		if backoff != 0 && n >= 1 && r.MaxBackoff != 0 {
			backoff = min(backoff*2, r.MaxBackoff)
		} else {
			backoff = r.Backoff
		}
		delay = backoff
	}
	if delay != 0 {
		delay = time.Duration(float64(delay) * (1 + (1-random*2)*jitterFactor))
	}
	return max(0, delay), backoff
}

// retryable says whether a failed attempt may be tried again at the same target.
func (p *pipeline) retryable(err error) bool {
	return !errors.Is(err, circuitbreaker.ErrOpen) && classify(err).Retryable()
}

// abort stops retrying a retryable failure: when this failure (or a concurrent
// request's) opened the breaker, every retry would be rejected after its backoff, so the
// walk moves on; and when the upstream asks to wait longer than max_retry_after.
func (p *pipeline) abort(err error) bool {
	if p.breaker.isOpen() {
		return true
	}
	ae := adapters.AsError(err)
	return ae != nil && ae.RetryAfter > p.res.MaxRetryAfter
}

// attempt makes attempt n (0 for the first) through the breaker under the attempt
// timeout, and records its verdict in the breaker.
func (p *pipeline) attempt(ctx context.Context, n int, call attempt) (*outcome, error) {
	if !p.breaker.acquire() {
		return nil, circuitbreaker.ErrOpen
	}
	t := &try{retries: n}
	t.ctx, t.cancel = context.WithCancel(ctx)
	timer := time.AfterFunc(p.res.Timeout, t.expire)
	o, err := call(t, p)
	switch v := attemptVerdict(t, err); {
	case injected(err):
		p.breaker.abandon() // a drill's failure says nothing about the target (fault.go)
	case v == verdictOK:
		p.breaker.success()
	case v == verdictFailed:
		p.breaker.failure()
	default:
		p.breaker.abandon()
	}
	if !t.state.CompareAndSwap(tryRunning, tryDone) {
		// The timeout fired first: the attempt failed, whatever it returned.
		closeOutcome(o, nil)
		return nil, timeout.ErrExceeded
	}
	timer.Stop()
	if err != nil || !t.deferred.Load() {
		t.cancel()
	}
	return o, err
}
