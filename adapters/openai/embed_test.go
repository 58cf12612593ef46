package openai

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
)

// embeddingRequest decodes a request from its wire form, which is the only way to build
// every input form (a bare token array, say) from outside package adapters.
func embeddingRequest(t testing.TB, wire string) *adapters.EmbeddingRequest {
	t.Helper()
	req := new(adapters.EmbeddingRequest)
	if err := json.Unmarshal([]byte(wire), req); err != nil {
		t.Fatalf("request %s: %v", wire, err)
	}
	return req
}

func compactJSON(t testing.TB, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return out.String()
}

func TestEmbedRequests(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wire      string // the request as a client sent it
		golden    string // compare the upstream body with testdata/golden instead of wire
		wantPath  string
		wantQuery string
		want      map[string]string // headers; "" means absent
	}{
		{
			name:     "string input",
			cfg:      Config{APIKey: "sk-test", Organization: "org-1"},
			wire:     `{"model":"text-embedding-3-small","input":"The quick brown fox"}`,
			wantPath: "/v1/embeddings",
			want: map[string]string{"Authorization": "Bearer sk-test", "OpenAI-Organization": "org-1",
				"Content-Type": "application/json", "Accept": "application/json", "Api-Key": ""},
		},
		{
			name: "array input with every option",
			cfg:  Config{APIKey: "sk-test"},
			wire: `{"model":"text-embedding-3-small","input":["The food was delicious and the waiter was friendly.","Le repas était délicieux."],` +
				`"encoding_format":"float","dimensions":256,"user":"user-42"}`,
			golden:   "embeddings_request.json",
			wantPath: "/v1/embeddings",
		},
		{
			name:     "single-element array stays an array",
			wire:     `{"model":"text-embedding-3-small","input":["one"]}`,
			wantPath: "/v1/embeddings",
			want:     map[string]string{"Authorization": ""},
		},
		{
			name:     "token input",
			wire:     `{"model":"text-embedding-3-small","input":[791,4062,14198,39935]}`,
			wantPath: "/v1/embeddings",
		},
		{
			name:     "token arrays input",
			wire:     `{"model":"text-embedding-3-small","input":[[791,4062],[14198],[39935,1]]}`,
			wantPath: "/v1/embeddings",
		},
		{
			name:     "dimensions and base64",
			wire:     `{"model":"text-embedding-3-large","input":"x","encoding_format":"base64","dimensions":1024}`,
			wantPath: "/v1/embeddings",
		},
		{
			name:      "azure",
			cfg:       Config{APIKey: "az-key", APIVersion: "2024-10-21", Headers: map[string]string{"x-trace": "t1"}},
			wire:      `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":512}`,
			wantPath:  "/openai/deployments/text-embedding-3-small/embeddings",
			wantQuery: "api-version=2024-10-21",
			want:      map[string]string{"Api-Key": "az-key", "Authorization": "", "X-Trace": "t1", "Accept": "application/json"},
		},
		{
			name:      "azure deployment name is escaped",
			cfg:       Config{APIKey: "az-key", APIVersion: "2025-01-01-preview"},
			wire:      `{"model":"my embed/v2","input":"x"}`,
			wantPath:  "/openai/deployments/my%20embed%2Fv2/embeddings",
			wantQuery: "api-version=2025-01-01-preview",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "embeddings_response.json"), nil)
			cfg := tt.cfg
			cfg.BaseURL = srv.URL
			if cfg.APIVersion == "" {
				cfg.BaseURL += "/v1"
			}
			p := mustProvider(t, cfg)
			req := embeddingRequest(t, tt.wire)
			before, _ := json.Marshal(req)
			if _, err := p.Embed(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if after, _ := json.Marshal(req); !bytes.Equal(before, after) {
				t.Errorf("the caller's request was mutated")
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
			if tt.golden != "" {
				adaptertest.Golden(t, tt.golden, last.Body)
			} else if got, want := compactJSON(t, last.Body), compactJSON(t, []byte(tt.wire)); got != want {
				// Byte equality, not JSON equivalence: the input must keep its exact form.
				t.Errorf("upstream body\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestEmbedResponses(t *testing.T) {
	t.Run("float", func(t *testing.T) {
		_, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "embeddings_response.json"), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		resp, err := p.Embed(context.Background(), embeddingRequest(t, `{"model":"text-embedding-3-small","input":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Object != "list" || resp.Model != "text-embedding-3-small" || len(resp.Data) != 1 {
			t.Fatalf("envelope = %+v", resp)
		}
		if u := resp.Usage; u == nil || u.PromptTokens != 8 || u.TotalTokens != 8 {
			t.Errorf("usage = %+v", resp.Usage)
		}
		d := resp.Data[0]
		if d.Object != "embedding" || d.Index != 0 {
			t.Errorf("data = %+v", d)
		}
		// The vector is relayed as the upstream wrote it, digits and all.
		want := "[0.0023064255,-0.009327292,-0.0028842222,0.017120078,-0.0117283575,1.2469511e-05,0.020839695,-0.027390456]"
		if got := compactJSON(t, d.Embedding); got != want {
			t.Errorf("embedding = %s, want %s", got, want)
		}
	})
	t.Run("base64 passes through undecoded", func(t *testing.T) {
		_, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "embeddings_response_base64.json"), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		resp, err := p.Embed(context.Background(),
			embeddingRequest(t, `{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"base64"}`))
		if err != nil {
			t.Fatal(err)
		}
		wantRaw := []string{`"ZicXO4DRGLw4BT27aD+MPA=="`, `"TChAvCQ0UTcCuKo882HgvA=="`}
		wantVec := [][]float32{{0.0023064255, -0.009327292, -0.0028842222, 0.017120078}, {-0.0117283575, 1.2469511e-05, 0.020839695, -0.027390456}}
		if len(resp.Data) != 2 {
			t.Fatalf("data = %+v", resp.Data)
		}
		for i, d := range resp.Data {
			if d.Index != i || string(d.Embedding) != wantRaw[i] {
				t.Errorf("data[%d] = %d %s, want %s", i, d.Index, d.Embedding, wantRaw[i])
			}
			var s string
			if err := json.Unmarshal(d.Embedding, &s); err != nil {
				t.Fatal(err)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(b) != 4*len(wantVec[i]) {
				t.Fatalf("base64 %q: %v (%d bytes)", s, err, len(b))
			}
			for j, w := range wantVec[i] {
				if got := math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:])); got != w {
					t.Errorf("vector %d[%d] = %v, want %v", i, j, got, w)
				}
			}
		}
	})
	t.Run("vectors outlive the pooled read buffer", func(t *testing.T) {
		_, a := newRecorder(t, 200, adaptertest.ReadTestdata(t, "embeddings_response.json"), nil)
		_, b := newRecorder(t, 200, adaptertest.ReadTestdata(t, "embeddings_response_base64.json"), nil)
		pa, pb := mustProvider(t, Config{BaseURL: a.URL}), mustProvider(t, Config{BaseURL: b.URL})
		req := embeddingRequest(t, `{"model":"m","input":"x"}`)
		first, err := pa.Embed(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		keep := string(first.Data[0].Embedding)
		for i := 0; i < 20; i++ {
			if _, err := pb.Embed(context.Background(), req); err != nil {
				t.Fatal(err)
			}
		}
		if string(first.Data[0].Embedding) != keep {
			t.Errorf("vector changed under the caller: %s", first.Data[0].Embedding)
		}
	})
	for _, tt := range []struct {
		name   string
		status int
		body   string
		kind   adapters.Kind
	}{
		{name: "undecodable 2xx", status: 200, body: `{"object":"list","data":[`, kind: adapters.KindProtocol},
		{name: "data of the wrong type", status: 200, body: `{"object":"list","data":{}}`, kind: adapters.KindProtocol},
		{name: "html with 200", status: 200, body: `<html>captive portal</html>`, kind: adapters.KindProtocol},
		{name: "error body with 200", status: 200, body: string(adaptertest.ReadTestdata(t, "error_embeddings_400.json")), kind: adapters.KindBadRequest},
		{name: "ollama error with 200", status: 200, body: `{"error":"model \"nomic\" not found"}`, kind: adapters.KindServer},
		{name: "redirect is not followed", status: http.StatusTemporaryRedirect, kind: adapters.KindProtocol},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newRecorder(t, tt.status, []byte(tt.body), map[string]string{"Location": "http://elsewhere.invalid/"})
			p := mustProvider(t, Config{BaseURL: srv.URL})
			_, err := p.Embed(context.Background(), embeddingRequest(t, `{"model":"m","input":"x"}`))
			if e := adaptertest.AsError(t, err, tt.kind); e.Status != 0 && e.Status != tt.status {
				t.Errorf("status = %d, want %d", e.Status, tt.status)
			}
		})
	}
	t.Run("empty data without an error is an answer", func(t *testing.T) {
		_, srv := newRecorder(t, 200, []byte(`{"object":"list","data":[],"model":"m"}`), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL})
		resp, err := p.Embed(context.Background(), embeddingRequest(t, `{"model":"m","input":"x"}`))
		if err != nil || len(resp.Data) != 0 || resp.Model != "m" {
			t.Fatalf("resp = %+v, err = %v", resp, err)
		}
	})
}

func TestEmbedStatusKinds(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       []byte
		headers    map[string]string
		kind       adapters.Kind
		code       string
		msg        string
		retryAfter time.Duration
	}{
		{name: "400 invalid input", status: 400, body: adaptertest.ReadTestdata(t, "error_embeddings_400.json"),
			kind: adapters.KindBadRequest, code: "invalid_request_error", msg: "'$.input' is invalid"},
		{name: "400 dimensions unsupported", status: 400, body: adaptertest.ReadTestdata(t, "error_embeddings_dimensions.json"),
			kind: adapters.KindBadRequest, code: "invalid_request_error", msg: "does not support specifying dimensions"},
		{name: "400 input too long, known by its message", status: 400, body: adaptertest.ReadTestdata(t, "error_embeddings_context_length.json"),
			kind: adapters.KindContextLength, code: "invalid_request_error", msg: "maximum context length is 8192"},
		{name: "401", status: 401, body: adaptertest.ReadTestdata(t, "error_401.json"), kind: adapters.KindAuth, code: "invalid_api_key"},
		{name: "404", status: 404, body: adaptertest.ReadTestdata(t, "error_404.json"), kind: adapters.KindNotFound, code: "model_not_found"},
		{name: "429 retry-after-ms", status: 429, body: adaptertest.ReadTestdata(t, "error_embeddings_429.json"),
			headers: map[string]string{"Retry-After": "1", "Retry-After-Ms": "20"}, kind: adapters.KindRateLimited,
			code: "rate_limit_exceeded", msg: "requests per min", retryAfter: 20 * time.Millisecond},
		{name: "429 retry-after seconds", status: 429, body: adaptertest.ReadTestdata(t, "error_429.json"),
			headers: map[string]string{"Retry-After": "3"}, kind: adapters.KindRateLimited, code: "rate_limit_exceeded", retryAfter: 3 * time.Second},
		{name: "429 quota", status: 429, body: adaptertest.ReadTestdata(t, "error_429_quota.json"), kind: adapters.KindRateLimited, code: "insufficient_quota"},
		{name: "500", status: 500, body: adaptertest.ReadTestdata(t, "error_500.json"), kind: adapters.KindServer, code: "server_error", msg: "Sorry about that"},
		{name: "502 html", status: 502, body: adaptertest.ReadTestdata(t, "error_502.html"), kind: adapters.KindServer, msg: "502 Bad Gateway"},
		{name: "503", status: 503, kind: adapters.KindOverloaded, msg: "Service Unavailable"},
		{name: "401 echoing the key", status: 401,
			body: []byte(`{"error":{"message":"Incorrect API key provided: sk-secret-123456.","type":"invalid_request_error","code":"invalid_api_key"}}`),
			kind: adapters.KindAuth, code: "invalid_api_key", msg: "[redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newRecorder(t, tt.status, tt.body, tt.headers)
			p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: "sk-secret-123456"})
			_, err := p.Embed(context.Background(), embeddingRequest(t, `{"model":"text-embedding-3-small","input":"x"}`))
			e := adaptertest.AsError(t, err, tt.kind)
			if e.Status != tt.status || e.Provider != "test" || e.Code != tt.code || e.RetryAfter != tt.retryAfter {
				t.Errorf("error = %+v, want status %d code %q retry after %v", e, tt.status, tt.code, tt.retryAfter)
			}
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("message = %q, want containing %q", e.Message, tt.msg)
			}
			if strings.Contains(e.Error(), "sk-secret-123456") {
				t.Errorf("error leaks the API key: %v", e)
			}
		})
	}
}

func TestEmbedLocalFailures(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()

	t.Run("empty input is not sent", func(t *testing.T) {
		p := mustProvider(t, Config{BaseURL: srv.URL})
		for _, req := range []*adapters.EmbeddingRequest{
			{Model: "m"},
			{Model: "m", Input: adapters.TextInput()},
			{Model: "m", Input: adapters.EmbeddingInput{Tokens: [][]int{}}},
		} {
			_, err := p.Embed(context.Background(), req)
			adaptertest.AsError(t, err, adapters.KindBadRequest)
		}
	})
	t.Run("azure needs a deployment", func(t *testing.T) {
		p := mustProvider(t, Config{BaseURL: srv.URL, APIVersion: "2024-10-21"})
		_, err := p.Embed(context.Background(), &adapters.EmbeddingRequest{Input: adapters.TextInput("x")})
		if e := adaptertest.AsError(t, err, adapters.KindBadRequest); !strings.Contains(e.Message, "deployment") {
			t.Errorf("message = %q", e.Message)
		}
	})
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}

	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := mustProvider(t, Config{BaseURL: "http://" + addr})
		_, err = p.Embed(context.Background(), embeddingRequest(t, `{"model":"m","input":"x"}`))
		adaptertest.AsError(t, err, adapters.KindConnection)
	})

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	for _, tt := range []struct {
		name string
		kind adapters.Kind
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{name: "deadline", kind: adapters.KindTimeout, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}},
		{name: "cancel", kind: adapters.KindCanceled, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := mustProvider(t, Config{BaseURL: slow.URL})
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err := p.Embed(ctx, embeddingRequest(t, `{"model":"m","input":"x"}`))
			adaptertest.AsError(t, err, tt.kind)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("returned after %v", d)
			}
		})
	}
}

// TestExchangeBound checks the response bound with a small limit; the real ones are too
// large to send in a unit test.
func TestExchangeBound(t *testing.T) {
	body := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"` + strings.Repeat("A", 2<<20) + `"}]}`
	_, srv := newRecorder(t, 200, []byte(body), nil)
	p := mustProvider(t, Config{BaseURL: srv.URL})
	out := new(adapters.EmbeddingResponse)
	_, err := p.Exchange(context.Background(), p.embed.url, embeddingRequest(t, `{"model":"m","input":"x"}`), out, 1<<20, "embeddings")
	if e := adaptertest.AsError(t, err, adapters.KindProtocol); e.Message != "response body exceeds 1 MiB" {
		t.Errorf("message = %q", e.Message)
	}
}

// benchEmbeddingsBody is a one-input answer of dims dimensions as OpenAI sends it:
// pretty-printed, one number per line, or one base64 string.
func benchEmbeddingsBody(dims int, b64 bool) []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"object\": \"list\",\n  \"data\": [\n    {\n      \"object\": \"embedding\",\n      \"index\": 0,\n      \"embedding\": ")
	vec := make([]byte, 4*dims)
	for i := 0; i < dims; i++ {
		v := float32(math.Sin(float64(i)) / 40)
		binary.LittleEndian.PutUint32(vec[4*i:], math.Float32bits(v))
	}
	if b64 {
		b.WriteString(`"` + base64.StdEncoding.EncodeToString(vec) + `"`)
	} else {
		b.WriteString("[\n")
		for i := 0; i < dims; i++ {
			v := math.Float32frombits(binary.LittleEndian.Uint32(vec[4*i:]))
			n, _ := json.Marshal(v)
			b.WriteString("        ")
			b.Write(n)
			if i < dims-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("      ]")
	}
	b.WriteString("\n    }\n  ],\n  \"model\": \"text-embedding-3-small\",\n  \"usage\": {\n    \"prompt_tokens\": 8,\n    \"total_tokens\": 8\n  }\n}\n")
	return b.Bytes()
}

// BenchmarkEmbed is a one-input, 1536-dimension round trip over loopback HTTP, with the
// vector as a float array and as base64.
func BenchmarkEmbed(b *testing.B) {
	for _, format := range []string{"float", "base64"} {
		b.Run(format, func(b *testing.B) {
			reply := benchEmbeddingsBody(1536, format == "base64")
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.Write(reply)
			}))
			defer srv.Close()
			p, err := New(Config{Name: "bench", BaseURL: srv.URL, APIKey: "sk-bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			req := embeddingRequest(b, `{"model":"text-embedding-3-small","input":"The food was delicious and the waiter was friendly.","encoding_format":"`+format+`"}`)
			b.SetBytes(int64(len(reply)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := p.Embed(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				if len(resp.Data) != 1 {
					b.Fatalf("data = %d", len(resp.Data))
				}
			}
		})
	}
}
