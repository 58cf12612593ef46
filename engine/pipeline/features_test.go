package pipeline

import (
	"hash/fnv"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/internal/reqtest"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// features is ChatFeatures with the tags taken from the header the way the server does.
func features(id string, r *adapters.ChatRequest, h http.Header, c *auth.Caller) policy.Request {
	return ChatFeatures(id, r, h.Get("X-Gavel-Tags"), c)
}

func TestFeatures(t *testing.T) {
	anon := reqtest.Anonymous(t)
	alice := &auth.Caller{Record: policy.KeyRecord{KeyID: "k-alice", User: "alice"}}
	keyOnly := &auth.Caller{Record: policy.KeyRecord{KeyID: "k-svc"}}
	noTags := http.Header{}
	feat := func(t *testing.T, id, body string, h http.Header, c *auth.Caller) policy.Request {
		t.Helper()
		return features(id, reqtest.Chat(t, body), h, c)
	}

	t.Run("estimate", func(t *testing.T) {
		tests := []struct {
			name string
			body string
			want int // tokens.Estimate of each text + 4 per message + 3
		}{
			{"one short message", `{"model": "m", "messages": [{"role": "user", "content": "hello"}]}`, 2 + 4 + 3},
			{"two messages", `{"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]}`, 4 + 8 + 3},
			{"text parts, images free", `{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "https://example.com/a-very-long-url.png"}}, {"type": "text", "text": "efgh"}]}]}`, 3 + 4 + 3},
			{"tool calls count", `{"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "get", "arguments": "{\"a\":1}"}}]}]}`, tokens.Estimate("get") + tokens.Estimate(`{"a":1}`) + 4 + 3},
			{"tool definitions count", `{"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "get", "description": "Gets.", "parameters": {"type":"object"}}}]}`, tokens.Estimate("x") + tokens.Estimate("get") + tokens.Estimate("Gets.") + tokens.Estimate(`{"type":"object"}`) + 4 + 3},
			{"bytes not runes", `{"model": "m", "messages": [{"role": "user", "content": "日本語"}]}`, 3 + 4 + 3},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if got := feat(t, "id", tc.body, noTags, anon).EstInputTokens; got != tc.want {
					t.Errorf("est_input_tokens = %d, want %d", got, tc.want)
				}
			})
		}
		// More text is never fewer tokens: reservations scale with the prompt.
		prev := 0
		for _, n := range []int{0, 1, 10, 100, 1000, 100000} {
			body := `{"model": "m", "messages": [{"role": "user", "content": "` + strings.Repeat("a", n) + `"}]}`
			got := feat(t, "id", body, noTags, anon).EstInputTokens
			if got < prev || (n >= 100 && got <= prev) {
				t.Errorf("%d bytes: est_input_tokens = %d after %d", n, got, prev)
			}
			prev = got
		}
	})

	t.Run("flags", func(t *testing.T) {
		tests := []struct {
			file              string
			images, tools     bool
			stream            bool
			maxTokens, nMsgs  int
			model, firstRole  string
			firstTextContains string
		}{
			{"plain.json", false, false, false, 256, 2, "gpt-4o-mini", "system", "helpful"},
			{"image_parts.json", true, false, false, 300, 2, "gpt-4o", "developer", "Describe"},
			{"tools.json", false, true, false, 0, 1, "smart", "user", "Boston"},
			{"tool_roundtrip.json", false, true, false, 0, 5, "openai/gpt-4o", "user", "Boston"},
			{"stream.json", false, false, true, 2048, 2, "o4-mini", "developer", "step"},
		}
		reqs := reqtest.Bodies(t)
		for _, tc := range tests {
			t.Run(tc.file, func(t *testing.T) {
				f := feat(t, "id", string(reqs[tc.file]), noTags, anon)
				if f.HasImages != tc.images || f.HasTools != tc.tools || f.Stream != tc.stream {
					t.Errorf("has_images, has_tools, stream = %v, %v, %v; want %v, %v, %v", f.HasImages, f.HasTools, f.Stream, tc.images, tc.tools, tc.stream)
				}
				if f.MaxTokens != tc.maxTokens || len(f.Messages) != tc.nMsgs || f.Model != tc.model || f.Endpoint != "chat" || f.ID != "id" {
					t.Errorf("features = %+v", f)
				}
				if f.Messages[0].Role != tc.firstRole || !strings.Contains(f.Messages[0].Text, tc.firstTextContains) {
					t.Errorf("first message = %+v", f.Messages[0])
				}
			})
		}
		// max_completion_tokens supersedes the deprecated max_tokens when both are sent.
		f := feat(t, "id", `{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10, "max_completion_tokens": 20}`, noTags, anon)
		if f.MaxTokens != 20 {
			t.Errorf("max_tokens = %d, want 20", f.MaxTokens)
		}
	})

	t.Run("bucket", func(t *testing.T) {
		withUser := func(u string) string {
			return `{"model": "m", "user": "` + u + `", "messages": [{"role": "user", "content": "x"}]}`
		}
		noUser := withUser("")
		b := func(id, body string, c *auth.Caller) int { return feat(t, id, body, noTags, c).Bucket }

		// A/B arms must not reshuffle between releases: bucket is pinned to FNV-1a, checked
		// against the standard library's implementation.
		for _, k := range []string{"", "a", "bob", "user-8c1f", "日本", strings.Repeat("z", 10000)} {
			h := fnv.New32a()
			h.Write([]byte(k))
			want := int(h.Sum32() % 10000)
			if got := bucket(k); got != want || got < 0 || got > 9999 {
				t.Errorf("bucket(%q) = %d, want %d", k, got, want)
			}
		}

		tests := []struct {
			name string
			got  int
			want int
		}{
			// Body user wins over the key's user and over the request id.
			{"body user over key user", b("r1", withUser("bob"), alice), b("r2", withUser("bob"), anon)},
			{"body user, any caller", b("r3", withUser("bob"), keyOnly), bucket("bob")},
			// Without a body user the key's user is the sticky key...
			{"key user", b("r1", noUser, alice), b("r9", withUser("alice"), anon)},
			// ...then the key id for a real key...
			{"key id", b("r1", noUser, keyOnly), bucket("k-svc")},
			// ...and for an anonymous caller only the request id is left: its KeyID
			// "anonymous" is shared by everyone and would put all traffic in one arm.
			{"anonymous uses id", b("req-42", noUser, anon), bucket("req-42")},
			{"stable", b("r1", withUser("bob"), alice), b("r1", withUser("bob"), alice)},
		}
		for _, tc := range tests {
			if tc.got != tc.want {
				t.Errorf("%s: bucket = %d, want %d", tc.name, tc.got, tc.want)
			}
		}
		if b("req-1", noUser, anon) == b("req-2", noUser, anon) {
			t.Error("anonymous requests with different ids share a bucket")
		}
	})

	t.Run("fields", func(t *testing.T) {
		for _, tc := range []struct{ body, want string }{
			{`{"model": "m", "messages": [{"role": "user", "content": "x"}]}`, "messages model"},
			{`{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]}],
				"top_k": 4, "stream": true, "extra_body": {"chat_template_kwargs": {}, "seed": 1}}`,
				"chat_template_kwargs messages messages[].content[].cache_control model seed stream top_k"},
		} {
			got := strings.Join(feat(t, "id", tc.body, noTags, anon).Fields, " ")
			if got != tc.want {
				t.Errorf("fields of %s = %q, want %q", tc.body, got, tc.want)
			}
		}
	})

	t.Run("metadata", func(t *testing.T) {
		body := `{"model": "m", "messages": [{"role": "user", "content": "x"}], "metadata": {"a": "0", "c": "3"}}`
		tests := []struct {
			name string
			tags []string // nil sends no header
			want map[string]string
		}{
			{"body only", nil, map[string]string{"a": "0", "c": "3"}},
			{"empty header", []string{""}, map[string]string{"a": "0", "c": "3"}},
			// The header wins, whitespace around keys and values goes, and an entry
			// without "=" is malformed and dropped rather than becoming an empty tag.
			{"merged over body", []string{"a=1, b = 2,bad"}, map[string]string{"a": "1", "b": "2", "c": "3"}},
			{"empty keys and entries dropped", []string{" =x,, ,=,d="}, map[string]string{"a": "0", "c": "3", "d": ""}},
			{"value keeps later equals signs", []string{"q=x=y"}, map[string]string{"a": "0", "c": "3", "q": "x=y"}},
			{"only the first header counts", []string{"a=first", "a=second"}, map[string]string{"a": "first", "c": "3"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				h := http.Header{}
				if tc.tags != nil {
					h["X-Gavel-Tags"] = tc.tags
				}
				req := reqtest.Chat(t, body)
				got := features("id", req, h, anon).Metadata
				if !maps.Equal(got, tc.want) {
					t.Errorf("metadata = %v, want %v", got, tc.want)
				}
				if req.Metadata["a"] != "0" || len(req.Metadata) != 2 {
					t.Errorf("body metadata was modified: %v", req.Metadata)
				}
			})
		}
		// Tags without body metadata still work.
		got := feat(t, "id", `{"model": "m", "messages": [{"role": "user", "content": "x"}]}`, http.Header{"X-Gavel-Tags": {"team=search"}}, anon).Metadata
		if !maps.Equal(got, map[string]string{"team": "search"}) {
			t.Errorf("metadata = %v", got)
		}
	})
}

func TestLooksLikeCode(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"What is the capital of France?", false},
		{"Fix this:\n```go\nfmt.Println(1)\n```", true},
		{"func main() {\n\tx := 1\n\tfmt.Println(x)\n}", true},
		{"def f(x):\n    return x\nimport os\n", true},
		{"SELECT a FROM t;\nSELECT b FROM u;\nSELECT c FROM v;", true},
		{"Dear team,\nThe meeting is at 3pm; bring notes.\nThanks", false},
		{"Prices: {low} and {high}\nnothing else", false},
	}
	for _, tc := range tests {
		if got := looksLikeCode(tc.text); got != tc.want {
			t.Errorf("looksLikeCode(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestSampleIsUniformish(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		s := sample(newID())
		if s < 0 || s > 9999 {
			t.Fatalf("sample %d out of range", s)
		}
		seen[s/1000] = true
	}
	if len(seen) < 8 {
		t.Errorf("samples cluster in %d of 10 deciles", len(seen))
	}
}
