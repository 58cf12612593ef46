package executor

import (
	"errors"
	"fmt"
	"time"
)

// Resilience configures one provider's pipeline.
type Resilience struct {
	// Timeout bounds one attempt: to the full response, or for a stream to its first chunk;
	// a started stream may then go at most this long without a chunk.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRetries is the number of retries at the same target after the first attempt.
	MaxRetries int `yaml:"max_retries"`
	// Backoff is the first retry delay; it doubles up to MaxBackoff, with jitter.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxRetryAfter is the longest upstream Retry-After gavel waits out; a longer one makes
	// it fail over to the next target at once.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	Breaker       Breaker       `yaml:"breaker"`
}

// Breaker configures a circuit breaker per provider+model.
type Breaker struct {
	// FailureThreshold failures open the breaker: consecutive ones, or when FailureWindow
	// is set, FailureThreshold out of the last FailureWindow attempts.
	FailureThreshold uint `yaml:"failure_threshold"`
	FailureWindow    uint `yaml:"failure_window"`
	// Delay is how long the breaker stays open before letting a probe through.
	Delay time.Duration `yaml:"delay"`
	// SuccessThreshold probes must succeed to close it again.
	SuccessThreshold uint `yaml:"success_threshold"`
}

// Defaults for a provider that configures nothing.
const (
	DefaultTimeout          = 60 * time.Second
	DefaultMaxRetries       = 2
	DefaultBackoff          = 200 * time.Millisecond
	DefaultMaxBackoff       = 5 * time.Second
	DefaultMaxRetryAfter    = 10 * time.Second
	DefaultFailureThreshold = 5
	DefaultBreakerDelay     = 30 * time.Second
	DefaultSuccessThreshold = 1
)

// DefaultResilience returns the defaults.
func DefaultResilience() Resilience {
	return Resilience{
		Timeout: DefaultTimeout, MaxRetries: DefaultMaxRetries, Backoff: DefaultBackoff,
		MaxBackoff: DefaultMaxBackoff, MaxRetryAfter: DefaultMaxRetryAfter,
		Breaker: Breaker{FailureThreshold: DefaultFailureThreshold, Delay: DefaultBreakerDelay, SuccessThreshold: DefaultSuccessThreshold},
	}
}

// WithDefaults fills zero durations and thresholds with the defaults. MaxRetries is taken
// as given: zero means no retries.
func (r Resilience) WithDefaults() Resilience {
	d := DefaultResilience()
	if r.Timeout == 0 {
		r.Timeout = d.Timeout
	}
	if r.Backoff == 0 {
		r.Backoff = d.Backoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = max(d.MaxBackoff, r.Backoff)
	}
	if r.MaxRetryAfter == 0 {
		r.MaxRetryAfter = d.MaxRetryAfter
	}
	if r.Breaker.FailureThreshold == 0 {
		r.Breaker.FailureThreshold = d.Breaker.FailureThreshold
	}
	if r.Breaker.Delay == 0 {
		r.Breaker.Delay = d.Breaker.Delay
	}
	if r.Breaker.SuccessThreshold == 0 {
		r.Breaker.SuccessThreshold = d.Breaker.SuccessThreshold
	}
	return r
}

// Validate reports settings that cannot work.
func (r Resilience) Validate() error {
	var errs []error
	if r.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must not be negative"))
	}
	if r.MaxRetries < 0 || r.MaxRetries > 10 {
		errs = append(errs, fmt.Errorf("max_retries must be 0–10, got %d", r.MaxRetries))
	}
	if r.Backoff < 0 || r.MaxBackoff < 0 || (r.MaxBackoff > 0 && r.MaxBackoff < r.Backoff) {
		errs = append(errs, fmt.Errorf("backoff and max_backoff must be positive with backoff ≤ max_backoff"))
	}
	if r.MaxRetryAfter < 0 {
		errs = append(errs, fmt.Errorf("max_retry_after must not be negative"))
	}
	if b := r.Breaker; b.FailureWindow != 0 && b.FailureWindow < b.FailureThreshold {
		errs = append(errs, fmt.Errorf("breaker.failure_window (%d) must be ≥ failure_threshold (%d)", b.FailureWindow, b.FailureThreshold))
	}
	if r.Breaker.Delay < 0 {
		errs = append(errs, fmt.Errorf("breaker.delay must not be negative"))
	}
	return errors.Join(errs...)
}
