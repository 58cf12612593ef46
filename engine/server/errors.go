package server

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/keys"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

// APIError is an error as an OpenAI client expects it.
type APIError struct {
	Status     int
	Type       string
	Code       string
	Message    string
	Param      string
	RetryAfter int // seconds; sets Retry-After when > 0
	// Remediation, for a denial, says what the caller can change so that the request
	// passes. Every protocol's error encoder carries it as error.remediation, in the wire
	// form of decision.Remediation's JSON tags (the policy contract's shape).
	Remediation *decision.Remediation
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// body is the wire form: {"error": {"message", "type", "param", "code"}}, plus
// "remediation" when the denial carries one.
func (e *APIError) body() map[string]any {
	var param, code any
	if e.Param != "" {
		param = e.Param
	}
	if e.Code != "" {
		code = e.Code
	}
	inner := map[string]any{"message": e.Message, "type": e.Type, "param": param, "code": code}
	if e.Remediation != nil {
		inner["remediation"] = e.Remediation
	}
	return map[string]any{"error": inner}
}

// typeFor mirrors the error types OpenAI uses per status.
func typeFor(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

func newAPIError(status int, code, msg string) *APIError {
	return &APIError{Status: status, Type: typeFor(status), Code: code, Message: msg}
}

// errBadRequest and friends are the request errors the server itself detects.
func errBadRequest(code, param, msg string) *APIError {
	e := newAPIError(http.StatusBadRequest, code, msg)
	e.Param = param
	return e
}

// clientError is the one place that decides what a client sees for an error: the
// pipeline's domain errors, the key store's and the executor's become OpenAI's shape and
// status here and nowhere else. Upstream messages are passed on (they hold no
// credentials: adapters never put keys in errors), internal details are not.
func clientError(err error) *APIError {
	var (
		api     *APIError
		denied  *pipeline.Denied
		budget  *pipeline.BudgetExceeded
		limited *pipeline.RateLimited
		pe      *pipeline.PolicyError
		invalid *keys.InvalidError
		se      *pipeline.StreamError
		fe      *executor.FailedError
	)
	switch {
	case errors.As(err, &api):
		return api
	case errors.Is(err, auth.ErrMissingKey), errors.Is(err, auth.ErrUnknownKey), errors.Is(err, auth.ErrNoKeys):
		return newAPIError(http.StatusUnauthorized, "invalid_api_key", err.Error()+".")
	case errors.Is(err, auth.ErrNotAdmin):
		return newAPIError(http.StatusForbidden, "admin_required", err.Error()+".")
	case errors.Is(err, pipeline.ErrIdempotencyConflict):
		return newAPIError(http.StatusUnprocessableEntity, "idempotency_key_reused",
			"This Idempotency-Key was already used for a request with a different body; use a new key for a new request.")
	case errors.As(err, &invalid):
		return errBadRequest("invalid_value", invalid.Param, invalid.Msg)
	case errors.Is(err, keys.ErrNotFound):
		return newAPIError(http.StatusNotFound, "key_not_found", "No managed key has this id.")
	case errors.Is(err, keys.ErrRevoked):
		return newAPIError(http.StatusConflict, "key_revoked", "The key is revoked; create a new one.")
	case errors.Is(err, keys.ErrTooMany):
		return newAPIError(http.StatusConflict, "too_many_keys", err.Error()+".")
	case errors.Is(err, pipeline.ErrNoBundle):
		return newAPIError(http.StatusServiceUnavailable, "not_ready", "No policy bundle is active yet.")
	case errors.Is(err, ledger.ErrStoreUnavailable):
		e := newAPIError(http.StatusServiceUnavailable, "ledger_unavailable", "The budget and rate-limit store is unavailable; the request was not sent.")
		e.RetryAfter = 1
		return e
	case errors.As(err, &denied):
		e := newAPIError(denied.Deny.Status, denied.Deny.Code, denied.Deny.Message)
		if denied.Deny.Type != "" {
			e.Type = denied.Deny.Type
		}
		e.Remediation = denied.Remediation
		switch r := denied.Remediation; {
		case denied.RetryAfter > 0:
			e.RetryAfter = retrySeconds(denied.RetryAfter)
		case r != nil && r.RetryAfterS > 0 && (e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable):
			e.RetryAfter = r.RetryAfterS // the header SDKs honour when they retry
		}
		return e
	case errors.As(err, &budget):
		e := newAPIError(http.StatusTooManyRequests, "insufficient_quota",
			fmt.Sprintf("Budget `%s` (%s %s, %s) has %s left of %s; this request may cost up to %s.",
				budget.Name, budget.Scope, orDefault(budget.ID, "(global)"), budget.Period,
				pipeline.USD(budget.Remaining()), pipeline.USD(budget.Limit), pipeline.USD(budget.Amount)))
		e.Type = "insufficient_quota"
		e.Remediation = budgetRemediation(budget)
		return e
	case errors.As(err, &limited):
		if limited.Unsatisfiable {
			return newAPIError(http.StatusTooManyRequests, "rate_limit_exceeded", "This request needs more tokens than the per-minute limit of "+limited.Scope+" allows.")
		}
		e := newAPIError(http.StatusTooManyRequests, "rate_limit_exceeded",
			fmt.Sprintf("Rate limit reached for %s %s: %s per minute.", limited.Scope, orDefault(limited.ID, "(global)"), limited.By))
		e.RetryAfter = retrySeconds(limited.RetryAfter)
		e.Remediation = &decision.Remediation{RetryAfterS: e.RetryAfter}
		return e
	case errors.As(err, &pe):
		return newAPIError(http.StatusInternalServerError, "policy_error",
			"The routing policy could not decide on this request, so it was denied. The gateway log has the details.")
	case errors.As(err, &se):
		return streamError(se)
	case errors.As(err, &fe):
		return failedError(fe)
	}
	return newAPIError(http.StatusInternalServerError, "internal_error", "Internal gateway error.")
}

// budgetRemediation tells a caller refused by a budget what is left of it, when it
// resets, and the max_tokens that would still fit.
func budgetRemediation(b *pipeline.BudgetExceeded) *decision.Remediation {
	r := &decision.Remediation{Budget: &decision.RemediationBudget{Name: b.Name, RemainingMUSD: b.Remaining()}, MaxTokens: b.MaxTokens}
	if !b.ResetsAt.IsZero() {
		r.Budget.ResetsAt = b.ResetsAt.UTC().Format(time.RFC3339)
	}
	return r
}

// StatusClientClosedRequest (nginx's 499) records a request whose client went away before
// its answer was complete.
const StatusClientClosedRequest = 499

func errClientClosed() *APIError {
	return newAPIError(StatusClientClosedRequest, "client_closed_request", "The client closed the request.")
}

// writeFailure records a failed write to a client whose response had started: a write that
// ran into its deadline is a client that stopped reading (408 client_timeout: gavel gave
// up on it at the request's deadline), anything else a client that went away (499).
func writeFailure(err error) *APIError {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return newAPIError(http.StatusRequestTimeout, "client_timeout", "The client did not read its response in time (the request's deadline, or write_stall_timeout without progress).")
	}
	return errClientClosed()
}

// errShuttingDown ends the requests still running when the gateway's shutdown grace
// (shutdown_timeout) is about to run out.
func errShuttingDown() *APIError {
	e := newAPIError(http.StatusServiceUnavailable, "server_shutting_down", "The gateway is shutting down; retry the request.")
	e.RetryAfter = 1
	return e
}

// streamError is what a client is told when its stream fails after it started.
func streamError(se *pipeline.StreamError) *APIError {
	if se.Timeout {
		return newAPIError(http.StatusGatewayTimeout, "request_timeout", "The request exceeded its time limit while streaming.")
	}
	msg := "The upstream stream failed after it started."
	if ae := adapters.AsError(se.Err); ae != nil && ae.Message != "" {
		msg += " " + ae.Message
	}
	return newAPIError(http.StatusBadGateway, "upstream_stream_error", msg)
}

// failedError maps "no target answered": errors the client caused keep their 4xx, a client
// that went away is 499 (as nginx logs it), a walk that reached no upstream is 503 with
// Retry-After set to when the first breaker lets a probe through, an upstream's 429 is
// passed on with its Retry-After, an upstream or attempt timeout is 504, and anything else
// is 502 with the last upstream reason.
func failedError(fe *executor.FailedError) *APIError {
	if fe.AllRejected() {
		msg := "No provider is available for this request right now."
		retry := time.Second
		if d, ok := fe.RetryAfter(); ok {
			msg = "Every provider for this request has an open circuit breaker; try again shortly."
			retry = d
		}
		e := newAPIError(http.StatusServiceUnavailable, "no_available_target", msg)
		e.RetryAfter = retrySeconds(retry)
		return e
	}
	last := fe.Reason()
	ae := adapters.AsError(last)
	if ae == nil {
		return newAPIError(http.StatusBadGateway, "upstream_error", "All upstream providers failed: "+last.Error())
	}
	reason := ae.Message
	if reason == "" && ae.Err != nil {
		reason = ae.Err.Error()
	}
	switch ae.Kind {
	case adapters.KindBadRequest:
		// The upstream's param tells the client which field to fix; keep it.
		e := newAPIError(http.StatusBadRequest, orDefault(ae.Code, "invalid_request"), reason)
		e.Param = ae.Param
		return e
	case adapters.KindContextLength:
		return newAPIError(http.StatusBadRequest, "context_length_exceeded", reason)
	case adapters.KindContentFilter:
		return newAPIError(http.StatusBadRequest, "content_filter", reason)
	case adapters.KindCanceled:
		return errClientClosed()
	case adapters.KindTimeout:
		return newAPIError(http.StatusGatewayTimeout, "upstream_timeout", "The upstream provider timed out: "+reason)
	case adapters.KindRateLimited:
		e := newAPIError(http.StatusTooManyRequests, "rate_limit_exceeded", "The upstream provider "+ae.Provider+" is rate limiting: "+reason)
		if ae.RetryAfter > 0 {
			// The upstream's own wait; gavel adds none of its own, so it stays truthful.
			e.RetryAfter = retrySeconds(ae.RetryAfter)
		}
		return e
	}
	msg := "All upstream providers failed; last: " + ae.Provider
	if ae.Status != 0 {
		msg += " returned " + strconv.Itoa(ae.Status)
	}
	if reason != "" {
		msg += ": " + reason
	}
	return newAPIError(http.StatusBadGateway, "upstream_error", msg)
}

// retrySeconds is a Retry-After in whole seconds, rounded up and at least 1: a client
// told 0 would retry at once.
func retrySeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
