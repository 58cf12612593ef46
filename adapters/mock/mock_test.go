package mock

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

func request(model, text string) *adapters.ChatRequest {
	return &adapters.ChatRequest{
		Model: model,
		Messages: []adapters.Message{
			{Role: "system", Content: adapters.TextContent("be brief")},
			{Role: "user", Content: adapters.TextContent(text)},
		},
	}
}

func withTools(req *adapters.ChatRequest, choice string) *adapters.ChatRequest {
	req.Tools = []adapters.Tool{
		{Type: "function", Function: adapters.FunctionDef{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object"}`)}},
		{Type: "function", Function: adapters.FunctionDef{Name: "get_time"}},
	}
	if choice != "" {
		req.ToolChoice = json.RawMessage(choice)
	}
	return req
}

func mustNew(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func asError(t *testing.T, err error, kind adapters.Kind) *adapters.Error {
	t.Helper()
	e := adapters.AsError(err)
	if e == nil {
		t.Fatalf("error %v (%T) is not an *adapters.Error", err, err)
	}
	if e.Kind != kind {
		t.Fatalf("kind = %v, want %v (%v)", e.Kind, kind, e)
	}
	return e
}

func collect(t *testing.T, s adapters.ChunkStream) []*adapters.ChatChunk {
	t.Helper()
	var out []*adapters.ChatChunk
	for {
		c, err := s.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		out = append(out, c)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "zero is valid", cfg: Config{}},
		{name: "full", cfg: Config{Latency: time.Millisecond, ErrorRate: 0.5, ErrorStatus: 503, Chunks: 10000, ChunkInterval: time.Millisecond, Reply: "hi", Seed: 3}},
		{name: "rate 1", cfg: Config{ErrorRate: 1}},
		{name: "rate negative", cfg: Config{ErrorRate: -0.1}, wantErr: "error_rate"},
		{name: "rate above 1", cfg: Config{ErrorRate: 1.01}, wantErr: "error_rate"},
		{name: "rate NaN", cfg: Config{ErrorRate: math.NaN()}, wantErr: "error_rate"},
		{name: "status 399", cfg: Config{ErrorStatus: 399}, wantErr: "error_status"},
		{name: "status 600", cfg: Config{ErrorStatus: 600}, wantErr: "error_status"},
		{name: "status 400", cfg: Config{ErrorStatus: 400}},
		{name: "status 599", cfg: Config{ErrorStatus: 599}},
		{name: "chunks negative", cfg: Config{Chunks: -1}, wantErr: "chunks"},
		{name: "chunks too many", cfg: Config{Chunks: MaxChunks + 1}, wantErr: "chunks"},
		{name: "latency negative", cfg: Config{Latency: -time.Second}, wantErr: "latency"},
		{name: "interval negative", cfg: Config{ChunkInterval: -1}, wantErr: "chunk_interval"},
		{name: "all reported", cfg: Config{Name: "m1", ErrorRate: 2, Chunks: -1}, wantErr: `error_rate must be between 0 and 1, got 2
chunks`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, newErr := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate = %v, New = %v", err, newErr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want containing %q", err, tt.wantErr)
			}
			if newErr == nil || !strings.HasPrefix(newErr.Error(), "mock provider ") {
				t.Fatalf("New = %v, want the validation error with the provider name", newErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	p := mustNew(t, Config{})
	if p.Name() != DefaultName || p.cfg.Chunks != DefaultChunks || p.cfg.ErrorStatus != DefaultErrorStatus {
		t.Errorf("defaults = %+v", p.cfg)
	}
}

func TestChatDeterminism(t *testing.T) {
	p := mustNew(t, Config{Name: "m"})
	q := mustNew(t, Config{Name: "other", Seed: 99})
	a, err := p.Chat(context.Background(), request("gpt-x", "hello there"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Chat(context.Background(), request("gpt-x", "hello there"))
	c, _ := q.Chat(context.Background(), request("gpt-x", "hello there"))
	d, _ := p.Chat(context.Background(), request("gpt-x", "something else"))
	text := func(r *adapters.ChatResponse) string { return r.Choices[0].Message.Content.String() }
	if text(a) != text(b) || text(a) != text(c) {
		t.Errorf("same request, different replies: %q %q %q", text(a), text(b), text(c))
	}
	if text(a) == text(d) {
		t.Errorf("different prompts, same reply %q", text(a))
	}
	if !strings.HasPrefix(text(a), "mock reply from gpt-x: ") {
		t.Errorf("reply = %q", text(a))
	}
	if a.ID == b.ID || !strings.HasPrefix(a.ID, "chatcmpl-mock-") {
		t.Errorf("ids %q %q", a.ID, b.ID)
	}
	if a.Object != adapters.ObjectChatCompletion || a.Model != "gpt-x" || a.Created < time.Now().Add(-time.Minute).Unix() {
		t.Errorf("envelope = %+v", a)
	}
	ch := a.Choices[0]
	if ch.FinishReason != adapters.FinishStop || ch.Message.Role != "assistant" {
		t.Errorf("choice = %+v", ch)
	}
	u := a.Usage
	wantPrompt := (len("be brief") + len("hello there")) / 4
	if u.PromptTokens != wantPrompt || u.CompletionTokens != len(text(a))/4 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage = %+v, want prompt %d", u, wantPrompt)
	}
	if _, err := json.Marshal(a); err != nil {
		t.Errorf("response does not marshal: %v", err)
	}
}

func TestChatReplies(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		req      *adapters.ChatRequest
		text     string // exact reply, when set
		tool     string // function called, when set
		finish   string
		minUsage int
	}{
		{name: "configured reply", cfg: Config{Reply: "pong"}, req: request("m", "ping"), text: "pong", finish: "stop"},
		{name: "max tokens truncates", cfg: Config{Reply: strings.Repeat("abcd", 10)}, text: "abcdabcd", finish: "length",
			req: func() *adapters.ChatRequest { r := request("m", "x"); n := 2; r.MaxTokens = &n; return r }()},
		{name: "max completion tokens wins", cfg: Config{Reply: strings.Repeat("abcd", 10)}, text: "abcd", finish: "length",
			req: func() *adapters.ChatRequest {
				r := request("m", "x")
				a, b := 5, 1
				r.MaxTokens, r.MaxCompletionTokens = &a, &b
				return r
			}()},
		{name: "truncation keeps runes whole", cfg: Config{Reply: "ééééé"}, text: "éé", finish: "length",
			req: func() *adapters.ChatRequest { r := request("m", "x"); n := 1; r.MaxTokens = &n; return r }()},
		{name: "required calls first tool", req: withTools(request("m", "weather?"), `"required"`), tool: "get_weather", finish: "tool_calls"},
		{name: "named function", req: withTools(request("m", "time?"), `{"type":"function","function":{"name":"get_time"}}`), tool: "get_time", finish: "tool_calls"},
		{name: "auto replies with text", req: withTools(request("m", "hi"), `"auto"`), finish: "stop"},
		{name: "no tool choice replies with text", req: withTools(request("m", "hi"), ""), finish: "stop"},
		{name: "required without tools replies with text", req: func() *adapters.ChatRequest {
			r := request("m", "hi")
			r.ToolChoice = json.RawMessage(`"required"`)
			return r
		}(), finish: "stop"},
		{name: "parts content", finish: "stop", req: &adapters.ChatRequest{Model: "m", Messages: []adapters.Message{
			{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{{Type: "text", Text: "look"}, {Type: "image_url", ImageURL: &adapters.ImageURL{URL: "data:,"}}}}}}}},
		{name: "no messages", req: &adapters.ChatRequest{Model: "m"}, finish: "stop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, tt.cfg)
			resp, err := p.Chat(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			ch := resp.Choices[0]
			if ch.FinishReason != tt.finish {
				t.Errorf("finish = %q, want %q", ch.FinishReason, tt.finish)
			}
			if tt.tool != "" {
				if ch.Message.Content != nil || len(ch.Message.ToolCalls) != 1 {
					t.Fatalf("message = %+v", ch.Message)
				}
				tc := ch.Message.ToolCalls[0]
				if tc.Function.Name != tt.tool || tc.Function.Arguments != "{}" || tc.Type != "function" || tc.ID == "" || tc.Index != nil {
					t.Errorf("tool call = %+v", tc)
				}
			} else {
				if len(ch.Message.ToolCalls) != 0 || ch.Message.Content == nil {
					t.Fatalf("message = %+v", ch.Message)
				}
				if tt.text != "" && ch.Message.Content.String() != tt.text {
					t.Errorf("text = %q, want %q", ch.Message.Content.String(), tt.text)
				}
			}
			if u := resp.Usage; u.PromptTokens < 1 || u.CompletionTokens < 1 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage = %+v", u)
			}
		})
	}
}

func TestErrorRate(t *testing.T) {
	tests := []struct {
		rate     float64
		seed     uint64
		min, max int
	}{
		{rate: 0, min: 0, max: 0},
		{rate: 1, min: 1000, max: 1000},
		{rate: 0.25, seed: 1, min: 200, max: 300},
		{rate: 0.25, seed: 2, min: 200, max: 300},
		{rate: 0.01, seed: 3, min: 1, max: 30},
		{rate: 0.9, seed: 4, min: 850, max: 950},
	}
	for _, tt := range tests {
		failures := func(stream bool) []int {
			p := mustNew(t, Config{ErrorRate: tt.rate, Seed: tt.seed, ErrorStatus: 503})
			var failed []int
			for i := 0; i < 1000; i++ {
				var err error
				if stream {
					var s adapters.ChunkStream
					if s, err = p.ChatStream(context.Background(), request("m", "x")); err == nil {
						s.Close()
					}
				} else {
					_, err = p.Chat(context.Background(), request("m", "x"))
				}
				if err != nil {
					e := asError(t, err, adapters.KindOverloaded)
					if e.Status != 503 || e.Message != "mock injected failure" || e.Provider != "mock" {
						t.Fatalf("error = %+v", e)
					}
					failed = append(failed, i)
				}
			}
			return failed
		}
		a, b, c := failures(false), failures(false), failures(true)
		if len(a) < tt.min || len(a) > tt.max {
			t.Errorf("rate %v seed %d: %d failures of 1000, want %d..%d", tt.rate, tt.seed, len(a), tt.min, tt.max)
		}
		if !equalInts(a, b) || !equalInts(a, c) {
			t.Errorf("rate %v seed %d: failures differ between identical runs", tt.rate, tt.seed)
		}
	}
	// Different seeds fail different requests.
	p1 := mustNew(t, Config{ErrorRate: 0.5, Seed: 1})
	p2 := mustNew(t, Config{ErrorRate: 0.5, Seed: 2})
	same := 0
	for i := 0; i < 200; i++ {
		_, e1 := p1.Chat(context.Background(), request("m", "x"))
		_, e2 := p2.Chat(context.Background(), request("m", "x"))
		if (e1 == nil) == (e2 == nil) {
			same++
		}
	}
	if same > 160 {
		t.Errorf("seeds 1 and 2 agree on %d of 200 requests", same)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLatencyHonoursContext(t *testing.T) {
	p := mustNew(t, Config{Latency: 10 * time.Second})
	tests := []struct {
		name string
		kind adapters.Kind
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{name: "cancel", kind: adapters.KindCanceled, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			return ctx, cancel
		}},
		{name: "deadline", kind: adapters.KindTimeout, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				ctx, cancel := tt.ctx()
				start := time.Now()
				var err error
				if stream {
					_, err = p.ChatStream(ctx, request("m", "x"))
				} else {
					_, err = p.Chat(ctx, request("m", "x"))
				}
				cancel()
				asError(t, err, tt.kind)
				if d := time.Since(start); d > time.Second {
					t.Errorf("returned after %v", d)
				}
			}
		})
	}
	t.Run("latency is applied", func(t *testing.T) {
		p := mustNew(t, Config{Latency: 30 * time.Millisecond})
		start := time.Now()
		if _, err := p.Chat(context.Background(), request("m", "x")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("answered after %v", d)
		}
	})
	t.Run("already cancelled without latency", func(t *testing.T) {
		p := mustNew(t, Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p.Chat(ctx, request("m", "x"))
		asError(t, err, adapters.KindCanceled)
	})
}
