package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// semanticBundle is cacheBundle with data.gavel.cache replaced by cache.
func semanticBundle(b *testing.B, cache map[string]any) string {
	b.Helper()
	dir := cacheBundle(b)
	path := filepath.Join(dir, "gavel", "data.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		b.Fatal(err)
	}
	data["cache"] = cache
	out, _ := json.Marshal(data)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkChatCompletionSemantic is BenchmarkChatCompletion's request at temperature 0
// with a last user turn new on every request, so that the exact lookup always misses:
//
//   - exact-miss: mode exact; every request goes upstream and is stored.
//   - semantic-miss: mode semantic at min_similarity 10000; every request also embeds its
//     turn (the in-process mock embedder: no network), scans the partition, goes upstream
//     and indexes its vector.
//   - semantic-hit: mode semantic at min_similarity 0: every request whose nearest
//     neighbour has a positive cosine (the mock's vectors are pseudo-random; hit% says how
//     many) is served by it.
//
// The difference between the first two is what a semantic lookup adds to a miss besides
// the embeddings call's network time.
func BenchmarkChatCompletionSemantic(b *testing.B) {
	embed := map[string]any{"provider": "mock", "model": "mock-embed"}
	for _, c := range []struct {
		name  string
		level map[string]any
	}{
		{"exact-miss", map[string]any{"mode": "exact", "ttl_s": 3600}},
		{"semantic-miss", map[string]any{"mode": "semantic", "ttl_s": 3600, "embed": embed, "min_similarity": 10000}},
		{"semantic-hit", map[string]any{"mode": "semantic", "ttl_s": 3600, "embed": embed, "min_similarity": 0}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := benchConfig()
			cfg.Policy = semanticBundle(b, map[string]any{"default": c.level})
			g, err := New(context.Background(), cfg, func(string) string { return "" }, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			h := g.Handler()
			post := func(i int) *httptest.ResponseRecorder {
				body := strings.Replace(benchBody, `"model":"fast",`, `"model":"fast","temperature":0,`, 1)
				body = strings.Replace(body, "two sentences, please.", fmt.Sprintf("two sentences, please (%d).", i), 1)
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
				return w
			}
			for i := range 16 { // the mock's vectors point anywhere: some stored ones to match
				post(-1 - i)
			}
			b.ReportAllocs()
			i, hits := 0, 0
			for b.Loop() {
				w := post(i)
				i++
				if w.Header().Get("X-Gavel-Cache") == "hit" {
					hits++
				}
			}
			b.ReportMetric(float64(100*hits)/float64(i), "hit%")
			if want := c.name == "semantic-hit"; (hits > i*9/10) != want {
				b.Fatalf("%d hits of %d", hits, i)
			}
		})
	}
}
