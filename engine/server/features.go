package server

import (
	"net/http"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// validRoles are the chat roles OpenAI accepts.
var validRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

// validate rejects what no upstream would accept, before spending a policy evaluation.
func validate(r *adapters.ChatRequest) *APIError {
	if r.Model == "" {
		return errBadRequest("missing_required_parameter", "model", "you must provide a model parameter")
	}
	if len(r.Messages) == 0 {
		return errBadRequest("missing_required_parameter", "messages", "messages must be a non-empty array")
	}
	for i, m := range r.Messages {
		if !validRoles[m.Role] {
			return errBadRequest("invalid_value", "messages["+itoa(i)+"].role",
				"Invalid value for 'messages["+itoa(i)+"].role': '"+m.Role+"'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and 'function'.")
		}
		if m.Role == "tool" && m.ToolCallID == "" {
			return errBadRequest("missing_required_parameter", "messages["+itoa(i)+"].tool_call_id", "tool messages need a tool_call_id")
		}
		if m.Content == nil && len(m.ToolCalls) == 0 && m.Role != "assistant" {
			return errBadRequest("missing_required_parameter", "messages["+itoa(i)+"].content", "messages["+itoa(i)+"] has no content")
		}
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return errBadRequest("invalid_value", "max_tokens", "max_tokens must be at least 1")
	}
	if r.MaxCompletionTokens != nil && *r.MaxCompletionTokens < 1 {
		return errBadRequest("invalid_value", "max_completion_tokens", "max_completion_tokens must be at least 1")
	}
	if r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 2) {
		return errBadRequest("invalid_value", "temperature", "temperature must be between 0 and 2")
	}
	if r.TopP != nil && (*r.TopP < 0 || *r.TopP > 1) {
		return errBadRequest("invalid_value", "top_p", "top_p must be between 0 and 1")
	}
	if r.N != nil && (*r.N < 1 || *r.N > 128) {
		return errBadRequest("invalid_value", "n", "n must be between 1 and 128")
	}
	for i, t := range r.Tools {
		if t.Type != "function" || t.Function.Name == "" {
			return errBadRequest("invalid_value", "tools["+itoa(i)+"]", "tools must be functions with a name")
		}
	}
	return nil
}

// features turns a request into the policy's view of it. Everything Rego would be slow at
// (token estimates, the A/B bucket hash) is computed here, in Go.
func features(id string, r *adapters.ChatRequest, h http.Header, caller *auth.Caller) policy.Request {
	f := policy.Request{ID: id, Endpoint: "chat", Model: r.Model, Stream: r.Stream, HasTools: len(r.Tools) > 0}
	f.Messages = make([]policy.Message, len(r.Messages))
	extra := 0
	for i := range r.Messages {
		m := &r.Messages[i]
		text := m.Content.String()
		f.Messages[i] = policy.Message{Role: m.Role, Text: text}
		if !f.HasCode && m.Role == "user" {
			f.HasCode = looksLikeCode(text)
		}
		for _, tc := range m.ToolCalls {
			extra += tokens.Estimate(tc.Function.Name) + tokens.Estimate(tc.Function.Arguments)
		}
		if m.Content.HasImages() {
			f.HasImages = true
		}
	}
	for _, t := range r.Tools {
		extra += tokens.Estimate(t.Function.Name) + tokens.Estimate(t.Function.Description) + tokens.Estimate(string(t.Function.Parameters))
	}
	f.EstInputTokens = estimateTokens(f.Messages, extra)
	switch {
	case r.MaxCompletionTokens != nil:
		f.MaxTokens = *r.MaxCompletionTokens
	case r.MaxTokens != nil:
		f.MaxTokens = *r.MaxTokens
	}
	f.Metadata = metadata(r.Metadata, h.Get("X-Gavel-Tags"))
	f.Bucket = bucket(stickyKey(id, r.User, caller))
	f.Sample = sample(id)
	return f
}

// sample derives the per-request 0–9999 draw from the random decision id, so shadow
// sampling needs no second random source.
func sample(id string) int {
	var v uint32
	for i := 0; i < len(id) && i < 8; i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			return bucket(id)
		}
		v = v<<4 | uint32(c)
	}
	return int(v % 10000)
}

// codeLineStarts are line openings typical of source code in the languages people paste.
var codeLineStarts = []string{"def ", "func ", "class ", "import ", "from ", "#include", "package ", "public ", "private ",
	"const ", "let ", "var ", "return ", "if (", "for (", "while (", "SELECT ", "select ", "fn ", "impl "}

// looksLikeCode is a cheap heuristic for input.request.has_code: a fenced code block, or
// at least three lines that end like statements or start like declarations. It reads at
// most the first 64 KB.
func looksLikeCode(text string) bool {
	if len(text) > 64<<10 {
		text = text[:64<<10]
	}
	if strings.Contains(text, "```") {
		return true
	}
	hits := 0
	for len(text) > 0 && hits < 3 {
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			continue
		}
		switch trimmed[len(trimmed)-1] {
		case '{', '}', ';', ')':
			hits++
			continue
		}
		if strings.Contains(trimmed, " := ") || strings.Contains(trimmed, " => ") {
			hits++
			continue
		}
		for _, p := range codeLineStarts {
			if strings.HasPrefix(trimmed, p) {
				hits++
				break
			}
		}
	}
	return hits >= 3
}

// authCaller is the authenticated identity features read.
type authCaller = auth.Caller

// stickyKey is what keeps a user in one A/B arm: the body's user, else the key's user, else
// the key id, else (anonymous callers) the request id.
func stickyKey(id, user string, caller *auth.Caller) string {
	switch {
	case user != "":
		return user
	case caller.Record.User != "":
		return caller.Record.User
	case !caller.Anonymous && caller.Record.KeyID != "":
		return caller.Record.KeyID
	}
	return id
}

// estimateTokens is engine/tokens' calibrated estimate plus OpenAI's per-message framing.
// It only needs to be good enough for routing and reservations; usage reported by the
// upstream is what gets charged.
func estimateTokens(msgs []policy.Message, extra int) int {
	n := 3 + extra
	for i := range msgs {
		n += 4 + tokens.Estimate(msgs[i].Text)
	}
	return n
}

// bucket is a stable 0–9999 hash (FNV-1a) of the sticky key, so A/B splits are integer
// comparisons in Rego.
func bucket(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % 10000)
}

// metadata merges body metadata with the X-Gavel-Tags header ("k=v, k2=v2"); the header
// wins, since it is set by the platform rather than the application.
func metadata(body map[string]string, tags string) map[string]string {
	if tags == "" {
		return body
	}
	out := make(map[string]string, len(body)+4)
	for k, v := range body {
		out[k] = v
	}
	for _, kv := range strings.Split(tags, ",") {
		// An entry without "=" is malformed: drop it rather than invent an empty tag a
		// policy would see as set.
		k, v, ok := strings.Cut(kv, "=")
		if k = strings.TrimSpace(k); ok && k != "" {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
