package gemini

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

const testKey = "AIzaSyTest-secret-0123456789"

func TestNew(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantErr    string
		wantPrefix string
	}{
		{name: "defaults", cfg: Config{Name: "gemini"}, wantPrefix: "https://generativelanguage.googleapis.com/v1beta/"},
		{name: "trailing slash and version", cfg: Config{Name: "g", BaseURL: "http://proxy.local/gemini/", APIVersion: "/v1/"},
			wantPrefix: "http://proxy.local/gemini/v1/"},
		{name: "no name", cfg: Config{}, wantErr: "name is required"},
		{name: "relative", cfg: Config{Name: "x", BaseURL: "generativelanguage.googleapis.com"}, wantErr: "base_url"},
		{name: "ftp", cfg: Config{Name: "x", BaseURL: "ftp://example.com"}, wantErr: "http(s)"},
		{name: "unparsable", cfg: Config{Name: "x", BaseURL: "http://[::1"}, wantErr: "not a valid URL"},
		{name: "key in query", cfg: Config{Name: "x", BaseURL: "https://generativelanguage.googleapis.com?key=AIza"}, wantErr: "query"},
		{name: "password not echoed", cfg: Config{Name: "x", BaseURL: "ftp://user:hunter2@example.com"}, wantErr: "xxxxx"},
		{name: "bad version", cfg: Config{Name: "x", APIVersion: "v1/../files"}, wantErr: "api_version"},
		{name: "bad header name", cfg: Config{Name: "x", Headers: map[string]string{"X Bad": "1"}}, wantErr: "invalid header"},
		{name: "header value newline", cfg: Config{Name: "x", Headers: map[string]string{"X-Ok": "a\r\nb"}}, wantErr: "invalid header"},
		{name: "owned header", cfg: Config{Name: "x", Headers: map[string]string{"accept": "text/plain"}}, wantErr: "set by the adapter"},
		{name: "key with newline", cfg: Config{Name: "x", APIKey: "AIza\nInjected: yes"}, wantErr: "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "AIza") {
					t.Fatalf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Name() != tt.cfg.Name || p.prefix != tt.wantPrefix {
				t.Errorf("name %q prefix %q", p.Name(), p.prefix)
			}
		})
	}
}

func TestRequestShape(t *testing.T) {
	text := adaptertest.ReadTestdata(t, "responses/text.gemini.json")
	sse := adaptertest.ReadTestdata(t, "streams/text.sse")
	embed := adaptertest.ReadTestdata(t, "embeddings/response.gemini.json")
	tests := []struct {
		name      string
		cfg       Config
		reply     []byte
		sse       bool
		call      func(p *Provider) error
		wantPath  string
		wantQuery string
		want      map[string]string // "" means the header must be absent
	}{
		{
			name: "chat", cfg: Config{APIKey: testKey, Headers: map[string]string{"x-trace": "abc"}}, reply: text,
			call: func(p *Provider) error {
				_, err := p.Chat(context.Background(), chatRequest(false))
				return err
			},
			wantPath: "/v1beta/models/gemini-requested:generateContent",
			want: map[string]string{"X-Goog-Api-Key": testKey, "X-Trace": "abc", "Content-Type": "application/json",
				"Accept": "application/json", "Authorization": ""},
		},
		{
			name: "stream", cfg: Config{APIKey: testKey}, reply: sse, sse: true,
			call: func(p *Provider) error {
				s, err := p.ChatStream(context.Background(), chatRequest(true))
				if err != nil {
					return err
				}
				defer s.Close()
				if _, err := adaptertest.DrainStream(s); err != io.EOF {
					return err
				}
				return nil
			},
			wantPath: "/v1beta/models/gemini-requested:streamGenerateContent", wantQuery: "alt=sse",
			want: map[string]string{"X-Goog-Api-Key": testKey, "Accept": "text/event-stream"},
		},
		{
			name: "models/ prefix and version", cfg: Config{APIKey: testKey, APIVersion: "v1"}, reply: text,
			call: func(p *Provider) error {
				req := chatRequest(false)
				req.Model = "models/gemini-2.0-flash-001"
				_, err := p.Chat(context.Background(), req)
				return err
			},
			wantPath: "/v1/models/gemini-2.0-flash-001:generateContent",
			want:     map[string]string{"X-Goog-Api-Key": testKey},
		},
		{
			name: "tuned model", cfg: Config{APIKey: testKey}, reply: text,
			call: func(p *Provider) error {
				req := chatRequest(false)
				req.Model = "tunedModels/my-model-1a2b"
				_, err := p.Chat(context.Background(), req)
				return err
			},
			wantPath: "/v1beta/tunedModels/my-model-1a2b:generateContent",
		},
		{
			name: "no key, proxy credentials", cfg: Config{Headers: map[string]string{"Authorization": "Bearer proxy-token"}}, reply: text,
			call: func(p *Provider) error {
				_, err := p.Chat(context.Background(), chatRequest(false))
				return err
			},
			wantPath: "/v1beta/models/gemini-requested:generateContent",
			want:     map[string]string{"X-Goog-Api-Key": "", "Authorization": "Bearer proxy-token"},
		},
		{
			name: "embeddings", cfg: Config{APIKey: testKey}, reply: embed,
			call: func(p *Provider) error {
				_, err := p.Embed(context.Background(), &adapters.EmbeddingRequest{Model: "gemini-embedding-001", Input: adapters.TextInput("a", "b")})
				return err
			},
			wantPath: "/v1beta/models/gemini-embedding-001:batchEmbedContents",
			want:     map[string]string{"X-Goog-Api-Key": testKey, "Accept": "application/json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr map[string]string
			if tt.sse {
				hdr = map[string]string{"Content-Type": "text/event-stream"}
			}
			rec, srv := newRecorder(t, 200, tt.reply, hdr)
			cfg := tt.cfg
			cfg.BaseURL = srv.URL
			p := mustProvider(t, cfg)
			if err := tt.call(p); err != nil {
				t.Fatal(err)
			}
			last := rec.Last()
			if last.Method != http.MethodPost || last.Path != tt.wantPath || last.Query != tt.wantQuery {
				t.Errorf("request = %s %s?%s, want POST %s?%s", last.Method, last.Path, last.Query, tt.wantPath, tt.wantQuery)
			}
			if strings.Contains(last.URI, "key=") || strings.Contains(last.URI, testKey) || strings.Contains(string(last.Body), testKey) {
				t.Errorf("the key is in the URL or body: %s", last.URI)
			}
			for k, v := range tt.want {
				if got := last.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestStatusKinds(t *testing.T) {
	tests := []struct {
		status     int
		file       string
		body       string
		headers    map[string]string
		kind       adapters.Kind
		code       string
		msg        string
		retryAfter time.Duration
	}{
		{status: 400, file: "400_api_key_invalid.json", kind: adapters.KindAuth, code: "INVALID_ARGUMENT", msg: "API key not valid"},
		{status: 400, file: "400_invalid_argument.json", kind: adapters.KindBadRequest, code: "INVALID_ARGUMENT", msg: `Unknown name "additionalProperties"`},
		{status: 400, file: "400_context_length.json", kind: adapters.KindContextLength, code: "INVALID_ARGUMENT", msg: "exceeds the maximum number of tokens"},
		{status: 400, file: "400_location.json", kind: adapters.KindAuth, code: "FAILED_PRECONDITION", msg: "User location"},
		{status: 403, file: "403_permission_denied.json", kind: adapters.KindAuth, code: "PERMISSION_DENIED"},
		{status: 404, file: "404_model.json", kind: adapters.KindNotFound, code: "NOT_FOUND", msg: "gemini-9.0-ultra is not found"},
		{status: 429, file: "429_quota.json", kind: adapters.KindRateLimited, code: "RESOURCE_EXHAUSTED", msg: "exceeded your current quota", retryAfter: 27 * time.Second},
		{status: 429, file: "429_quota.json", headers: map[string]string{"Retry-After": "3"}, kind: adapters.KindRateLimited,
			code: "RESOURCE_EXHAUSTED", retryAfter: 3 * time.Second},
		{status: 429, file: "429_array.json", kind: adapters.KindRateLimited, code: "RESOURCE_EXHAUSTED", msg: "Resource has been exhausted"},
		{status: 500, file: "500_internal.json", kind: adapters.KindServer, code: "INTERNAL", msg: "internal error"},
		{status: 502, file: "502_proxy.html", kind: adapters.KindServer, msg: "502 Server Error"},
		{status: 503, file: "503_overloaded.json", kind: adapters.KindOverloaded, code: "UNAVAILABLE", msg: "overloaded"},
		{status: 504, file: "504_deadline.json", kind: adapters.KindTimeout, code: "DEADLINE_EXCEEDED"},
		{status: 400, kind: adapters.KindBadRequest, msg: "Bad Request"},
		{status: 401, body: `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`,
			kind: adapters.KindAuth, code: "UNAUTHENTICATED"},
		{status: 400, body: `{"error":{"code":400,"message":"key ` + testKey + ` rejected","status":"INVALID_ARGUMENT"}}`,
			kind: adapters.KindBadRequest, code: "INVALID_ARGUMENT", msg: "[redacted]"},
		{status: 500, body: `{"error":{"code":"500","message":"x","status":null,"details":"not a list"}}`, kind: adapters.KindServer},
		{status: 413, kind: adapters.KindContextLength},
		{status: 307, kind: adapters.KindProtocol},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%d %s%s", tt.status, tt.file, tt.msg)
		t.Run(name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = adaptertest.ReadTestdata(t, "errors/"+tt.file)
			}
			headers := map[string]string{"Location": "http://elsewhere.invalid/"}
			for k, v := range tt.headers {
				headers[k] = v
			}
			_, srv := newRecorder(t, tt.status, body, headers)
			p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: testKey})
			calls := map[string]func() error{
				"chat": func() error { _, err := p.Chat(context.Background(), chatRequest(false)); return err },
				"stream": func() error {
					_, err := p.ChatStream(context.Background(), chatRequest(false))
					return err
				},
				"embed": func() error {
					_, err := p.Embed(context.Background(), &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("x")})
					return err
				},
			}
			for what, call := range calls {
				e := adaptertest.AsError(t, call(), tt.kind)
				if e.Status != tt.status || e.Provider != "test" || e.Code != tt.code || !strings.Contains(e.Message, tt.msg) ||
					e.RetryAfter != tt.retryAfter {
					t.Errorf("%s: error = %+v", what, e)
				}
				if strings.Contains(e.Error(), testKey) {
					t.Errorf("%s: error leaks the key: %v", what, e)
				}
			}
		})
	}
}

func TestStreamErrorKinds(t *testing.T) {
	p := mustProvider(t, Config{APIKey: testKey})
	tests := []struct {
		body string
		kind adapters.Kind
	}{
		{`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}`, adapters.KindRateLimited},
		{`{"error":{"code":400,"message":"The input token count (5) exceeds the maximum number of tokens allowed (4)."}}`, adapters.KindContextLength},
		{`{"error":{"code":503,"message":"The model is overloaded."}}`, adapters.KindOverloaded},
		{`{"error":{"status":"PERMISSION_DENIED"}}`, adapters.KindAuth},
		{`{"error":{"code":200}}`, adapters.KindServer},
		{`{"error":{}}`, adapters.KindServer},
	}
	for _, tt := range tests {
		w, ok := parseErrorBody([]byte(tt.body))
		if !ok {
			t.Fatalf("%s: not parsed", tt.body)
		}
		e := p.streamError(w)
		if e.Kind != tt.kind || e.Message == "" || e.Status != 0 {
			t.Errorf("%s: %+v", tt.body, e)
		}
		if tt.kind == adapters.KindRateLimited && e.RetryAfter != 1500*time.Millisecond {
			t.Errorf("retry after %v", e.RetryAfter)
		}
	}
}

func TestProtoDuration(t *testing.T) {
	tests := map[string]time.Duration{
		"12s": 12 * time.Second, "0.5s": 500 * time.Millisecond, "1.000340012s": 1000340012 * time.Nanosecond,
		"": 0, "12": 0, "3.5e2s": 350 * time.Second, "0.0000000001s": 0, "-3s": 0, "s": 0, "NaNs": 0, "abc s": 0, "99999999999s": maxRetryDelay, "+Infs": 0, "Infs": 0,
	}
	for in, want := range tests {
		if got := parseProtoDuration(in); got != want {
			t.Errorf("parseProtoDuration(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestErrorBodyIsBounded(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	_, srv := newRecorder(t, 500, []byte(`{"error":{"code":500,"message":"`+big+`"}}`), nil)
	p := mustProvider(t, Config{BaseURL: srv.URL})
	_, err := p.Chat(context.Background(), chatRequest(false))
	e := adaptertest.AsError(t, err, adapters.KindServer)
	if len(e.Message) > httpx.MaxMessage {
		t.Errorf("message length %d exceeds %d", len(e.Message), httpx.MaxMessage)
	}
}

func TestChatOddAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		ctype  string
		stream bool
		kind   adapters.Kind
	}{
		{name: "undecodable 2xx", status: 200, body: `{"candidates": [`, kind: adapters.KindProtocol},
		{name: "no candidates", status: 200, body: `{"usageMetadata":{"promptTokenCount":3}}`, kind: adapters.KindProtocol},
		{name: "stream answered with an error body", status: 200, body: `{"error":{"code":503,"status":"UNAVAILABLE"}}`,
			ctype: "application/json", stream: true, kind: adapters.KindOverloaded},
		{name: "stream answered with a JSON array (alt=sse dropped)", status: 200, body: `[{"candidates":[]}]`,
			ctype: "application/json", stream: true, kind: adapters.KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr map[string]string
			if tt.ctype != "" {
				hdr = map[string]string{"Content-Type": tt.ctype}
			}
			_, srv := newRecorder(t, tt.status, []byte(tt.body), hdr)
			p := mustProvider(t, Config{BaseURL: srv.URL})
			var err error
			if tt.stream {
				_, err = p.ChatStream(context.Background(), chatRequest(false))
			} else {
				_, err = p.Chat(context.Background(), chatRequest(false))
			}
			if e := adaptertest.AsError(t, err, tt.kind); e.Status != tt.status {
				t.Errorf("status = %d", e.Status)
			}
		})
	}
}

func TestTransportErrors(t *testing.T) {
	adaptertest.TransportErrors(t, testAdapter(false), testKey, testKey)
}

func TestEmbed(t *testing.T) {
	t.Run("golden", func(t *testing.T) {
		raw := adaptertest.ReadTestdata(t, "embeddings/request.openai.json")
		var req adapters.EmbeddingRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"float", "base64"} {
			req.EncodingFormat = format
			rec, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "embeddings/response.gemini.json"), nil)
			p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: testKey})
			resp, err := p.Embed(context.Background(), &req)
			if err != nil {
				t.Fatal(err)
			}
			body := rec.Last().Body
			adaptertest.Golden(t, "embeddings/request.gemini.json", body)
			got, _ := json.Marshal(resp)
			adaptertest.Golden(t, "embeddings/response."+format+".openai.json", got)
		}
	})

	t.Run("base64 decodes to the floats", func(t *testing.T) {
		v := []float32{0.013168523, -0.008711934, float32(math.Pi), -0}
		var s string
		if err := json.Unmarshal(encodeVector(v, true), &s); err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != 16 {
			t.Fatalf("%v %d", err, len(raw))
		}
		for i := range v {
			if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != v[i] {
				t.Errorf("[%d] = %v, want %v", i, got, v[i])
			}
		}
	})

	t.Run("batches of 100", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			var req batchEmbedRequest
			json.NewDecoder(r.Body).Decode(&req)
			var out strings.Builder
			out.WriteString(`{"embeddings":[`)
			for i, q := range req.Requests {
				if i > 0 {
					out.WriteByte(',')
				}
				fmt.Fprintf(&out, `{"values":[%d]}`, len(q.Content.Parts[0].Text))
			}
			out.WriteString(`]}`)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, out.String())
		}))
		defer srv.Close()
		p := mustProvider(t, Config{BaseURL: srv.URL})
		texts := make([]string, 250)
		for i := range texts {
			texts[i] = strings.Repeat("a", i)
		}
		resp, err := p.Embed(context.Background(), &adapters.EmbeddingRequest{Model: "text-embedding-004", Input: adapters.TextInput(texts...)})
		if err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 3 || len(resp.Data) != 250 {
			t.Fatalf("%d calls, %d embeddings", calls.Load(), len(resp.Data))
		}
		for i, d := range resp.Data {
			if d.Index != i || string(d.Embedding) != fmt.Sprintf("[%d]", i) || d.Object != "embedding" {
				t.Fatalf("data[%d] = %+v", i, d)
			}
		}
		n := 0
		for _, s := range texts {
			n += len(s)
		}
		if resp.Usage.PromptTokens != (n+3)/4 || resp.Usage.TotalTokens != resp.Usage.PromptTokens {
			t.Errorf("usage = %+v", resp.Usage)
		}
	})

	t.Run("request errors", func(t *testing.T) {
		p := mustProvider(t, Config{BaseURL: "http://127.0.0.1:1"})
		for _, tt := range []struct {
			req adapters.EmbeddingRequest
			msg string
		}{
			{adapters.EmbeddingRequest{Model: "m", Input: adapters.EmbeddingInput{Tokens: [][]int{{1, 2}}}}, "Gemini needs text input"},
			{adapters.EmbeddingRequest{Model: "m"}, "empty"},
			{adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("x"), EncodingFormat: "int8"}, "encoding_format"},
			{adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("x"), Dimensions: adaptertest.Ptr(0)}, "dimensions"},
			{adapters.EmbeddingRequest{Model: "a/b", Input: adapters.TextInput("x")}, "model"},
		} {
			_, err := p.Embed(context.Background(), &tt.req)
			if e := adaptertest.AsError(t, err, adapters.KindBadRequest); !strings.Contains(e.Message, tt.msg) || e.Provider != "test" {
				t.Errorf("error = %+v, want containing %q", e, tt.msg)
			}
		}
	})

	t.Run("odd answers", func(t *testing.T) {
		for _, tt := range []struct {
			body string
			kind adapters.Kind
		}{
			{`{"embeddings":[{"values":[1]}]}`, adapters.KindProtocol},                   // one for two inputs
			{`{"embeddings":[{"values":[1]},{"values":[]}]}`, adapters.KindProtocol},     // empty vector
			{`{"embeddings":[{"values":[1e40]},{"values":[1]}]}`, adapters.KindProtocol}, // not a float32
			{`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}`, adapters.KindRateLimited},
		} {
			_, srv := newRecorder(t, 200, []byte(tt.body), nil)
			p := mustProvider(t, Config{BaseURL: srv.URL})
			_, err := p.Embed(context.Background(), &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("a", "b")})
			adaptertest.AsError(t, err, tt.kind)
		}
	})
}
