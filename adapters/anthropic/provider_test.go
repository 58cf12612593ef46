package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// newRecorder starts a server that remembers the last request; see adaptertest.Recorder.
func newRecorder(t *testing.T, status int, reply []byte, headers map[string]string) (*adaptertest.Recorder, *httptest.Server) {
	return adaptertest.NewRecorder(t, "application/json", status, reply, headers)
}

func simpleRequest() *adapters.ChatRequest {
	return &adapters.ChatRequest{
		Model:    "claude-sonnet-4-5",
		Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent("Hello")}},
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		wantURL string
	}{
		{name: "default base", cfg: Config{Name: "anthropic"}, wantURL: "https://api.anthropic.com/v1/messages"},
		{name: "trailing slash", cfg: Config{Name: "a", BaseURL: "http://localhost:8080/proxy/"}, wantURL: "http://localhost:8080/proxy/v1/messages"},
		{name: "no name", cfg: Config{BaseURL: "http://x"}, wantErr: "name is required"},
		{name: "relative", cfg: Config{Name: "x", BaseURL: "localhost:8000"}, wantErr: "base_url"},
		{name: "ftp", cfg: Config{Name: "x", BaseURL: "ftp://example.com"}, wantErr: "http(s)"},
		{name: "unparsable", cfg: Config{Name: "x", BaseURL: "http://[::1"}, wantErr: "not a valid URL"},
		{name: "query", cfg: Config{Name: "x", BaseURL: "http://example.com/?x=1"}, wantErr: "query"},
		{name: "password not echoed", cfg: Config{Name: "x", BaseURL: "ftp://user:hunter2@example.com"}, wantErr: "xxxxx"},
		{name: "bad header name", cfg: Config{Name: "x", Headers: map[string]string{"X Bad": "1"}}, wantErr: "invalid header"},
		{name: "header value newline", cfg: Config{Name: "x", Headers: map[string]string{"anthropic-beta": "a\r\nb"}}, wantErr: "invalid header"},
		{name: "owned header", cfg: Config{Name: "x", Headers: map[string]string{"accept": "text/plain"}}, wantErr: "set by the adapter"},
		{name: "key with newline", cfg: Config{Name: "x", APIKey: "sk-ant-1\nInjected: yes"}, wantErr: "control characters"},
		{name: "version with newline", cfg: Config{Name: "x", Version: "2023-06-01\r\nX: y"}, wantErr: "control characters"},
		{name: "negative max tokens", cfg: Config{Name: "x", DefaultMaxTokens: -1}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "sk-ant-1") {
					t.Fatalf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Name() != tt.cfg.Name {
				t.Errorf("Name() = %q", p.Name())
			}
			if p.url != tt.wantURL {
				t.Errorf("url = %q, want %q", p.url, tt.wantURL)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		stream bool
		want   map[string]string // "" means the header must be absent
	}{
		{
			name: "defaults",
			cfg:  Config{APIKey: "sk-ant-test"},
			want: map[string]string{"X-Api-Key": "sk-ant-test", "Anthropic-Version": "2023-06-01",
				"Content-Type": "application/json", "Accept": "application/json", "Authorization": ""},
		},
		{
			name:   "stream",
			cfg:    Config{APIKey: "sk-ant-test"},
			stream: true,
			want:   map[string]string{"X-Api-Key": "sk-ant-test", "Accept": "text/event-stream", "Content-Type": "application/json"},
		},
		{
			name: "version and beta",
			cfg:  Config{APIKey: "k", Version: "2024-01-01", Headers: map[string]string{"anthropic-beta": "prompt-caching-2024-07-31"}},
			want: map[string]string{"Anthropic-Version": "2024-01-01", "Anthropic-Beta": "prompt-caching-2024-07-31"},
		},
		{
			name: "proxy authentication instead of a key",
			cfg:  Config{Headers: map[string]string{"Authorization": "Bearer proxy-token"}},
			want: map[string]string{"X-Api-Key": "", "Authorization": "Bearer proxy-token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, hdr := adaptertest.ReadTestdata(t, "responses/text.anthropic.json"), map[string]string(nil)
			if tt.stream {
				reply, hdr = adaptertest.ReadTestdata(t, "streams/text.sse"), map[string]string{"Content-Type": "text/event-stream; charset=utf-8"}
			}
			rec, srv := newRecorder(t, 200, reply, hdr)
			cfg := tt.cfg
			cfg.BaseURL = srv.URL
			p := mustProvider(t, cfg)
			if tt.stream {
				s, err := p.ChatStream(context.Background(), simpleRequest())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := adaptertest.DrainStream(s); err != io.EOF {
					t.Fatalf("stream ended with %v", err)
				}
				s.Close()
			} else if _, err := p.Chat(context.Background(), simpleRequest()); err != nil {
				t.Fatal(err)
			}
			last := rec.Last()
			if last.Method != http.MethodPost || last.Path != "/v1/messages" {
				t.Errorf("request = %s %s, want POST /v1/messages", last.Method, last.Path)
			}
			for k, v := range tt.want {
				if got := last.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			var body map[string]any
			json.Unmarshal(last.Body, &body)
			if stream, _ := body["stream"].(bool); stream != tt.stream {
				t.Errorf("body stream = %v, want %v", body["stream"], tt.stream)
			}
		})
	}
}

func TestStatusKinds(t *testing.T) {
	const key = "sk-ant-secret-123456"
	tests := []struct {
		name       string
		status     int
		body       []byte
		headers    map[string]string
		kind       adapters.Kind
		code       string
		msg        string // substring of Message
		retryAfter time.Duration
	}{
		{name: "400", status: 400, body: adaptertest.ReadTestdata(t, "errors/400_invalid_request.json"), kind: adapters.KindBadRequest,
			code: "invalid_request_error", msg: "roles must alternate"},
		{name: "400 without body", status: 400, kind: adapters.KindBadRequest, msg: "Bad Request"},
		{name: "400 prompt too long", status: 400, body: adaptertest.ReadTestdata(t, "errors/400_prompt_too_long.json"),
			kind: adapters.KindContextLength, code: "invalid_request_error", msg: "prompt is too long"},
		{name: "400 exceeds context limit", status: 400, body: adaptertest.ReadTestdata(t, "errors/400_context_limit.json"),
			kind: adapters.KindContextLength, code: "invalid_request_error", msg: "exceed context limit"},
		{name: "401", status: 401, body: adaptertest.ReadTestdata(t, "errors/401.json"), kind: adapters.KindAuth,
			code: "authentication_error", msg: "invalid x-api-key (request_id req_011CSHoFXR4jHwPzaJ9aWTVm)"},
		{name: "402 billing", status: 402, body: adaptertest.ReadTestdata(t, "errors/402_billing.json"), kind: adapters.KindAuth,
			code: "billing_error", msg: "credit balance is too low"},
		{name: "403", status: 403, body: adaptertest.ReadTestdata(t, "errors/403.json"), kind: adapters.KindAuth, code: "permission_error"},
		{name: "404", status: 404, body: adaptertest.ReadTestdata(t, "errors/404.json"), kind: adapters.KindNotFound, code: "not_found_error", msg: "claude-9-opus"},
		{name: "408", status: 408, kind: adapters.KindTimeout},
		{name: "413", status: 413, body: adaptertest.ReadTestdata(t, "errors/413.json"), kind: adapters.KindContextLength, code: "request_too_large"},
		{name: "429 retry-after", status: 429, body: adaptertest.ReadTestdata(t, "errors/429.json"),
			headers: map[string]string{"retry-after": "17"}, kind: adapters.KindRateLimited, code: "rate_limit_error",
			msg: "exceed the rate limit", retryAfter: 17 * time.Second},
		{name: "429 retry-after-ms", status: 429, body: adaptertest.ReadTestdata(t, "errors/429.json"),
			headers: map[string]string{"retry-after": "2", "retry-after-ms": "1500"}, kind: adapters.KindRateLimited,
			code: "rate_limit_error", retryAfter: 1500 * time.Millisecond},
		{name: "429 mentioning a long prompt stays rate limited", status: 429,
			body: []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"prompt is too long for your tier"}}`),
			kind: adapters.KindRateLimited, code: "rate_limit_error"},
		{name: "529 mentioning a long prompt stays overloaded", status: 529,
			body: []byte(`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}`),
			kind: adapters.KindOverloaded, code: "invalid_request_error"},
		{name: "401 with a billing body stays auth", status: 401, body: adaptertest.ReadTestdata(t, "errors/402_billing.json"),
			kind: adapters.KindAuth, code: "billing_error"},
		{name: "500", status: 500, body: adaptertest.ReadTestdata(t, "errors/500.json"), kind: adapters.KindServer, code: "api_error", msg: "Internal server error"},
		{name: "500 overloaded body", status: 500, body: adaptertest.ReadTestdata(t, "errors/529.json"), kind: adapters.KindOverloaded, code: "overloaded_error"},
		{name: "502 html", status: 502, body: adaptertest.ReadTestdata(t, "errors/502.html"), kind: adapters.KindServer, msg: "502 Bad Gateway"},
		{name: "503", status: 503, kind: adapters.KindOverloaded},
		{name: "504", status: 504, kind: adapters.KindTimeout},
		{name: "529", status: 529, body: adaptertest.ReadTestdata(t, "errors/529.json"), kind: adapters.KindOverloaded, code: "overloaded_error",
			msg: "Overloaded", headers: map[string]string{"retry-after": "3"}, retryAfter: 3 * time.Second},
		{name: "529 without body", status: 529, kind: adapters.KindOverloaded, msg: "without a message"},
		{name: "401 echoing the key", status: 401,
			body: []byte(`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: ` + key + `"}}`),
			kind: adapters.KindAuth, code: "authentication_error", msg: "[redacted]"},
		{name: "bare string error", status: 400, body: []byte(`{"error":"bad things"}`), kind: adapters.KindBadRequest, msg: "bad things"},
		{name: "redirect", status: 307, headers: map[string]string{"Location": "http://elsewhere.invalid/"}, kind: adapters.KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newRecorder(t, tt.status, tt.body, tt.headers)
			p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: key})
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					_, err = p.ChatStream(context.Background(), simpleRequest())
				} else {
					_, err = p.Chat(context.Background(), simpleRequest())
				}
				e := adaptertest.AsError(t, err, tt.kind)
				if e.Status != tt.status || e.Provider != "test" {
					t.Errorf("status/provider = %d/%q", e.Status, e.Provider)
				}
				if e.Code != tt.code {
					t.Errorf("code = %q, want %q", e.Code, tt.code)
				}
				if !strings.Contains(e.Message, tt.msg) {
					t.Errorf("message = %q, want containing %q", e.Message, tt.msg)
				}
				if e.RetryAfter != tt.retryAfter {
					t.Errorf("retry after = %v, want %v", e.RetryAfter, tt.retryAfter)
				}
				if strings.Contains(e.Error(), key) {
					t.Errorf("error leaks the API key: %v", e)
				}
			}
		})
	}
}

// TestStatusKindTable pins the status → kind mapping on its own, without bodies.
func TestStatusKindTable(t *testing.T) {
	p := mustProvider(t, Config{})
	for status, kind := range map[int]adapters.Kind{
		301: adapters.KindProtocol, 400: adapters.KindBadRequest, 401: adapters.KindAuth, 402: adapters.KindBadRequest,
		403: adapters.KindAuth, 404: adapters.KindNotFound, 408: adapters.KindTimeout, 409: adapters.KindBadRequest,
		413: adapters.KindContextLength, 422: adapters.KindBadRequest, 429: adapters.KindRateLimited,
		500: adapters.KindServer, 502: adapters.KindServer, 503: adapters.KindOverloaded, 504: adapters.KindTimeout,
		529: adapters.KindOverloaded,
	} {
		if e := p.ErrorFromBody(status, nil, nil, time.Now()); e.Kind != kind || e.Status != status || e.Message == "" {
			t.Errorf("status %d: %+v, want kind %v", status, e, kind)
		}
	}
}

func TestErrorBodyIsBounded(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	_, srv := newRecorder(t, 500, []byte(`{"type":"error","error":{"type":"api_error","message":"`+big+`"}}`), nil)
	p := mustProvider(t, Config{BaseURL: srv.URL})
	_, err := p.Chat(context.Background(), simpleRequest())
	e := adaptertest.AsError(t, err, adapters.KindServer)
	if len(e.Message) > httpx.MaxMessage {
		t.Errorf("message length %d exceeds %d", len(e.Message), httpx.MaxMessage)
	}
}

func TestChatResponses(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		_, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "responses/text.anthropic.json"), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		before := time.Now().Unix()
		resp, err := p.Chat(context.Background(), simpleRequest())
		if err != nil {
			t.Fatal(err)
		}
		if resp.ID != "msg_013Zva2CMHLNnXjNJJKqJ2EF" || resp.Object != "chat.completion" || resp.Model != "claude-sonnet-4-5-20250929" ||
			resp.Created < before || resp.Created > time.Now().Unix() {
			t.Errorf("envelope = %+v", resp)
		}
		c := resp.Choices[0]
		if c.Message.Role != "assistant" || c.Message.Content.String() != "Hi! My name is Claude." || c.FinishReason != "stop" {
			t.Errorf("choice = %+v", c)
		}
		if u := resp.Usage; u.PromptTokens != 2095 || u.CompletionTokens != 503 || u.TotalTokens != 2598 {
			t.Errorf("usage = %+v", u)
		}
	})
	t.Run("undecodable 2xx is a protocol error", func(t *testing.T) {
		_, srv := newRecorder(t, 200, []byte(`{"id": "msg_1", "content": [`), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		_, err := p.Chat(context.Background(), simpleRequest())
		adaptertest.AsError(t, err, adapters.KindProtocol)
	})
	t.Run("unexpected 2xx type is a protocol error", func(t *testing.T) {
		_, srv := newRecorder(t, 200, []byte(`{"type":"completion","completion":"hi"}`), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		_, err := p.Chat(context.Background(), simpleRequest())
		adaptertest.AsError(t, err, adapters.KindProtocol)
	})
	t.Run("error body with status 200", func(t *testing.T) {
		_, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "errors/529.json"), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		_, err := p.Chat(context.Background(), simpleRequest())
		e := adaptertest.AsError(t, err, adapters.KindOverloaded)
		if e.Status != 200 || e.Code != "overloaded_error" {
			t.Errorf("error = %+v", e)
		}
	})
}

func TestStreamAnsweredWithJSON(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		kind adapters.Kind
	}{
		{name: "error body with 200", body: adaptertest.ReadTestdata(t, "errors/529.json"), kind: adapters.KindOverloaded},
		{name: "non-streamed answer", body: adaptertest.ReadTestdata(t, "responses/text.anthropic.json"), kind: adapters.KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newRecorder(t, 200, tt.body, map[string]string{"Content-Type": "application/json; charset=utf-8"})
			p := mustProvider(t, Config{BaseURL: srv.URL})
			_, err := p.ChatStream(context.Background(), simpleRequest())
			adaptertest.AsError(t, err, tt.kind)
		})
	}
}

func TestTransportErrors(t *testing.T) {
	adaptertest.TransportErrors(t, testAdapter, "sk-ant-secret-123456", "sk-ant-secret")
}

// fakeAnthropic is a small Messages API: it checks what a real one would reject, calls
// get_weather when the conversation has no tool result yet, and answers in text once it
// has one. It records the tool_use it asked for, to check the client's round trip.
type fakeAnthropic struct {
	t  *testing.T
	mu sync.Mutex
	// what the second turn must send back
	toolID, toolInput string
	requests          int
}

func (f *fakeAnthropic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(format string, args ...any) {
		f.t.Errorf(format, args...)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"type":"error","error":{"type":"invalid_request_error","message":%q}}`, fmt.Sprintf(format, args...))
	}
	if r.URL.Path != "/v1/messages" || r.Header.Get("X-Api-Key") != "sk-ant-rt" || r.Header.Get("Anthropic-Version") != DefaultVersion {
		fail("bad route or headers: %s %v", r.URL.Path, r.Header)
		return
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var req messagesRequest
	if err := dec.Decode(&req); err != nil {
		fail("undecodable request: %v", err)
		return
	}
	if err := checkWireInvariants(&req, true); err != nil {
		fail("invalid request: %v", err)
		return
	}
	if req.MaxTokens <= 0 || req.Model == "" || len(req.Tools) == 0 || req.System == "" {
		fail("request = %+v", req)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	last := req.Messages[len(req.Messages)-1]
	var result *wireBlock
	for i := range last.Content {
		if last.Content[i].Type == "tool_result" {
			result = &last.Content[i]
		}
	}
	if result == nil {
		f.toolID, f.toolInput = fmt.Sprintf("toolu_rt%02d", f.requests), `{"location":"Paris, France","unit":"celsius"}`
		if req.Stream {
			f.streamToolUse(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"msg_rt1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
			"content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":%q,"name":"get_weather","input":%s}],
			"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":50,"output_tokens":20}}`, f.toolID, f.toolInput)
		return
	}
	// The second turn: the assistant's tool_use must come back unchanged, answered.
	prev := req.Messages[len(req.Messages)-2]
	var use *wireBlock
	for i := range prev.Content {
		if prev.Content[i].Type == "tool_use" {
			use = &prev.Content[i]
		}
	}
	if use == nil || use.ID != f.toolID || string(use.Input) != f.toolInput || result.ToolUseID != f.toolID || result.Content != "18°C, sunny" {
		fail("round trip lost the tool call: use %+v result %+v", use, result)
		return
	}
	if req.Stream {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, strings.ReplaceAll(string(adaptertest.ReadTestdata(f.t, "streams/text.sse")), "Hello", "It is 18°C and sunny in Paris"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"msg_rt2","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
		"content":[{"type":"text","text":"It is 18°C and sunny in Paris."}],"stop_reason":"end_turn","stop_sequence":null,
		"usage":{"input_tokens":90,"output_tokens":12,"cache_read_input_tokens":40}}`)
}

func (f *fakeAnthropic) streamToolUse(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	ev := func(name, data string) { fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data) }
	ev("message_start", `{"type":"message_start","message":{"id":"msg_rt1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":50,"output_tokens":1}}}`)
	ev("content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":%q,"name":"get_weather","input":{}}}`, f.toolID))
	// The input arrives in pieces, split inside strings and tokens.
	for _, piece := range []string{`{"locat`, `ion":"Par`, `is, France","u`, `nit":"celsius"}`} {
		b, _ := json.Marshal(piece)
		ev("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":%s}}`, b))
	}
	ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":20}}`)
	ev("message_stop", `{"type":"message_stop"}`)
}

func roundTripRequest() *adapters.ChatRequest {
	return &adapters.ChatRequest{
		Model: "claude-sonnet-4-5",
		Messages: []adapters.Message{
			{Role: "system", Content: adapters.TextContent("Use the tools.")},
			{Role: "user", Content: adapters.TextContent("What's the weather in Paris?")},
		},
		Tools: []adapters.Tool{{Type: "function", Function: adapters.FunctionDef{Name: "get_weather",
			Parameters: json.RawMessage(`{"type":"object","properties":{"location":{"type":"string"},"unit":{"type":"string"}}}`)}}},
		ToolChoice:    json.RawMessage(`"auto"`),
		StreamOptions: &adapters.StreamOptions{IncludeUsage: true},
	}
}

// TestRoundTrip runs a two-turn tool conversation against the fake upstream: the tool
// call Anthropic makes must come back to it intact when the client answers it.
func TestRoundTrip(t *testing.T) {
	fake := &fakeAnthropic{t: t}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: "sk-ant-rt"})

	t.Run("chat", func(t *testing.T) {
		req := roundTripRequest()
		resp, err := p.Chat(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		c := resp.Choices[0]
		if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || c.Message.Content.String() != "Let me look." {
			t.Fatalf("first turn = %+v", c)
		}
		tc := c.Message.ToolCalls[0]
		if tc.ID != fake.toolID || tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != fake.toolInput {
			t.Fatalf("tool call = %+v", tc)
		}
		req.Messages = append(req.Messages, c.Message,
			adapters.Message{Role: "tool", ToolCallID: tc.ID, Content: adapters.TextContent("18°C, sunny")})
		resp, err = p.Chat(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content.String(); got != "It is 18°C and sunny in Paris." || resp.Choices[0].FinishReason != "stop" {
			t.Errorf("second turn = %q (%s)", got, resp.Choices[0].FinishReason)
		}
		if u := resp.Usage; u.PromptTokens != 130 || u.CompletionTokens != 12 || u.TotalTokens != 142 || u.PromptTokensDetails.CachedTokens != 40 {
			t.Errorf("usage = %+v", u)
		}
	})

	t.Run("stream", func(t *testing.T) {
		req := roundTripRequest()
		msg, finish, usage := streamTurn(t, p, req)
		if finish != "tool_calls" || len(msg.ToolCalls) != 1 || msg.Content != nil {
			t.Fatalf("first turn = %+v (%s)", msg, finish)
		}
		tc := msg.ToolCalls[0]
		if tc.ID != fake.toolID || tc.Function.Name != "get_weather" || tc.Function.Arguments != fake.toolInput {
			t.Fatalf("tool call = %+v", tc)
		}
		if usage == nil || usage.PromptTokens != 50 || usage.CompletionTokens != 20 {
			t.Errorf("usage = %+v", usage)
		}
		req.Messages = append(req.Messages, msg,
			adapters.Message{Role: "tool", ToolCallID: tc.ID, Content: adapters.TextContent("18°C, sunny")})
		msg, finish, _ = streamTurn(t, p, req)
		if msg.Content.String() != "It is 18°C and sunny in Paris!" || finish != "stop" {
			t.Errorf("second turn = %q (%s)", msg.Content.String(), finish)
		}
	})
}

// streamTurn accumulates a streamed answer into the message a client would keep.
func streamTurn(t *testing.T, p *Provider, req *adapters.ChatRequest) (msg adapters.Message, finish string, usage *adapters.Usage) {
	t.Helper()
	s, err := p.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chunks, err := adaptertest.DrainStream(s)
	if err != io.EOF {
		t.Fatalf("stream ended with %v", err)
	}
	var text bytes.Buffer
	hasText := false
	for _, c := range chunks {
		if c.Usage != nil {
			usage = c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Delta.Role != "" {
				msg.Role = ch.Delta.Role
			}
			if ch.Delta.Content != nil && *ch.Delta.Content != "" {
				text.WriteString(*ch.Delta.Content)
				hasText = true
			}
			for _, d := range ch.Delta.ToolCalls {
				i := *d.Index
				for len(msg.ToolCalls) <= i {
					msg.ToolCalls = append(msg.ToolCalls, adapters.ToolCall{})
				}
				tc := &msg.ToolCalls[i]
				tc.ID += d.ID
				if d.Type != "" {
					tc.Type = d.Type
				}
				tc.Function.Name += d.Function.Name
				tc.Function.Arguments += d.Function.Arguments
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if hasText {
		msg.Content = adapters.TextContent(text.String())
	}
	return msg, finish, usage
}
