package anthropic

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// FuzzStream feeds arbitrary bytes to the stream, in reads of arbitrary size. Recv must
// terminate with io.EOF or an *adapters.Error and never panic; every chunk must carry the
// stream's envelope, and io.EOF must come only after a message_stop.
func FuzzStream(f *testing.F) {
	adaptertest.SeedFiles(f, "streams/*.sse", func(_ string, b []byte) {
		f.Add(b, uint16(0), false)
		f.Add(b, uint16(1), true)
		f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")), uint16(5), true)
		f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r")), uint16(4096), false)
	})
	f.Add([]byte("data: {\"type\":\"message_start\",\"message\":{}}\n\ndata: {\"type\":\"message_stop\"}"), uint16(2), true)
	f.Add([]byte(": c\r\ndata\r\rdata: {\"type\":\"error\",\"error\":\"x\"}\n\n"), uint16(3), false)
	f.Fuzz(func(t *testing.T, body []byte, readSize uint16, includeUsage bool) {
		size := int(readSize)
		if size == 0 {
			size = len(body) + 1
		}
		s := memStream(t, adaptertest.ChunkedReader(bytes.NewReader(body), size), includeUsage)
		defer s.Close()
		var id string
		for i := 0; ; i++ {
			if i > len(body)+3 {
				t.Fatal("Recv does not terminate")
			}
			c, err := s.Recv()
			if err == nil {
				if c == nil {
					t.Fatal("nil chunk without error")
				}
				if i == 0 {
					id = c.ID
					if len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant" {
						t.Fatalf("first chunk = %+v", c)
					}
				}
				if c.ID != id || c.Created != testCreated || c.Object != adapters.ObjectChatCompletionChunk {
					t.Fatalf("chunk envelope = %+v", c)
				}
				if len(c.Choices) == 0 && (c.Usage == nil || !includeUsage) {
					t.Fatalf("chunk without choices or usage: %+v", c)
				}
				if _, err := json.Marshal(c); err != nil {
					t.Fatalf("chunk does not marshal: %v", err)
				}
				continue
			}
			if err == io.EOF {
				if !s.Done() {
					t.Fatal("io.EOF without message_stop")
				}
			} else if adapters.AsError(err) == nil {
				t.Fatalf("error %v (%T) is neither io.EOF nor *adapters.Error", err, err)
			}
			if _, again := s.Recv(); again != err {
				t.Fatalf("end not sticky: %v then %v", err, again)
			}
			return
		}
	})
}

// FuzzTranslateRequest decodes arbitrary JSON as a canonical request and translates it.
// Translation must never panic; it either fails with a reason or yields a request that
// encodes and keeps the Messages API's structural rules.
func FuzzTranslateRequest(f *testing.F) {
	adaptertest.SeedFiles(f, "requests/*.openai.json", func(_ string, b []byte) { f.Add(b, false) })
	f.Add([]byte(`{"messages":[{"role":"assistant","tool_calls":[{"id":"x","function":{"name":"f","arguments":" {\"a\" : [1, 2]} "}}]}]}`), true)
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64,"}}]}]}`), false)
	f.Add([]byte(`{"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function"},"parallel_tool_calls":false}`), false)
	f.Fuzz(func(t *testing.T, data []byte, stream bool) {
		req := new(adapters.ChatRequest)
		if json.Unmarshal(data, req) != nil {
			return
		}
		before, err := json.Marshal(req)
		if err != nil {
			return // a request that cannot be re-encoded cannot reach an adapter
		}
		out, err := translateRequest(req, DefaultMaxTokens, stream)
		if after, _ := json.Marshal(req); !bytes.Equal(before, after) {
			t.Fatal("translation mutated the request")
		}
		if err != nil {
			if _, ok := err.(*translateError); !ok || err.Error() == "" {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		body, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("translated request does not encode: %v", err)
		}
		if !json.Valid(body) {
			t.Fatal("invalid JSON")
		}
		if err := checkWireInvariants(out, false); err != nil {
			t.Fatal(err)
		}
		if out.Stream != stream || (out.Temperature != nil && (*out.Temperature < 0 || *out.Temperature > 1)) {
			t.Fatalf("stream %v temperature %v", out.Stream, out.Temperature)
		}
		if out.Temperature != nil && out.TopP != nil {
			t.Fatal("temperature and top_p both sent")
		}
		if out.MaxTokens == 0 && req.MaxTokens == nil && req.MaxCompletionTokens == nil {
			t.Fatal("max_tokens left unset")
		}
		if strings.Contains(string(body), `"role":"system"`) {
			t.Fatal("a system message reached messages")
		}
	})
}

// FuzzErrorBody classifies arbitrary error bodies: never a panic, always a usable error
// whose message is bounded, printable, valid UTF-8 and free of the API key.
func FuzzErrorBody(f *testing.F) {
	statuses := []int{400, 401, 403, 404, 413, 429, 500, 502, 529}
	adaptertest.SeedFiles(f, "errors/*", func(_ string, b []byte) {
		for _, st := range statuses {
			f.Add(st, b, "1")
		}
	})
	f.Add(200, []byte(`{"type":"error","error":{"type":{"nested":true},"message":"sk-ant-fuzz-secret"}}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(0, []byte{}, "")
	const key = "sk-ant-fuzz-secret"
	p, err := New(Config{Name: "fuzz", APIKey: key})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		e := p.ErrorFromBody(status, h, body, now)
		if e == nil || e.Provider != "fuzz" || e.Status != status {
			t.Fatalf("error = %+v", e)
		}
		if s := e.Kind.String(); s == "" || strings.HasPrefix(s, "kind(") {
			t.Fatalf("invalid kind %d", e.Kind)
		}
		if status >= 400 && status < 600 && e.Kind == adapters.KindProtocol {
			t.Fatalf("status %d classified as protocol", status)
		}
		// A body may sharpen a status's kind but never override what the status demands.
		switch want, ok := map[int]adapters.Kind{429: adapters.KindRateLimited, 529: adapters.KindOverloaded,
			503: adapters.KindOverloaded, 401: adapters.KindAuth, 403: adapters.KindAuth}[status]; {
		case ok && e.Kind != want:
			t.Fatalf("status %d classified as %v", status, e.Kind)
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative retry after %v", e.RetryAfter)
		}
		for _, s := range []string{e.Message, e.Code} {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, httpx.IsControl) || len(s) > 3*httpx.MaxMessage {
				t.Fatalf("unsafe text %q", s)
			}
			if strings.Contains(s, key) {
				t.Fatalf("text leaks the key: %q", s)
			}
		}
		if e.Message == "" || len(e.Code) > 3*httpx.MaxCode {
			t.Fatalf("message %q code %q", e.Message, e.Code)
		}
		_ = e.Error()
		// The same body as a stream error event, or a 2xx error body, must classify too.
		if w, ok := parseErrorBody(body); ok {
			se := p.streamError(w)
			if se.Message == "" || strings.Contains(se.Message, key) || strings.Contains(se.Code, key) {
				t.Fatalf("stream error %+v", se)
			}
		}
	})
}
