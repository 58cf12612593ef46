package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/config"
)

const benchBody = `{"model":"fast","messages":[{"role":"system","content":"You are a helpful assistant that answers briefly."},` +
	`{"role":"user","content":"Summarise the benefits of policy-as-code for routing LLM traffic across providers in two sentences, please."}]}`

// BenchmarkChatCompletion is gavel's own cost per request through the whole HTTP handler —
// auth, decode, features, policy decision, executor, encode, metrics, log — against the
// zero-latency mock provider, without network I/O.
func BenchmarkChatCompletion(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := "json"
		body := benchBody
		if stream {
			name = "stream"
			body = strings.Replace(body, `{"model":"fast",`, `{"model":"fast","stream":true,`, 1)
		}
		b.Run(name, func(b *testing.B) {
			cfg := config.Default()
			cfg.LogLevel = "warn"
			cfg.Ledger.Store = "memory"
			g, err := New(context.Background(), cfg, func(string) string { return "" }, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			h := g.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}
