package openai

import (
	"strconv"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// failed sets what an OpenAI error body says of a failed response.
func (p *Provider) failed(e *adapters.Error, w wireError) {
	e.Code = p.Clean(firstNonEmpty(w.Code, w.Type), httpx.MaxCode)
	e.Message = p.Clean(w.Message, httpx.MaxMessage)
	e.Param = p.Clean(w.Param, httpx.MaxCode)
	e.Kind = refineKind(e.Kind, w)
}

// checkAnswer finds the error that some compatible servers and proxies report with a 2xx
// status, in an answer that holds no result.
func (p *Provider) checkAnswer(out any, body []byte) *adapters.Error {
	switch a := out.(type) {
	case *adapters.ChatResponse:
		if len(a.Choices) > 0 {
			return nil
		}
	case *adapters.EmbeddingResponse:
		if len(a.Data) > 0 {
			return nil
		}
	}
	if !mayHoldError(body) {
		return nil
	}
	if w, ok := parseErrorBody(body); ok {
		return p.streamError(w)
	}
	return nil
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
	return p.EventError(kind, firstNonEmpty(w.Code, w.Type), w.Message, "upstream sent an error event")
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
