package openai

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// statusError turns a non-2xx response into an *adapters.Error. It reads (a bounded part
// of) the body but does not close it.
func (p *Provider) statusError(resp *http.Response) *adapters.Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, httpx.MaxErrorBody))
	return p.errorFromBody(resp.StatusCode, resp.Header, body, time.Now())
}

// errorFromBody classifies an HTTP failure from its status, headers and body.
func (p *Provider) errorFromBody(status int, h http.Header, body []byte, now time.Time) *adapters.Error {
	e := &adapters.Error{Provider: p.name, Status: status, Kind: kindForHTTP(status)}
	if h != nil {
		e.RetryAfter = adapters.ParseRetryAfter(h, now)
	}
	if w, ok := parseErrorBody(body); ok {
		e.Code = p.clean(firstNonEmpty(w.Code, w.Type), httpx.MaxCode)
		e.Message = p.clean(w.Message, httpx.MaxMessage)
		e.Kind = refineKind(e.Kind, w)
	} else {
		// Not an OpenAI error body: an HTML page from a proxy or load balancer. Its first
		// words usually say which hop failed, which is worth keeping.
		e.Message = p.clean(string(body), httpx.MaxMessage)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = "upstream returned status without a message"
		}
	}
	return e
}

// kindForHTTP is adapters.KindForStatus, except that a non-2xx status below 400 (a
// redirect the client was told not to follow) means the upstream answered something the
// adapter cannot use.
func kindForHTTP(status int) adapters.Kind {
	if status < 400 {
		return adapters.KindProtocol
	}
	return adapters.KindForStatus(status)
}

// refineKind lets the error body sharpen the kind the status gave. A 429 or 401/403 keeps
// its kind whatever the body says: the executor must back off or skip the key regardless.
func refineKind(k adapters.Kind, w wireError) adapters.Kind {
	switch k {
	case adapters.KindRateLimited, adapters.KindAuth:
		return k
	}
	if ck, ok := kindForCode(w.Code); ok && (ck == adapters.KindContextLength || ck == adapters.KindContentFilter) {
		return ck
	}
	if tk, ok := kindForCode(w.Type); ok && (tk == adapters.KindContextLength || tk == adapters.KindContentFilter) {
		return tk
	}
	// vLLM and older OpenAI-compatible servers report an overlong prompt as a plain 400
	// whose only sign is the message wording, which they copied from OpenAI.
	if k == adapters.KindBadRequest && strings.Contains(w.Message, "maximum context length") {
		return adapters.KindContextLength
	}
	return k
}

// kindForCode maps OpenAI's error codes and types to kinds. It is the only evidence for
// errors sent inside a stream, which carry no HTTP status.
func kindForCode(code string) (adapters.Kind, bool) {
	switch code {
	case "context_length_exceeded", "string_above_max_length":
		return adapters.KindContextLength, true
	case "content_filter", "content_policy_violation":
		return adapters.KindContentFilter, true
	case "rate_limit_exceeded", "insufficient_quota", "tokens", "requests", "rate_limit_error":
		return adapters.KindRateLimited, true
	case "invalid_api_key", "authentication_error", "permission_error", "invalid_organization":
		return adapters.KindAuth, true
	case "model_not_found", "not_found_error", "NotFoundError":
		return adapters.KindNotFound, true
	case "invalid_request_error", "BadRequestError":
		return adapters.KindBadRequest, true
	case "server_error", "internal_error", "api_error", "InternalServerError":
		return adapters.KindServer, true
	case "overloaded_error", "engine_overloaded", "service_unavailable":
		return adapters.KindOverloaded, true
	case "timeout", "request_timeout":
		return adapters.KindTimeout, true
	}
	return 0, false
}

// streamError turns an error event received mid-stream into an *adapters.Error. There is
// no status, so the code decides; an unexplained mid-stream failure is the server's.
func (p *Provider) streamError(w wireError) *adapters.Error {
	kind := adapters.KindServer
	if k, ok := kindForCode(w.Code); ok {
		kind = k
	} else if k, ok := kindForCode(w.Type); ok {
		kind = k
	} else if st, err := strconv.Atoi(w.Code); err == nil && st >= 400 && st < 600 {
		// vLLM puts the HTTP status it would have answered with in the code.
		kind = adapters.KindForStatus(st)
	}
	msg := p.clean(w.Message, httpx.MaxMessage)
	if msg == "" {
		msg = "upstream sent an error event"
	}
	return &adapters.Error{Provider: p.name, Kind: kind, Code: p.clean(firstNonEmpty(w.Code, w.Type), httpx.MaxCode), Message: msg}
}

func (p *Provider) protocolError(msg string, err error) *adapters.Error {
	return &adapters.Error{Provider: p.name, Kind: adapters.KindProtocol, Message: msg, Err: err}
}

// clean makes upstream text safe to keep: bounded, valid UTF-8, on one line, and without
// our API key, which some servers echo back in authentication errors. The key is removed
// before truncation (which could leave half of it) and again after the whitespace folding
// (which could join pieces of it).
func (p *Provider) clean(s string, limit int) string {
	return httpx.Clean(s, limit, p.apiKey)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
