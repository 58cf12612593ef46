package openai

import (
	"bytes"
	"encoding/json"

	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// errorEnvelope is every error body shape seen from OpenAI-compatible servers:
//
//	{"error":{"message":"…","type":"…","param":null,"code":"…"}}   OpenAI, Azure, DeepSeek, new vLLM
//	{"error":"model 'x' not found"}                                 Ollama
//	{"object":"error","message":"…","type":"…","code":400}          older vLLM
//
// Every field is raw so that one badly typed field (a numeric code, a null type) does not
// lose the rest of the body.
type errorEnvelope struct {
	Error   json.RawMessage `json:"error"`
	Object  json.RawMessage `json:"object"`
	Message json.RawMessage `json:"message"`
	Type    json.RawMessage `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// errorObject is OpenAI's documented error object; code is a string, a number or null.
type errorObject struct {
	Message json.RawMessage `json:"message"`
	Type    json.RawMessage `json:"type"`
	Param   json.RawMessage `json:"param"`
	Code    json.RawMessage `json:"code"`
}

// wireError is an upstream error reduced to the parts gavel keeps.
type wireError struct {
	Message string
	Type    string
	Code    string
	Param   string
}

// parseErrorBody extracts an error from a body. ok is false when the body holds none,
// which for a non-2xx response means it was not JSON (an HTML page from a proxy, say).
func parseErrorBody(body []byte) (w wireError, ok bool) {
	var env errorEnvelope
	if json.Unmarshal(body, &env) != nil {
		return w, false
	}
	if raw := bytes.TrimSpace(env.Error); len(raw) > 0 && !isNull(raw) {
		switch raw[0] {
		case '{':
			var obj errorObject
			if json.Unmarshal(raw, &obj) == nil {
				w = wireError{Message: httpx.RawText(obj.Message), Type: httpx.RawText(obj.Type), Code: httpx.RawText(obj.Code),
					Param: httpx.RawText(obj.Param)}
				return w, true
			}
		case '"':
			w.Message = httpx.RawText(raw)
			return w, true
		}
	}
	if httpx.RawText(env.Object) == "error" || (len(env.Error) == 0 && len(env.Message) > 0) {
		w = wireError{Message: httpx.RawText(env.Message), Type: httpx.RawText(env.Type), Code: httpx.RawText(env.Code)}
		return w, w.Message != "" || w.Type != "" || w.Code != ""
	}
	return w, false
}

func isNull(raw []byte) bool { return bytes.Equal(raw, []byte("null")) }

// mayHoldError is a cheap pre-check run on every stream event: a real chunk has no
// "error" key, so only events containing the quoted word pay for a second decode.
func mayHoldError(data []byte) bool {
	return bytes.Contains(data, quotedError)
}

var quotedError = []byte(`"error"`)
