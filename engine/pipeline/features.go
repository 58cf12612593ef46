package pipeline

import (
	"strings"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// ChatFeatures turns a chat request into the policy's view of it (input.request).
// Everything Rego would be slow at (token estimates, the A/B bucket hash) is computed
// here, in Go. tags is the platform's X-Gavel-Tags value ("k=v, k2=v2").
func ChatFeatures(id string, r *adapters.ChatRequest, tags string, caller *auth.Caller) policy.Request {
	f := policy.Request{ID: id, Endpoint: EndpointChat, Protocol: ProtocolOpenAI, Model: r.Model, Stream: r.Stream, HasTools: len(r.Tools) > 0,
		Temperature: r.Temperature, Seed: r.Seed}
	if r.N != nil {
		f.N = *r.N
	}
	f.Messages = make([]policy.Message, len(r.Messages))
	extra := 0
	for i := range r.Messages {
		m := &r.Messages[i]
		text := m.Content.String()
		f.Messages[i] = policy.Message{Role: m.Role, Text: text}
		if m.Role == "user" {
			f.Turns++
		}
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
	f.Metadata = metadata(r.Metadata, tags)
	f.Fields = r.FieldNames()
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

// EmbeddingFeatures presents each input to the policy as a user message, so the same
// compliance and routing rules apply to what is embedded.
func EmbeddingFeatures(id string, r *adapters.EmbeddingRequest, tags string, caller *auth.Caller) policy.Request {
	f := policy.Request{ID: id, Endpoint: EndpointEmbeddings, Protocol: ProtocolOpenAI, Model: r.Model}
	n := 0
	for _, t := range r.Input.Texts {
		f.Messages = append(f.Messages, policy.Message{Role: "user", Text: t})
		f.Turns++
		n += tokens.Estimate(t)
	}
	for _, toks := range r.Input.Tokens {
		n += len(toks)
	}
	f.EstInputTokens = n
	f.Metadata = metadata(nil, tags)
	f.Bucket = bucket(stickyKey(id, r.User, caller))
	f.Sample = sample(id)
	return f
}
