package executor

import (
	"context"
	"errors"
	"strings"

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

// AllRejected reports whether no upstream was contacted: every target's breaker was open
// or its provider missing.
func (e *FailedError) AllRejected() bool {
	for _, t := range e.Tried {
		if !errors.Is(t.Err, circuitbreaker.ErrOpen) && !errors.Is(t.Err, ErrNoProvider) {
			return false
		}
	}
	return len(e.Tried) > 0
}

// classify turns whatever an attempt returned into an *adapters.Error kind.
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

// breakerFailure says which failures count against a target's health: the upstream's
// fault, not the client's.
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
