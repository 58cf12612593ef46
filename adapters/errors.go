package adapters

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Kind classifies an upstream failure. Every adapter maps its vendor's errors onto these
// kinds; the executor decides retries and failover by kind, and the server maps kinds to
// the OpenAI-style error a client sees.
type Kind int

// The failure kinds, from the executor's point of view.
const (
	KindUnknown       Kind = iota
	KindConnection         // dial, reset, EOF before a response: retryable
	KindTimeout            // upstream or attempt deadline: retryable
	KindRateLimited        // 429: retryable after RetryAfter
	KindOverloaded         // 503/529 "overloaded": retryable
	KindServer             // other 5xx: retryable
	KindAuth               // 401/403: our key is wrong; not retryable, try the next target
	KindBadRequest         // 400/422: the request itself is wrong; never retried
	KindNotFound           // 404: model or route missing upstream
	KindContextLength      // the prompt does not fit the model's context window
	KindContentFilter      // the upstream refused the content
	KindCanceled           // the client went away
	KindProtocol           // the upstream answered something we cannot use: not retried at the same target
)

var kindNames = [...]string{"unknown", "connection", "timeout", "rate_limited", "overloaded",
	"server", "auth", "bad_request", "not_found", "context_length", "content_filter", "canceled", "protocol"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Retryable reports whether another attempt at the same target may succeed. A protocol
// error is not: the upstream answered (a 2xx that does not decode, a stream that ended
// before its first chunk), so the call was most likely billed, and the same target tends
// to answer the same way again. It fails over to the next target instead.
func (k Kind) Retryable() bool {
	switch k {
	case KindConnection, KindTimeout, KindRateLimited, KindOverloaded, KindServer, KindUnknown:
		return true
	}
	return false
}

// Failover reports whether the next target may succeed where this one failed. A request
// the client got wrong fails the same everywhere, so it ends the walk.
func (k Kind) Failover() bool {
	switch k {
	case KindBadRequest, KindContextLength, KindContentFilter, KindCanceled:
		return false
	}
	return true
}

// Error is an upstream failure with its classification. Status and Message are what the
// upstream said; they are kept so the client sees the last upstream reason.
type Error struct {
	Provider   string
	Kind       Kind
	Status     int           // upstream HTTP status, 0 when none was received
	Code       string        // upstream error code or type, when it gave one
	Param      string        // the request parameter the upstream blamed, when it named one
	Message    string        // upstream message, never containing credentials
	RetryAfter time.Duration // from Retry-After / retry-after-ms, 0 when absent
	Err        error         // underlying cause (network error, decode error)
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Status != 0 {
		return fmt.Sprintf("%s: %s (status %d): %s", e.Provider, e.Kind, e.Status, msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Provider, e.Kind, msg)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches another *Error by kind, so errors.Is(err, adapters.ErrRateLimited) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Provider == "" && t.Status == 0 && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrConnection    = &Error{Kind: KindConnection}
	ErrTimeout       = &Error{Kind: KindTimeout}
	ErrRateLimited   = &Error{Kind: KindRateLimited}
	ErrOverloaded    = &Error{Kind: KindOverloaded}
	ErrServer        = &Error{Kind: KindServer}
	ErrAuth          = &Error{Kind: KindAuth}
	ErrBadRequest    = &Error{Kind: KindBadRequest}
	ErrNotFound      = &Error{Kind: KindNotFound}
	ErrContextLength = &Error{Kind: KindContextLength}
	ErrContentFilter = &Error{Kind: KindContentFilter}
	ErrCanceled      = &Error{Kind: KindCanceled}
	ErrProtocol      = &Error{Kind: KindProtocol}
)

// AsError returns err's *Error, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// KindForStatus classifies an HTTP status the way OpenAI-compatible servers use them.
func KindForStatus(status int) Kind {
	switch {
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status == http.StatusRequestTimeout:
		return KindTimeout
	case status == http.StatusServiceUnavailable || status == 529:
		return KindOverloaded
	case status == http.StatusGatewayTimeout:
		return KindTimeout
	case status >= 500:
		return KindServer
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return KindAuth
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusRequestEntityTooLarge:
		return KindContextLength
	case status >= 400:
		return KindBadRequest
	}
	return KindUnknown
}

// TransportError classifies a failure to get any response at all.
func TransportError(provider string, ctx context.Context, err error) *Error {
	kind := KindConnection
	switch {
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) && errors.Is(err, context.Canceled):
		kind = KindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		kind = KindTimeout
	}
	return &Error{Provider: provider, Kind: kind, Err: err}
}

// ParseRetryAfter reads `retry-after-ms` (OpenAI, Anthropic) or `Retry-After` (seconds or
// an HTTP date). It returns 0 when neither is usable.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
