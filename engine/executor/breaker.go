package executor

import (
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

// breaker is one target's circuit breaker: closed, it opens when FailureThreshold of the
// last FailureWindow attempts (or FailureThreshold in a row) failed; open, it rejects
// every attempt for Delay; then it is half-open and admits SuccessThreshold probes at a
// time, closing when that many succeed and opening again at the first failure.
//
// It is gavel's own rather than failsafe-go's because an attempt can end a third way: it
// was cancelled (a hedge won elsewhere, the client left, the request's deadline passed).
// That says nothing about the upstream, so it must count as neither a success nor a
// failure. failsafe-go's breaker records every result it does not treat as a failure as
// a success (a lost hedge would reset a run of failures, a cancelled probe would close
// the circuit) and cannot hand a half-open permit back without recording a result.
type breaker struct {
	cfg      Breaker
	now      func() time.Time
	onChange func(from, to circuitbreaker.State) // called without the lock held

	mu    sync.Mutex
	state circuitbreaker.State
	// closed: the outcomes of the last len(ring) attempts (true: failed), a ring.
	ring     []bool
	next     int
	recorded int
	// open: when the delay ends.
	until time.Time
	// half-open: probes admitted and not yet ended, and the successes among the ended.
	probes, successes uint
}

func newBreaker(cfg Breaker, onChange func(from, to circuitbreaker.State)) *breaker {
	size := max(cfg.FailureWindow, cfg.FailureThreshold, 1)
	return &breaker{cfg: cfg, now: time.Now, onChange: onChange, state: circuitbreaker.ClosedState, ring: make([]bool, size)}
}

// acquire reports whether an attempt may go to the target now. Each true must be
// followed by exactly one of success, failure or abandon.
func (b *breaker) acquire() bool {
	b.mu.Lock()
	from := b.state
	ok := false
	switch b.state {
	case circuitbreaker.ClosedState:
		ok = true
	case circuitbreaker.OpenState:
		if !b.now().Before(b.until) {
			b.to(circuitbreaker.HalfOpenState)
			ok = b.admitProbe()
		}
	case circuitbreaker.HalfOpenState:
		ok = b.admitProbe()
	}
	to := b.state
	b.mu.Unlock()
	b.changed(from, to)
	return ok
}

func (b *breaker) admitProbe() bool {
	if b.probes >= max(b.cfg.SuccessThreshold, 1) {
		return false
	}
	b.probes++
	return true
}

// success ends an admitted attempt that the upstream answered.
func (b *breaker) success() { b.end(false, true) }

// failure ends an admitted attempt that failed by the upstream's fault.
func (b *breaker) failure() { b.end(true, true) }

// abandon ends an admitted attempt that was cancelled: nothing is recorded, and a
// half-open probe's permit is given back.
func (b *breaker) abandon() {
	b.mu.Lock()
	if b.state == circuitbreaker.HalfOpenState && b.probes > 0 {
		b.probes--
	}
	b.mu.Unlock()
}

// recordFailure counts a failure seen after its attempt ended (a stream that broke
// after its first chunk): no permit is involved.
func (b *breaker) recordFailure() { b.end(true, false) }

func (b *breaker) end(failed, admitted bool) {
	b.mu.Lock()
	from := b.state
	switch b.state {
	case circuitbreaker.ClosedState:
		b.ring[b.next] = failed
		b.next = (b.next + 1) % len(b.ring)
		b.recorded = min(b.recorded+1, len(b.ring))
		n := uint(0)
		for i := 0; i < b.recorded; i++ {
			if b.ring[i] {
				n++
			}
		}
		if n >= max(b.cfg.FailureThreshold, 1) {
			b.to(circuitbreaker.OpenState)
		}
	case circuitbreaker.HalfOpenState:
		if admitted && b.probes > 0 {
			b.probes--
		}
		switch {
		case failed:
			b.to(circuitbreaker.OpenState)
		case admitted:
			b.successes++
			if b.successes >= max(b.cfg.SuccessThreshold, 1) {
				b.to(circuitbreaker.ClosedState)
			}
		}
	}
	// Open: an attempt admitted before the circuit opened ended; it changes nothing.
	to := b.state
	b.mu.Unlock()
	b.changed(from, to)
}

// to moves to state s and resets what s counts. The caller holds the lock.
func (b *breaker) to(s circuitbreaker.State) {
	b.state = s
	switch s {
	case circuitbreaker.ClosedState:
		clear(b.ring)
		b.next, b.recorded = 0, 0
	case circuitbreaker.OpenState:
		b.until = b.now().Add(b.cfg.Delay)
	case circuitbreaker.HalfOpenState:
		b.probes, b.successes = 0, 0
	}
}

func (b *breaker) changed(from, to circuitbreaker.State) {
	if from != to && b.onChange != nil {
		b.onChange(from, to)
	}
}

// isOpen reports whether the circuit is open (its delay may have passed: the next
// acquire then makes it half-open).
func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == circuitbreaker.OpenState
}

func (b *breaker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == circuitbreaker.ClosedState
}

// remainingDelay is how long an open circuit still rejects every attempt (0 otherwise).
func (b *breaker) remainingDelay() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != circuitbreaker.OpenState {
		return 0
	}
	return max(0, b.until.Sub(b.now()))
}
