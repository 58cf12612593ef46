package server

import (
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/executor"
)

// What a client is told when no target answered.
func TestFailedErrorStatuses(t *testing.T) {
	tried := func(errs ...error) *executor.FailedError {
		fe := &executor.FailedError{}
		for i, err := range errs {
			fe.Tried = append(fe.Tried, &executor.TargetError{Target: decision.Target{Provider: string(rune('a' + i)), Model: "m"}, Err: err})
		}
		return fe
	}
	limited := &adapters.Error{Provider: "a", Kind: adapters.KindRateLimited, Status: 429, Message: "slow down", RetryAfter: 6500 * time.Millisecond}
	tests := []struct {
		name       string
		fe         *executor.FailedError
		status     int
		code       string
		retryAfter int
	}{
		{"upstream 429 keeps its Retry-After, rounded up", tried(limited), 429, "rate_limit_exceeded", 7},
		{"429 without Retry-After gets none", tried(&adapters.Error{Provider: "a", Kind: adapters.KindRateLimited, Status: 429}), 429, "rate_limit_exceeded", 0},
		{"429 then an open breaker: the upstream's reason", tried(limited, &executor.OpenError{Retry: time.Hour}), 429, "rate_limit_exceeded", 7},
		{"open breakers: the shortest delay", tried(&executor.OpenError{Retry: time.Hour}, &executor.OpenError{Retry: 1500 * time.Millisecond}), 503, "no_available_target", 2},
		{"open breaker past its delay: at least 1 s", tried(&executor.OpenError{}), 503, "no_available_target", 1},
		{"missing provider", tried(executor.ErrNoProvider), 503, "no_available_target", 1},
		{"attempt timeout", tried(&adapters.Error{Provider: "a", Kind: adapters.KindTimeout}), 504, "upstream_timeout", 0},
		{"client gone", tried(&adapters.Error{Provider: "a", Kind: adapters.KindCanceled}), 499, "client_closed_request", 0},
		{"server error", tried(&adapters.Error{Provider: "a", Kind: adapters.KindServer, Status: 500}), 502, "upstream_error", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := clientError(tc.fe)
			if e.Status != tc.status || e.Code != tc.code || e.RetryAfter != tc.retryAfter {
				t.Errorf("got %d %s Retry-After %d (%s), want %d %s %d", e.Status, e.Code, e.RetryAfter, e.Message, tc.status, tc.code, tc.retryAfter)
			}
		})
	}
}
