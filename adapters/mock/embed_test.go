package mock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

func embedReq(model string, texts ...string) *adapters.EmbeddingRequest {
	return &adapters.EmbeddingRequest{Model: model, Input: adapters.TextInput(texts...)}
}

func tokenReq(ids ...[]int) *adapters.EmbeddingRequest {
	return &adapters.EmbeddingRequest{Model: "m", Input: adapters.EmbeddingInput{Tokens: ids}}
}

func mustEmbed(t testing.TB, p *Provider, req *adapters.EmbeddingRequest) *adapters.EmbeddingResponse {
	t.Helper()
	resp, err := p.Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != req.Input.Len() {
		t.Fatalf("%d vectors for %d inputs", len(resp.Data), req.Input.Len())
	}
	return resp
}

// floats decodes a vector in either encoding to its float32 values.
func floats(t testing.TB, raw json.RawMessage) []float32 {
	t.Helper()
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b)%4 != 0 {
			t.Fatalf("base64 vector %q: %v", s, err)
		}
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out
	}
	var nums []json.Number
	if err := json.Unmarshal(raw, &nums); err != nil {
		t.Fatalf("vector %s: %v", raw, err)
	}
	out := make([]float32, len(nums))
	for i, n := range nums {
		f, err := strconv.ParseFloat(string(n), 32)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = float32(f)
	}
	return out
}

func length(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func TestEmbedDeterminism(t *testing.T) {
	p := mustNew(t, Config{Name: "m"})
	q := mustNew(t, Config{Name: "other", Seed: 99, Reply: "ignored"})
	texts := []string{"The food was delicious.", "Le repas était délicieux.", "The food was delicious.", ""}
	a := mustEmbed(t, p, embedReq("text-embedding-3-small", texts...))
	b := mustEmbed(t, p, embedReq("text-embedding-3-small", texts...))
	c := mustEmbed(t, q, embedReq("another-model", texts...))
	for i := range texts {
		if !bytes.Equal(a.Data[i].Embedding, b.Data[i].Embedding) || !bytes.Equal(a.Data[i].Embedding, c.Data[i].Embedding) {
			t.Errorf("input %d: same text, different vectors:\n%s\n%s\n%s", i, a.Data[i].Embedding, b.Data[i].Embedding, c.Data[i].Embedding)
		}
		if d := a.Data[i]; d.Index != i || d.Object != "embedding" {
			t.Errorf("data[%d] = %d %q", i, d.Index, d.Object)
		}
	}
	if !bytes.Equal(a.Data[0].Embedding, a.Data[2].Embedding) {
		t.Errorf("the same text at two positions got different vectors")
	}
	if bytes.Equal(a.Data[0].Embedding, a.Data[1].Embedding) || bytes.Equal(a.Data[0].Embedding, a.Data[3].Embedding) {
		t.Errorf("different texts got the same vector")
	}
	single := mustEmbed(t, p, embedReq("m", texts[1]))
	if !bytes.Equal(single.Data[0].Embedding, a.Data[1].Embedding) {
		t.Errorf("a text's vector depends on the batch around it")
	}
	if a.Object != "list" || a.Model != "text-embedding-3-small" || c.Model != "another-model" {
		t.Errorf("envelope = %q %q %q", a.Object, a.Model, c.Model)
	}

	// Token input: deterministic, order-sensitive, and unrelated to the text vectors.
	t1 := mustEmbed(t, p, tokenReq([]int{791, 4062}, []int{4062, 791}, []int{791, 4062}))
	t2 := mustEmbed(t, q, tokenReq([]int{791, 4062}))
	if !bytes.Equal(t1.Data[0].Embedding, t1.Data[2].Embedding) || !bytes.Equal(t1.Data[0].Embedding, t2.Data[0].Embedding) {
		t.Errorf("same token ids, different vectors")
	}
	if bytes.Equal(t1.Data[0].Embedding, t1.Data[1].Embedding) {
		t.Errorf("token order ignored")
	}

	// Pinned, so that a change to the derivation is a deliberate one: fixtures and drills
	// elsewhere may compare vectors.
	const want = `[0.49176,0.12907797,-0.35714644,-0.21882044,-0.15156361,-0.5068013,0.3491887,0.40536797]`
	if got := string(mustEmbed(t, p, embedReq("m", "hello")).Data[0].Embedding); got != want {
		t.Errorf("vector of \"hello\" = %s, want %s", got, want)
	}
}

func TestEmbedDimensions(t *testing.T) {
	tests := []struct {
		name string
		dims *int
		want int
	}{
		{name: "default", want: DefaultDimensions},
		{name: "1", dims: ptr(1), want: 1},
		{name: "3", dims: ptr(3), want: 3},
		{name: "256", dims: ptr(256), want: 256},
		{name: "1536", dims: ptr(1536), want: 1536},
		{name: "max", dims: ptr(MaxDimensions), want: MaxDimensions},
	}
	p := mustNew(t, Config{})
	longest := floats(t, mustEmbed(t, p, &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("prefix"), Dimensions: ptr(MaxDimensions)}).Data[0].Embedding)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, format := range []string{"", "float", "base64"} {
				req := &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("prefix", "other"), Dimensions: tt.dims, EncodingFormat: format}
				resp := mustEmbed(t, p, req)
				for i, d := range resp.Data {
					v := floats(t, d.Embedding)
					if len(v) != tt.want {
						t.Fatalf("%q: input %d has %d dimensions, want %d", format, i, len(v), tt.want)
					}
					for _, x := range v {
						if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
							t.Fatalf("%q: non-finite value in %v", format, v)
						}
					}
					if l := length(v); math.Abs(l-1) > 1e-5 {
						t.Errorf("%q: input %d has length %v", format, i, l)
					}
				}
				// A shorter vector is the longer one's prefix, renormalised.
				v := floats(t, resp.Data[0].Embedding)
				prefix := longest[:tt.want]
				scale := length(prefix)
				for j := range v {
					if diff := math.Abs(float64(v[j]) - float64(prefix[j])/scale); diff > 1e-6 {
						t.Fatalf("%q: value %d = %v, want %v", format, j, v[j], float64(prefix[j])/scale)
					}
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestEmbedBase64RoundTrip(t *testing.T) {
	p := mustNew(t, Config{})
	texts := []string{"alpha", "beta", strings.Repeat("long input ", 100), "ünïcödé"}
	for _, dims := range []int{1, 2, 3, 8, 1536} {
		fl := mustEmbed(t, p, &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput(texts...), Dimensions: ptr(dims), EncodingFormat: "float"})
		b64 := mustEmbed(t, p, &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput(texts...), Dimensions: ptr(dims), EncodingFormat: "base64"})
		for i := range texts {
			raw := b64.Data[i].Embedding
			if raw[0] != '"' {
				t.Fatalf("base64 vector is not a string: %.40s", raw)
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatal(err)
			}
			if n := base64.StdEncoding.DecodedLen(len(s)); n < 4*dims || n > 4*dims+2 {
				t.Fatalf("dims %d: %d base64 characters", dims, len(s))
			}
			a, b := floats(t, fl.Data[i].Embedding), floats(t, raw)
			if len(a) != dims || len(b) != dims {
				t.Fatalf("dims %d: lengths %d and %d", dims, len(a), len(b))
			}
			for j := range a {
				if a[j] != b[j] {
					t.Fatalf("dims %d input %d value %d: float %v, base64 %v", dims, i, j, a[j], b[j])
				}
			}
		}
		if fl.Usage.PromptTokens != b64.Usage.PromptTokens {
			t.Errorf("usage depends on the encoding")
		}
	}
}

func TestEmbedResponseMarshals(t *testing.T) {
	p := mustNew(t, Config{})
	for _, format := range []string{"float", "base64"} {
		resp := mustEmbed(t, p, &adapters.EmbeddingRequest{Model: "text-embedding-3-small", Input: adapters.TextInput("a", "b"), EncodingFormat: format})
		b, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		var back adapters.EmbeddingResponse
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v\n%s", format, err, b)
		}
		if back.Object != "list" || len(back.Data) != 2 || back.Usage == nil || back.Usage.TotalTokens != 2 ||
			!bytes.Equal(back.Data[1].Embedding, resp.Data[1].Embedding) {
			t.Errorf("%s: round trip = %s", format, b)
		}
	}
	// Vectors share a buffer; appending to one must not reach into the next.
	resp := mustEmbed(t, p, embedReq("m", "a", "b"))
	keep := string(resp.Data[1].Embedding)
	_ = append(resp.Data[0].Embedding, "garbage"...)
	if string(resp.Data[1].Embedding) != keep {
		t.Errorf("appending to vector 0 changed vector 1")
	}
}

func TestEmbedUsage(t *testing.T) {
	tests := []struct {
		name string
		req  *adapters.EmbeddingRequest
		want int
	}{
		{name: "12 bytes", req: embedReq("m", "hello world!"), want: 3},
		{name: "short text counts one", req: embedReq("m", "hi"), want: 1},
		{name: "empty text counts one", req: embedReq("m", ""), want: 1},
		{name: "per input minimum", req: embedReq("m", "abcdefgh", "x", "y"), want: 2 + 1 + 1},
		{name: "bytes, not runes", req: embedReq("m", "éééé"), want: 2},
		{name: "tokens count themselves", req: tokenReq([]int{1, 2, 3}, []int{4}), want: 4},
		{name: "empty token list counts one", req: tokenReq([]int{}), want: 1},
	}
	p := mustNew(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := mustEmbed(t, p, tt.req).Usage
			if u == nil || u.PromptTokens != tt.want || u.TotalTokens != tt.want {
				t.Errorf("usage = %+v, want %d", u, tt.want)
			}
		})
	}
}

func TestEmbedBadRequests(t *testing.T) {
	tooMany := make([]string, MaxEmbeddingInputs+1)
	tests := []struct {
		name string
		req  *adapters.EmbeddingRequest
		msg  string
	}{
		{name: "no input", req: &adapters.EmbeddingRequest{Model: "m"}, msg: "empty"},
		{name: "empty array", req: embedReq("m"), msg: "empty"},
		{name: "too many inputs", req: embedReq("m", tooMany...), msg: "at most 2048"},
		{name: "zero dimensions", req: &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("x"), Dimensions: ptr(0)}, msg: "dimensions"},
		{name: "negative dimensions", req: &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("x"), Dimensions: ptr(-3)}, msg: "dimensions"},
		{name: "too many dimensions", req: &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("x"), Dimensions: ptr(MaxDimensions + 1)}, msg: "dimensions"},
		{name: "unknown encoding", req: &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput("x"), EncodingFormat: "hex"}, msg: "encoding_format"},
	}
	p := mustNew(t, Config{Name: "m1"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Embed(context.Background(), tt.req)
			e := asError(t, err, adapters.KindBadRequest)
			if e.Status != 400 || e.Provider != "m1" || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("error = %+v, want status 400 and %q", e, tt.msg)
			}
		})
	}
	if _, err := mustNew(t, Config{}).Embed(context.Background(), embedReq("m", make([]string, MaxEmbeddingInputs)...)); err != nil {
		t.Errorf("%d inputs: %v", MaxEmbeddingInputs, err)
	}
}

func TestEmbedErrorInjection(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		kind   adapters.Kind
		status int
	}{
		{name: "default status", cfg: Config{ErrorRate: 1}, kind: adapters.KindServer, status: 500},
		{name: "503", cfg: Config{ErrorRate: 1, ErrorStatus: 503}, kind: adapters.KindOverloaded, status: 503},
		{name: "429", cfg: Config{ErrorRate: 1, ErrorStatus: 429}, kind: adapters.KindRateLimited, status: 429},
		{name: "400", cfg: Config{ErrorRate: 1, ErrorStatus: 400}, kind: adapters.KindBadRequest, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, tt.cfg)
			_, err := p.Embed(context.Background(), embedReq("m", "x"))
			e := asError(t, err, tt.kind)
			if e.Status != tt.status || e.Message != "mock injected failure" || e.Provider != "mock" {
				t.Errorf("error = %+v", e)
			}
		})
	}
	t.Run("same seed fails the same requests as chat", func(t *testing.T) {
		pattern := func(embed bool) []int {
			p := mustNew(t, Config{ErrorRate: 0.25, Seed: 7})
			var failed []int
			for i := 0; i < 400; i++ {
				var err error
				if embed {
					_, err = p.Embed(context.Background(), embedReq("m", "x"))
				} else {
					_, err = p.Chat(context.Background(), request("m", "x"))
				}
				if err != nil {
					asError(t, err, adapters.KindServer)
					failed = append(failed, i)
				}
			}
			return failed
		}
		a, b, c := pattern(true), pattern(true), pattern(false)
		if len(a) < 60 || len(a) > 140 {
			t.Errorf("%d failures of 400 at rate 0.25", len(a))
		}
		if !equalInts(a, b) || !equalInts(a, c) {
			t.Errorf("failure pattern differs between identical runs or from chat")
		}
	})
}

func TestEmbedHonoursContext(t *testing.T) {
	p := mustNew(t, Config{Latency: 10 * time.Second})
	tests := []struct {
		name string
		kind adapters.Kind
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{name: "cancel during latency", kind: adapters.KindCanceled, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			return ctx, cancel
		}},
		{name: "deadline during latency", kind: adapters.KindTimeout, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err := p.Embed(ctx, embedReq("m", "x"))
			asError(t, err, tt.kind)
			if d := time.Since(start); d > time.Second {
				t.Errorf("returned after %v", d)
			}
		})
	}
	t.Run("already cancelled without latency", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := mustNew(t, Config{}).Embed(ctx, embedReq("m", "x"))
		asError(t, err, adapters.KindCanceled)
	})
	t.Run("latency is applied", func(t *testing.T) {
		start := time.Now()
		mustEmbed(t, mustNew(t, Config{Latency: 30 * time.Millisecond}), embedReq("m", "x"))
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("answered after %v", d)
		}
	})
}

func BenchmarkEmbed(b *testing.B) {
	for _, bc := range []struct {
		name   string
		inputs int
		dims   int
		format string
	}{
		{name: "1x8", inputs: 1, dims: 8},
		{name: "1x1536", inputs: 1, dims: 1536},
		{name: "1x1536-base64", inputs: 1, dims: 1536, format: "base64"},
		{name: "64x256", inputs: 64, dims: 256},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := mustNew(b, Config{})
			texts := make([]string, bc.inputs)
			for i := range texts {
				texts[i] = "input number " + strconv.Itoa(i) + " for the embedding benchmark"
			}
			req := &adapters.EmbeddingRequest{Model: "m", Input: adapters.TextInput(texts...), Dimensions: ptr(bc.dims), EncodingFormat: bc.format}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Embed(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
