package anthropic

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// wireError is an upstream error reduced to the parts gavel keeps.
type wireError struct {
	Type      string
	Message   string
	RequestID string
}

// parseErrorBody extracts an Anthropic error, {"type":"error","error":{"type","message"},
// "request_id"}. ok is false when the body holds none (an HTML page from Cloudflare or a
// proxy, say). A body whose "error" is a bare string, as some proxies send, is accepted.
func parseErrorBody(body []byte) (w wireError, ok bool) {
	var env errorEnvelope
	if json.Unmarshal(body, &env) != nil {
		return w, false
	}
	raw := bytes.TrimSpace(env.Error)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return w, false
	}
	w.RequestID = httpx.RawText(env.RequestID)
	switch raw[0] {
	case '{':
		var obj wireErrorObject
		if json.Unmarshal(raw, &obj) != nil {
			return w, false
		}
		w.Type, w.Message = httpx.RawText(obj.Type), httpx.RawText(obj.Message)
		return w, true
	case '"':
		w.Message = httpx.RawText(raw)
		return w, true
	}
	return w, false
}

// errorObject converts the "error" of a stream event or a 2xx body.
func errorObject(obj *wireErrorObject) wireError {
	if obj == nil {
		return wireError{}
	}
	return wireError{Type: httpx.RawText(obj.Type), Message: httpx.RawText(obj.Message)}
}

// failed sets what an Anthropic error body says of a failed response.
func (p *Provider) failed(e *adapters.Error, w wireError) {
	e.Code = p.Clean(w.Type, httpx.MaxCode)
	e.Message = p.Clean(withRequestID(w), httpx.MaxMessage)
	e.Kind = refineKind(e.Kind, w)
}

// withRequestID appends Anthropic's request id, which support asks for, to the message.
func withRequestID(w wireError) string {
	if w.RequestID == "" {
		return w.Message
	}
	if w.Message == "" {
		return "request_id " + w.RequestID
	}
	return w.Message + " (request_id " + w.RequestID + ")"
}

// refineKind lets the error body sharpen the kind the status gave, within its class: a
// generic 4xx can become context length (an overlong prompt is a plain
// invalid_request_error) or auth (402 billing_error: our account cannot pay, another
// target may), and a generic 5xx can become overload (an overloaded_error behind a proxy's
// 500 or 502). Every other status keeps its kind whatever the body says: the executor
// must back off on a 429 or 529 and skip the key on a 401 or 403 regardless.
func refineKind(k adapters.Kind, w wireError) adapters.Kind {
	switch k {
	case adapters.KindBadRequest:
		if isContextLength(w.Message) {
			return adapters.KindContextLength
		}
		if w.Type == "billing_error" {
			return adapters.KindAuth
		}
	case adapters.KindServer:
		if w.Type == "overloaded_error" {
			return adapters.KindOverloaded
		}
	}
	return k
}

// isContextLength recognises Anthropic's overlong-prompt messages, which come as a plain
// invalid_request_error: "prompt is too long: 208310 tokens > 200000 maximum", and
// "input length and `max_tokens` exceed context limit: 197000 + 8192 > 200000, …".
func isContextLength(msg string) bool {
	return strings.Contains(msg, "prompt is too long") || strings.Contains(msg, "exceed context limit")
}

// kindForType maps Anthropic's error types to kinds. It is the only evidence for error
// events sent inside a stream, which carry no HTTP status.
func kindForType(t string) (adapters.Kind, bool) {
	switch t {
	case "overloaded_error":
		return adapters.KindOverloaded, true
	case "rate_limit_error":
		return adapters.KindRateLimited, true
	case "api_error":
		return adapters.KindServer, true
	case "invalid_request_error":
		return adapters.KindBadRequest, true
	case "authentication_error", "permission_error", "billing_error":
		return adapters.KindAuth, true
	case "not_found_error":
		return adapters.KindNotFound, true
	case "request_too_large":
		return adapters.KindContextLength, true
	case "timeout_error":
		return adapters.KindTimeout, true
	}
	return 0, false
}

// streamError turns an error event received mid-stream (or an error body with a 2xx
// status) into an *adapters.Error. There is no status, so the type decides; an
// unexplained mid-stream failure is the server's.
func (p *Provider) streamError(w wireError) *adapters.Error {
	kind := adapters.KindServer
	if k, ok := kindForType(w.Type); ok {
		kind = k
	}
	if (kind == adapters.KindBadRequest || kind == adapters.KindServer) && isContextLength(w.Message) {
		kind = adapters.KindContextLength
	}
	return p.EventError(kind, w.Type, withRequestID(w), "upstream sent an error event")
}
