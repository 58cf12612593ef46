package executor

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

// ErrNoProvider means a decision named a provider gavel has not configured.
var ErrNoProvider = errors.New("provider not configured")

// TargetError is one target's failure.
type TargetError struct {
	Target decision.Target
	Err    error
}

func (e *TargetError) Error() string { return e.Target.String() + ": " + e.Err.Error() }

// Unwrap returns the target's error.
func (e *TargetError) Unwrap() error { return e.Err }

// FailedError means no target produced a response. Last is the error that ended the walk;
// Tried lists every target's failure in order.
type FailedError struct {
	Tried []*TargetError
}

// add records target t's failure, making e when it is nil, and returns e.
func (e *FailedError) add(t decision.Target, err error) *FailedError {
	if e == nil {
		e = &FailedError{}
	}
	e.Tried = append(e.Tried, &TargetError{Target: t, Err: err})
	return e
}

func (e *FailedError) Error() string {
	parts := make([]string, len(e.Tried))
	for i, t := range e.Tried {
		parts[i] = t.Error()
	}
	return "all targets failed: " + strings.Join(parts, "; ")
}

// Last returns the error of the last target tried.
func (e *FailedError) Last() error {
	if len(e.Tried) == 0 {
		return nil
	}
	return e.Tried[len(e.Tried)-1].Err
}

// Unwrap exposes every target's error to errors.Is and errors.As.
func (e *FailedError) Unwrap() []error {
	out := make([]error, len(e.Tried))
	for i, t := range e.Tried {
		out[i] = t
	}
	return out
}

// RetryAfter is the shortest wait before one of the targets whose breaker rejected the
// request lets a probe through, and whether any breaker rejected it.
func (e *FailedError) RetryAfter() (time.Duration, bool) {
	var d time.Duration
	found := false
	for _, t := range e.Tried {
		var oe *OpenError
		if errors.As(t.Err, &oe) && (!found || oe.Retry < d) {
			d, found = oe.Retry, true
		}
	}
	return d, found
}

// Reason is the failure to report to the client: the last one an upstream gave. A target
// rejected without being contacted (open breaker, missing provider) after an upstream
// failed says less about why the request failed than that failure does.
func (e *FailedError) Reason() error {
	for i := len(e.Tried) - 1; i >= 0; i-- {
		if err := e.Tried[i].Err; !rejected(err) {
			return err
		}
	}
	return e.Last()
}

func rejected(err error) bool {
	return errors.Is(err, circuitbreaker.ErrOpen) || errors.Is(err, ErrNoProvider)
}

// OpenError is a target whose circuit breaker rejected the attempt; Retry is how long
// until the breaker lets a probe through. It matches circuitbreaker.ErrOpen.
type OpenError struct {
	Retry time.Duration
}

func (e *OpenError) Error() string {
	return "circuit breaker open for another " + e.Retry.Round(time.Millisecond).String()
}

// Unwrap returns circuitbreaker.ErrOpen.
func (e *OpenError) Unwrap() error { return circuitbreaker.ErrOpen }

// AllRejected reports whether no upstream was contacted: every target's breaker was open
// or its provider missing.
func (e *FailedError) AllRejected() bool {
	for _, t := range e.Tried {
		if !rejected(t.Err) {
			return false
		}
	}
	return len(e.Tried) > 0
}

// classify turns whatever an attempt or a pipeline returned into an *adapters.Error kind:
// the attempt timeout (timeout.ErrExceeded) and the caller's context end included.
func classify(err error) adapters.Kind {
	if ae := adapters.AsError(err); ae != nil {
		return ae.Kind
	}
	switch {
	case errors.Is(err, timeout.ErrExceeded), errors.Is(err, context.DeadlineExceeded):
		return adapters.KindTimeout
	case errors.Is(err, context.Canceled):
		return adapters.KindCanceled
	}
	return adapters.KindUnknown
}

// breakerFailure says which failures count against a target's health (its breaker, its
// error rate in the signals): the upstream's fault, not the client's. An attempt timeout
// is the upstream's fault; a cancellation (the client went away, a hedge won elsewhere)
// is not.
func breakerFailure(err error) bool {
	if err == nil {
		return false
	}
	switch classify(err) {
	case adapters.KindConnection, adapters.KindTimeout, adapters.KindServer, adapters.KindOverloaded,
		adapters.KindRateLimited, adapters.KindProtocol, adapters.KindUnknown:
		return true
	}
	return false
}

func outcomeLabel(err error) string {
	if err == nil {
		return "ok"
	}
	return classify(err).String()
}
