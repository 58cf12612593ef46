package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/internal/slogjson"
)

// BenchmarkChatCompletionRequestLog is BenchmarkChatCompletion (json) with the request log
// line on, as `gavel serve` writes it (its JSON handler, internal/slogjson, info level), to a discarding writer.
func BenchmarkChatCompletionRequestLog(b *testing.B) {
	log := slog.New(slogjson.New(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	g, err := New(context.Background(), benchConfig(), func(string) string { return "" }, log)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	h := g.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(benchBody))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
