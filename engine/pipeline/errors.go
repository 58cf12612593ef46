package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/policy"
)

// ErrNoBundle: no policy bundle is active yet, so no request can be judged.
var ErrNoBundle = policy.ErrNoBundle

// ErrNoLedger denies a decision that names budgets or rate limits when gavel has no store
// to enforce them with: they must hold, or the request must not go.
var ErrNoLedger = errors.New("the decision names budgets or rate limits but no ledger is configured")

// PolicyError is a failure to obtain a usable decision (evaluation failed, the result
// did not parse, the decision asked for something gavel cannot do): gavel denies when in
// doubt.
type PolicyError struct{ Err error }

func (e *PolicyError) Error() string { return "policy: " + e.Err.Error() }
func (e *PolicyError) Unwrap() error { return e.Err }

// Denied is the policy's own refusal, with the error it wants the client to see and, when
// the policy gave one, what the caller can change so that its request passes.
// RetryAfter, when set, is how long until the refusal may no longer hold: for
// no_available_target, until the first open breaker of the route lets a probe through.
type Denied struct {
	Deny        decision.Deny
	Remediation *decision.Remediation
	RetryAfter  time.Duration
}

func (e *Denied) Error() string {
	return fmt.Sprintf("denied by policy: %d %s: %s", e.Deny.Status, e.Deny.Code, e.Deny.Message)
}

// BudgetExceeded: reserving the request's estimated cost would break a hard budget.
// Nothing was reserved and nothing was sent.
type BudgetExceeded struct {
	Name   string // the budget's name in the decision
	Scope  string
	ID     string // "" for global
	Period string
	// Limit, Spent and Reserved are the budget's standing in micro-USD; Amount is the
	// estimate that did not fit.
	Limit, Spent, Reserved, Amount int64
	// ResetsAt is when the budget's period ends.
	ResetsAt time.Time
	// MaxTokens is the largest max_tokens whose estimate fits what is left, at the
	// dearest target; 0 when none does.
	MaxTokens int
}

func (e *BudgetExceeded) Error() string {
	return fmt.Sprintf("budget %s (%s %s, %s) exceeded: spent %d + reserved %d + amount %d > limit %d micro-USD",
		e.Name, e.Scope, e.ID, e.Period, e.Spent, e.Reserved, e.Amount, e.Limit)
}

// Remaining is what is left of the budget, never negative.
func (e *BudgetExceeded) Remaining() int64 { return max(0, e.Limit-e.Spent-e.Reserved) }

// RateLimited: a rate limit of the decision refused the request; nothing was consumed.
type RateLimited struct {
	Scope string
	ID    string // "" for global
	// By is the dimension that refused: "requests" or "tokens".
	By string
	// RetryAfter is how long until the request would fit, if nothing else arrives.
	RetryAfter time.Duration
	// Unsatisfiable: the request needs more tokens than the per-minute limit allows at
	// all; waiting will not help.
	Unsatisfiable bool
}

func (e *RateLimited) Error() string {
	if e.Unsatisfiable {
		return "rate limit " + e.Scope + " can never admit this request"
	}
	return fmt.Sprintf("rate limit reached for %s %s (%s); retry after %s", e.Scope, e.ID, e.By, e.RetryAfter)
}

// StreamError is a stream that failed after its first bytes reached the client: there is
// no failing over any more, only telling the client.
type StreamError struct {
	Err error
	// Timeout: the request's own deadline ended the stream, not the upstream.
	Timeout bool
}

func (e *StreamError) Error() string { return "stream failed after it started: " + e.Err.Error() }
func (e *StreamError) Unwrap() error { return e.Err }

// ErrIdempotencyConflict: an Idempotency-Key the caller used before, within its TTL, for a
// request with another body. Nothing was sent.
var ErrIdempotencyConflict = errors.New("this Idempotency-Key was used for a different request")
