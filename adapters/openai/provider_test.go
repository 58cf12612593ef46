package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// canonicalRequest exercises every shape a request can take on the wire: parts content,
// assistant tool calls, tool results, tools, raw tool_choice and response_format.
func canonicalRequest() *adapters.ChatRequest {
	return &adapters.ChatRequest{
		Model: "gpt-4o-mini",
		Messages: []adapters.Message{
			{Role: "system", Content: adapters.TextContent("You are terse.")},
			{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{
				{Type: "text", Text: "What is in this image, and what is the weather in Paris?"},
				{Type: "image_url", ImageURL: &adapters.ImageURL{URL: "https://example.com/cat.png", Detail: "low"}},
			}}},
			{Role: "assistant", ToolCalls: []adapters.ToolCall{{
				ID: "call_1", Type: "function",
				Function: adapters.FunctionCall{Name: "get_weather", Arguments: `{"location":"Paris"}`},
			}}},
			{Role: "tool", ToolCallID: "call_1", Content: adapters.TextContent(`{"temp_c":18}`)},
		},
		StreamOptions:       &adapters.StreamOptions{IncludeUsage: true},
		MaxCompletionTokens: adaptertest.Ptr(256),
		Temperature:         adaptertest.Ptr(0.2),
		Stop:                adapters.Stop{"\n\n"},
		Seed:                adaptertest.Ptr(int64(7)),
		User:                "user-42",
		Tools: []adapters.Tool{{Type: "function", Function: adapters.FunctionDef{
			Name:        "get_weather",
			Description: "Current weather for a city",
			Parameters:  json.RawMessage(`{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}`),
		}}},
		ToolChoice:     json.RawMessage(`"auto"`),
		ResponseFormat: json.RawMessage(`{"type":"text"}`),
	}
}

// newRecorder starts a server that remembers the last request; see adaptertest.Recorder.
func newRecorder(t *testing.T, status int, reply []byte, headers map[string]string) (*adaptertest.Recorder, *httptest.Server) {
	return adaptertest.NewRecorder(t, "application/json", status, reply, headers)
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		wantURL string
	}{
		{name: "default base", cfg: Config{Name: "openai"}, wantURL: "https://api.openai.com/v1/chat/completions"},
		{name: "trailing slash", cfg: Config{Name: "vllm", BaseURL: "http://localhost:8000/v1/"}, wantURL: "http://localhost:8000/v1/chat/completions"},
		{name: "no name", cfg: Config{BaseURL: "http://x"}, wantErr: "name is required"},
		{name: "relative", cfg: Config{Name: "x", BaseURL: "localhost:8000/v1"}, wantErr: "base_url"},
		{name: "ftp", cfg: Config{Name: "x", BaseURL: "ftp://example.com"}, wantErr: "http(s)"},
		{name: "no host", cfg: Config{Name: "x", BaseURL: "http:///v1"}, wantErr: "http(s)"},
		{name: "unparsable", cfg: Config{Name: "x", BaseURL: "http://[::1"}, wantErr: "not a valid URL"},
		{name: "query", cfg: Config{Name: "x", BaseURL: "http://example.com/v1?x=1"}, wantErr: "query"},
		{name: "password not echoed", cfg: Config{Name: "x", BaseURL: "ftp://user:hunter2@example.com"}, wantErr: "xxxxx"},
		{name: "bad header name", cfg: Config{Name: "x", Headers: map[string]string{"X Bad": "1"}}, wantErr: "invalid header"},
		{name: "header value newline", cfg: Config{Name: "x", Headers: map[string]string{"X-Ok": "a\r\nb"}}, wantErr: "invalid header"},
		{name: "owned header", cfg: Config{Name: "x", Headers: map[string]string{"content-type": "text/plain"}}, wantErr: "set by the adapter"},
		{name: "key with newline", cfg: Config{Name: "x", APIKey: "sk-1\nInjected: yes"}, wantErr: "control characters"},
		{name: "azure", cfg: Config{Name: "az", BaseURL: "https://res.openai.azure.com/", APIVersion: "2024-10-21"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error leaks the URL password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != tt.cfg.Name {
				t.Errorf("Name() = %q", p.Name())
			}
			if tt.wantURL != "" && p.chat.url != tt.wantURL {
				t.Errorf("chat URL = %q, want %q", p.chat.url, tt.wantURL)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		stream     bool
		wantPath   string
		wantQuery  string
		want       map[string]string // "" means the header must be absent
		wantModel  string
		wantStream bool
	}{
		{
			name: "openai",
			cfg: Config{APIKey: "sk-test", Organization: "org-1", Project: "proj-1",
				Headers: map[string]string{"x-trace": "abc"}},
			wantPath: "/v1/chat/completions",
			want: map[string]string{
				"Authorization": "Bearer sk-test", "OpenAI-Organization": "org-1", "OpenAI-Project": "proj-1",
				"X-Trace": "abc", "Content-Type": "application/json", "Accept": "application/json", "Api-Key": "",
			},
		},
		{
			name:     "stream accepts event-stream",
			cfg:      Config{APIKey: "sk-test"},
			stream:   true,
			wantPath: "/v1/chat/completions",
			want:     map[string]string{"Accept": "text/event-stream", "Authorization": "Bearer sk-test"},
		},
		{
			name:     "no key sends no authorization (ollama)",
			cfg:      Config{},
			wantPath: "/v1/chat/completions",
			want:     map[string]string{"Authorization": "", "OpenAI-Organization": "", "OpenAI-Project": ""},
		},
		{
			name:      "azure",
			cfg:       Config{APIKey: "az-key", APIVersion: "2024-10-21"},
			wantPath:  "/openai/deployments/gpt-4o-mini/chat/completions",
			wantQuery: "api-version=2024-10-21",
			want:      map[string]string{"Api-Key": "az-key", "Authorization": ""},
		},
		{
			name:      "azure stream",
			cfg:       Config{APIKey: "az-key", APIVersion: "2025-01-01-preview"},
			stream:    true,
			wantPath:  "/openai/deployments/gpt-4o-mini/chat/completions",
			wantQuery: "api-version=2025-01-01-preview",
			want:      map[string]string{"Api-Key": "az-key", "Accept": "text/event-stream"},
		},
		{
			name:     "header overrides authentication",
			cfg:      Config{APIKey: "sk-test", Headers: map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}},
			wantPath: "/v1/chat/completions",
			want:     map[string]string{"Authorization": "Basic Zm9vOmJhcg=="},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := adaptertest.ReadTestdata(t, "chat_response.json")
			hdr := map[string]string(nil)
			if tt.stream {
				reply = adaptertest.ReadTestdata(t, "stream_text.sse")
				hdr = map[string]string{"Content-Type": "text/event-stream"}
			}
			rec, srv := newRecorder(t, 200, reply, hdr)
			cfg := tt.cfg
			cfg.BaseURL = srv.URL
			if cfg.APIVersion == "" {
				cfg.BaseURL += "/v1"
			}
			p := mustProvider(t, cfg)
			req := canonicalRequest()
			if tt.stream {
				s, err := p.ChatStream(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := adaptertest.DrainStream(s); err != io.EOF {
					t.Fatalf("stream ended with %v", err)
				}
				s.Close()
			} else if _, err := p.Chat(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			last := rec.Last()
			if last.Method != http.MethodPost || last.Path != tt.wantPath || last.Query != tt.wantQuery {
				t.Errorf("request = %s %s?%s, want POST %s?%s", last.Method, last.Path, last.Query, tt.wantPath, tt.wantQuery)
			}
			for k, v := range tt.want {
				if got := last.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestRequestBodyGolden(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		stream bool
		edit   func(*adapters.ChatRequest)
	}{
		{name: "chat", golden: "chat_request.json"},
		{name: "stream", golden: "chat_stream_request.json", stream: true},
		{name: "stream without options", golden: "chat_stream_request_no_options.json", stream: true,
			edit: func(r *adapters.ChatRequest) { r.StreamOptions = nil }},
		// Members gavel has no typed field for reach an OpenAI-protocol upstream unchanged,
		// at the level where the client sent them.
		{name: "extra fields", golden: "chat_request_extra.json", edit: withExtraFields},
		{name: "extra fields streamed", golden: "chat_stream_request_extra.json", stream: true, edit: withExtraFields},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, hdr := adaptertest.ReadTestdata(t, "chat_response.json"), map[string]string(nil)
			if tt.stream {
				reply, hdr = adaptertest.ReadTestdata(t, "stream_text.sse"), map[string]string{"Content-Type": "text/event-stream"}
			}
			rec, srv := newRecorder(t, 200, reply, hdr)
			p := mustProvider(t, Config{BaseURL: srv.URL})
			req := canonicalRequest()
			if tt.edit != nil {
				tt.edit(req)
			}
			before, _ := json.Marshal(req)
			if tt.stream {
				s, err := p.ChatStream(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
			} else if _, err := p.Chat(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			after, _ := json.Marshal(req)
			if string(before) != string(after) {
				t.Errorf("the caller's request was mutated")
			}
			body := rec.Last().Body
			adaptertest.Golden(t, tt.golden, body)
		})
	}
}

func TestChatResponses(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		_, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "chat_response.json"), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		resp, err := p.Chat(context.Background(), canonicalRequest())
		if err != nil {
			t.Fatal(err)
		}
		if resp.ID != "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT" || resp.Object != adapters.ObjectChatCompletion ||
			resp.Model != "gpt-4.1-2025-04-14" || resp.Created != 1741569952 || resp.SystemFingerprint != "fp_b376dfbbd5" {
			t.Errorf("envelope = %+v", resp)
		}
		if len(resp.Choices) != 1 || resp.Choices[0].Message.Content.String() != "Hello! How can I assist you today?" ||
			resp.Choices[0].FinishReason != adapters.FinishStop || resp.Choices[0].Message.Role != "assistant" {
			t.Errorf("choices = %+v", resp.Choices)
		}
		if u := resp.Usage; u == nil || u.PromptTokens != 19 || u.CompletionTokens != 10 || u.TotalTokens != 29 {
			t.Errorf("usage = %+v", resp.Usage)
		}
	})
	t.Run("tool calls", func(t *testing.T) {
		_, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "chat_tool_calls_response.json"), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		resp, err := p.Chat(context.Background(), canonicalRequest())
		if err != nil {
			t.Fatal(err)
		}
		c := resp.Choices[0]
		if c.FinishReason != adapters.FinishToolCalls || c.Message.Content != nil || len(c.Message.ToolCalls) != 1 {
			t.Fatalf("choice = %+v", c)
		}
		tc := c.Message.ToolCalls[0]
		if tc.ID != "call_abc123" || tc.Type != "function" || tc.Function.Name != "get_current_weather" ||
			tc.Function.Arguments != "{\n\"location\": \"Boston, MA\"\n}" {
			t.Errorf("tool call = %+v", tc)
		}
	})
	t.Run("undecodable 2xx is a protocol error", func(t *testing.T) {
		_, srv := newRecorder(t, 200, []byte(`{"id": "x", "choices": [`), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		_, err := p.Chat(context.Background(), canonicalRequest())
		adaptertest.AsError(t, err, adapters.KindProtocol)
	})
	t.Run("error body with status 200", func(t *testing.T) {
		_, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "error_400_context_length.json"), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		_, err := p.Chat(context.Background(), canonicalRequest())
		e := adaptertest.AsError(t, err, adapters.KindContextLength)
		if e.Status != 200 || e.Code != "context_length_exceeded" {
			t.Errorf("error = %+v", e)
		}
	})
	t.Run("redirect is not followed", func(t *testing.T) {
		_, srv := newRecorder(t, http.StatusTemporaryRedirect, nil, map[string]string{"Location": "http://elsewhere.invalid/"})
		p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: "k", APIVersion: "2024-10-21"})
		_, err := p.Chat(context.Background(), canonicalRequest())
		e := adaptertest.AsError(t, err, adapters.KindProtocol)
		if e.Status != http.StatusTemporaryRedirect {
			t.Errorf("status = %d", e.Status)
		}
	})
}

func TestStatusKinds(t *testing.T) {
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
		{name: "400", status: 400, kind: adapters.KindBadRequest, msg: "Bad Request"},
		{name: "401", status: 401, body: adaptertest.ReadTestdata(t, "error_401.json"), kind: adapters.KindAuth, code: "invalid_api_key", msg: "Incorrect API key"},
		{name: "403", status: 403, kind: adapters.KindAuth},
		{name: "404", status: 404, body: adaptertest.ReadTestdata(t, "error_404.json"), kind: adapters.KindNotFound, code: "model_not_found", msg: "`gpt-9` does not exist"},
		{name: "408", status: 408, kind: adapters.KindTimeout},
		{name: "409", status: 409, kind: adapters.KindBadRequest},
		{name: "413", status: 413, kind: adapters.KindContextLength},
		{name: "422", status: 422, kind: adapters.KindBadRequest},
		{name: "429 retry-after seconds", status: 429, body: adaptertest.ReadTestdata(t, "error_429.json"),
			headers: map[string]string{"Retry-After": "2"}, kind: adapters.KindRateLimited, code: "rate_limit_exceeded",
			msg: "Rate limit reached", retryAfter: 2 * time.Second},
		{name: "429 retry-after-ms", status: 429, body: adaptertest.ReadTestdata(t, "error_429.json"),
			headers: map[string]string{"Retry-After": "2", "retry-after-ms": "1500"}, kind: adapters.KindRateLimited,
			code: "rate_limit_exceeded", retryAfter: 1500 * time.Millisecond},
		{name: "429 insufficient quota", status: 429, body: adaptertest.ReadTestdata(t, "error_429_quota.json"),
			kind: adapters.KindRateLimited, code: "insufficient_quota", msg: "exceeded your current quota"},
		{name: "500", status: 500, body: adaptertest.ReadTestdata(t, "error_500.json"), kind: adapters.KindServer, code: "server_error", msg: "Sorry about that"},
		{name: "502 html from a proxy", status: 502, body: adaptertest.ReadTestdata(t, "error_502.html"), kind: adapters.KindServer, msg: "502 Bad Gateway"},
		{name: "503", status: 503, kind: adapters.KindOverloaded},
		{name: "504", status: 504, kind: adapters.KindTimeout},
		{name: "529", status: 529, kind: adapters.KindOverloaded},
		{name: "400 context length", status: 400, body: adaptertest.ReadTestdata(t, "error_400_context_length.json"),
			kind: adapters.KindContextLength, code: "context_length_exceeded", msg: "maximum context length"},
		{name: "400 azure content filter", status: 400, body: adaptertest.ReadTestdata(t, "error_400_content_filter.json"),
			kind: adapters.KindContentFilter, code: "content_filter", msg: "content management policy"},
		{name: "400 content policy violation", status: 400,
			body: []byte(`{"error":{"message":"Your request was rejected","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}`),
			kind: adapters.KindContentFilter, code: "content_policy_violation"},
		{name: "400 vllm context length by message", status: 400, body: adaptertest.ReadTestdata(t, "error_vllm_400.json"),
			kind: adapters.KindContextLength, code: "400", msg: "maximum context length is 4096"},
		{name: "404 ollama string error", status: 404, body: adaptertest.ReadTestdata(t, "error_ollama_404.json"),
			kind: adapters.KindNotFound, msg: `model "llama9" not found`},
		{name: "401 echoing the key", status: 401,
			body: []byte(`{"error":{"message":"Incorrect API key provided: sk-secret-123456.","type":"invalid_request_error","code":"invalid_api_key"}}`),
			kind: adapters.KindAuth, code: "invalid_api_key", msg: "[redacted]"},
		{name: "numeric code", status: 500, body: []byte(`{"error":{"message":"boom","type":null,"code":500}}`),
			kind: adapters.KindServer, code: "500", msg: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newRecorder(t, tt.status, tt.body, tt.headers)
			p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: "sk-secret-123456"})
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					_, err = p.ChatStream(context.Background(), canonicalRequest())
				} else {
					_, err = p.Chat(context.Background(), canonicalRequest())
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
				if strings.Contains(e.Error(), "sk-secret-123456") {
					t.Errorf("error leaks the API key: %v", e)
				}
			}
		})
	}
}

func TestErrorBodyIsBounded(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	_, srv := newRecorder(t, 500, []byte(`{"error":{"message":"`+big+`"}}`), nil)
	p := mustProvider(t, Config{BaseURL: srv.URL})
	_, err := p.Chat(context.Background(), canonicalRequest())
	e := adaptertest.AsError(t, err, adapters.KindServer)
	if len(e.Message) > httpx.MaxMessage {
		t.Errorf("message length %d exceeds %d", len(e.Message), httpx.MaxMessage)
	}
}

func TestTransportErrors(t *testing.T) {
	adaptertest.TransportErrors(t, testAdapter, "sk-secret-123456", "sk-secret")
}

func TestStreamAnsweredWithJSON(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		kind adapters.Kind
	}{
		{name: "error body with 200", body: adaptertest.ReadTestdata(t, "error_500.json"), kind: adapters.KindServer},
		{name: "non-streamed answer", body: adaptertest.ReadTestdata(t, "chat_response.json"), kind: adapters.KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newRecorder(t, 200, tt.body, map[string]string{"Content-Type": "application/json; charset=utf-8"})
			p := mustProvider(t, Config{BaseURL: srv.URL})
			_, err := p.ChatStream(context.Background(), canonicalRequest())
			adaptertest.AsError(t, err, tt.kind)
		})
	}
}

func TestRequestEncodingError(t *testing.T) {
	p := mustProvider(t, Config{BaseURL: "http://127.0.0.1:1"})
	req := canonicalRequest()
	req.ToolChoice = json.RawMessage(`{not json`)
	_, err := p.Chat(context.Background(), req)
	if e := adaptertest.AsError(t, err, adapters.KindBadRequest); errors.Unwrap(e) == nil {
		t.Errorf("cause not kept: %+v", e)
	}
}

func withExtraFields(r *adapters.ChatRequest) {
	r.Extra = adapters.Fields{{Name: "top_k", Value: json.RawMessage(`40`)},
		{Name: "chat_template_kwargs", Value: json.RawMessage(`{"enable_thinking": false}`)},
		{Name: "prediction", Value: json.RawMessage(`{"type":"content","content":"draft"}`)}}
	last := len(r.Messages) - 1
	r.Messages[last].Extra = adapters.Fields{{Name: "cache_control", Value: json.RawMessage(`{"type":"ephemeral"}`)}}
	r.Messages[last].Content = &adapters.Content{Parts: []adapters.ContentPart{{Type: "text", Text: r.Messages[last].Content.String(),
		Extra: adapters.Fields{{Name: "cache_control", Value: json.RawMessage(`{"type":"ephemeral","ttl":"1h"}`)}}}}}
}
