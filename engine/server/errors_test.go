package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/pipeline"
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

// A denial's remediation reaches the error body as error.remediation, in the contract's
// shape: from the policy, from a budget the ledger refused, from a rate limit.
func TestClientErrorRemediation(t *testing.T) {
	resets := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		err        error
		want       string // error.remediation as JSON
		retryAfter int
	}{
		{"policy", &pipeline.Denied{Deny: decision.Deny{Status: 403, Code: "tier_not_allowed", Message: "m"},
			Remediation: &decision.Remediation{Models: []string{"fast", "cheap"}}}, `{"models":["fast","cheap"]}`, 0},
		{"policy 429 sets Retry-After", &pipeline.Denied{Deny: decision.Deny{Status: 429, Code: "insufficient_quota", Message: "m"},
			Remediation: &decision.Remediation{RetryAfterS: 40, Budget: &decision.RemediationBudget{Name: "d", ResetsAt: "2026-12-08T00:00:00Z"}}},
			`{"budget":{"name":"d","remaining_musd":0,"resets_at":"2026-12-08T00:00:00Z"},"retry_after_s":40}`, 40},
		{"policy without", &pipeline.Denied{Deny: decision.Deny{Status: 403, Code: "x", Message: "m"}}, ``, 0},
		{"ledger budget", &pipeline.BudgetExceeded{Name: "team-daily", Scope: "team", ID: "t", Period: "day", Limit: 1000, Spent: 700, Reserved: 100,
			Amount: 500, ResetsAt: resets, MaxTokens: 120}, `{"budget":{"name":"team-daily","remaining_musd":200,"resets_at":"2026-12-08T00:00:00Z"},"max_tokens":120}`, 0},
		{"rate limit", &pipeline.RateLimited{Scope: "key", ID: "k", By: "requests", RetryAfter: 2500 * time.Millisecond}, `{"retry_after_s":3}`, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := clientError(tc.err)
			raw, err := json.Marshal(e.body())
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Error struct {
					Remediation json.RawMessage `json:"remediation"`
				} `json:"error"`
			}
			json.Unmarshal(raw, &body)
			if string(body.Error.Remediation) != tc.want || e.RetryAfter != tc.retryAfter {
				t.Errorf("remediation %s, Retry-After %d; want %s, %d", body.Error.Remediation, e.RetryAfter, tc.want, tc.retryAfter)
			}
		})
	}
}

// The Anthropic Messages error body carries the same remediation, under error.remediation.
func TestAnthropicErrorRemediation(t *testing.T) {
	e := anthropicError(&pipeline.Denied{Deny: decision.Deny{Status: 403, Code: "tier_not_allowed", Message: "m"},
		Remediation: &decision.Remediation{Models: []string{"fast"}}})
	raw, err := json.Marshal(anthropicBody(e))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"error","error":{"type":"permission_error","message":"m","remediation":{"models":["fast"]}}}`; string(raw) != want {
		t.Errorf("body %s, want %s", raw, want)
	}
	raw, _ = json.Marshal(anthropicBody(anthropicError(&pipeline.Denied{Deny: decision.Deny{Status: 403, Code: "x", Message: "m"}})))
	if strings.Contains(string(raw), "remediation") {
		t.Errorf("no remediation, yet the body has one: %s", raw)
	}
}
