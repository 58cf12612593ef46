package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/config"
)

// BenchmarkChatCompletionDecisionLog is BenchmarkChatCompletion/json with decision logging
// off, on with only the in-memory lookup ring (the default), and on with a file sink. The
// request path's share is the same in both "on" cases (one channel send); the file case
// adds the background goroutine's encoding and writing, which competes for the same cores.
func BenchmarkChatCompletionDecisionLog(b *testing.B) {
	off := false
	for _, mode := range []string{"off", "ring", "file"} {
		b.Run(mode, func(b *testing.B) {
			cfg := config.Default()
			cfg.LogLevel = "warn"
			cfg.Ledger.Store = "memory"
			switch mode {
			case "off":
				cfg.DecisionLog.Enabled = &off
			case "file":
				cfg.DecisionLog.File = filepath.Join(b.TempDir(), "decisions.jsonl")
			}
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
					req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(benchBody))
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
