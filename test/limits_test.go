package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// A body over max_body_bytes gets a 413 that names the limit and the setting, and the
// client receives it even while it is still sending: gavel reads the rest (within bounds)
// before answering instead of resetting the connection under it.
func TestBodyOverTheLimitGets413(t *testing.T) {
	g := start(t, "max_body_bytes: 65536\n", nil)
	// 4 MiB, far beyond what the kernel buffers: a server that answers and closes without
	// reading leaves the client writing into a reset connection.
	big := `{"model":"fast","messages":[{"role":"user","content":"` + strings.Repeat("x", 4<<20) + `"}]}`
	// A client like the Python SDK's: it writes the whole request, then reads the answer.
	// (Go's own client reads while it writes and would see the 413 anyway.)
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: gavel\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(big))
	if _, err := io.WriteString(conn, req+big); err != nil {
		t.Fatalf("the client saw %v while sending, not the 413", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the client saw %v, not the 413", err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || body.Error.Code != "request_too_large" ||
		!strings.Contains(body.Error.Message, "65536 bytes") || !strings.Contains(body.Error.Message, "max_body_bytes") {
		t.Errorf("got %d %+v", resp.StatusCode, body.Error)
	}
}

// The default limit fits a vision request with a large image (base64 in the JSON body).
func TestDefaultBodyLimitFitsALargeImage(t *testing.T) {
	g := start(t, "", nil)
	img := "data:image/png;base64," + strings.Repeat("A", 20<<20) // ~20 MB of base64
	raw, _ := json.Marshal(map[string]any{"model": "fast", "messages": []any{map[string]any{"role": "user", "content": []any{
		map[string]any{"type": "text", "text": "what is this?"},
		map[string]any{"type": "image_url", "image_url": map[string]any{"url": img}},
	}}}})
	resp, err := http.Post(g.URL+"/v1/chat/completions", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode == http.StatusRequestEntityTooLarge {
		t.Fatalf("a %d MB vision request was refused as too large", len(raw)>>20)
	}
}

// Clients configured with a base URL without /v1 reach the same API, as with other
// OpenAI-compatible servers.
func TestAPIWithoutTheV1Prefix(t *testing.T) {
	g := start(t, "", nil)
	c := openai.NewClient(option.WithBaseURL(g.URL+"/"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	out, err := c.Chat.Completions.New(context.Background(), userParams("fast", "hi"))
	if err != nil || len(out.Choices) == 0 {
		t.Fatalf("chat without /v1: %v", err)
	}
	models, err := c.Models.List(context.Background())
	if err != nil || len(models.Data) == 0 {
		t.Fatalf("models without /v1: %v", err)
	}
	m, err := c.Models.Get(context.Background(), models.Data[0].ID)
	if err != nil || m.ID != models.Data[0].ID {
		t.Fatalf("model without /v1: %v %+v", err, m)
	}
	emb, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
	if err != nil || len(emb.Data) != 1 {
		t.Fatalf("embeddings without /v1: %v", err)
	}
}

// CORS is off unless origins are configured; then a browser's preflight is answered and
// gavel's headers are exposed to the page.
func TestCORS(t *testing.T) {
	preflight := func(g *gw, origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, g.URL+"/v1/chat/completions", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	off := start(t, "", nil)
	if h := preflight(off, "https://app.example.com").Header.Get("Access-Control-Allow-Origin"); h != "" {
		t.Errorf("CORS off, but Access-Control-Allow-Origin = %q", h)
	}
	on := start(t, "cors: {allowed_origins: [https://app.example.com]}\n", nil)
	resp := preflight(on, "https://app.example.com")
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if h := preflight(on, "https://evil.example.com").Header.Get("Access-Control-Allow-Origin"); h != "" {
		t.Errorf("an origin not listed got Access-Control-Allow-Origin = %q", h)
	}
	req, _ := http.NewRequest(http.MethodPost, on.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"fast","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Content-Type", "application/json")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 || !strings.Contains(r2.Header.Get("Access-Control-Expose-Headers"), "X-Gavel-Decision-Id") {
		t.Errorf("simple request: %d %v", r2.StatusCode, r2.Header)
	}
}

// A body sent without a declared length (chunked) is held to max_body_bytes as it is read,
// and one declared within the limit is read whole: the server wraps only the bodies whose
// length it does not know in advance to be within the limit.
func TestChunkedBodyOverTheLimitGets413(t *testing.T) {
	g := start(t, "max_body_bytes: 65536\n", nil)
	for _, tc := range []struct {
		name    string
		content int
		chunked bool
		want    int
	}{
		{"chunked over the limit", 100 << 10, true, http.StatusRequestEntityTooLarge},
		{"chunked within the limit", 1 << 10, true, http.StatusOK},
		{"declared within the limit", 60 << 10, false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"model":"fast","messages":[{"role":"user","content":"` + strings.Repeat("x", tc.content) + `"}]}`
			var r io.Reader = strings.NewReader(body)
			if tc.chunked {
				r = io.MultiReader(r) // a reader of unknown length: the client sends it chunked
			}
			req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", r)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tc.chunked && req.ContentLength != 0 {
				t.Fatalf("request sent with a length (%d), not chunked", req.ContentLength)
			}
			if resp.StatusCode != tc.want {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, b)
			}
		})
	}
}
