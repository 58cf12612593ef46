package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cacheBundle writes the default bundle with exact caching on for every alias, to a
// directory for cfg.Policy.
func cacheBundle(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	src := filepath.Join("..", "..")
	rego, _ := filepath.Glob(filepath.Join(src, "policies", "*.rego"))
	for _, f := range rego {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		copyFile(b, f, filepath.Join(dir, filepath.Base(f)))
	}
	copyFile(b, filepath.Join(src, "bundles", ".manifest"), filepath.Join(dir, ".manifest"))
	raw, err := os.ReadFile(filepath.Join(src, "bundles", "gavel", "data.json"))
	if err != nil {
		b.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		b.Fatal(err)
	}
	data["cache"] = map[string]any{"default": map[string]any{"mode": "exact", "ttl_s": 3600, "coalesce": true, "streams": true}}
	out, _ := json.Marshal(data)
	os.MkdirAll(filepath.Join(dir, "gavel"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "gavel", "data.json"), out, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

func copyFile(b *testing.B, from, to string) {
	b.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkChatCompletionCacheHit is BenchmarkChatCompletion's request at temperature 0
// under a bundle that caches it: after the first, every request is a hit, through auth,
// the decision, the budget and rate-limit steps and the record, without the upstream call.
// Compare with BenchmarkChatCompletionCacheMiss and BenchmarkChatCompletion/json.
func BenchmarkChatCompletionCacheHit(b *testing.B) {
	cfg := benchConfig()
	cfg.Policy = cacheBundle(b)
	body := strings.Replace(benchBody, `"model":"fast",`, `"model":"fast","temperature":0,`, 1)
	for _, stream := range []bool{false, true} {
		name, bd := "json", body
		if stream {
			name, bd = "stream", strings.Replace(body, `"temperature":0,`, `"temperature":0,"stream":true,`, 1)
		}
		b.Run(name, func(b *testing.B) { benchHandler(b, cfg, bd, nil) })
	}
}

// BenchmarkChatCompletionCacheMiss is the same bundle with a request that is never
// cached (temperature 0.7): the decision carries no cache, and the request is the miss
// path's cost with the cache rules evaluated.
func BenchmarkChatCompletionCacheMiss(b *testing.B) {
	cfg := benchConfig()
	cfg.Policy = cacheBundle(b)
	body := strings.Replace(benchBody, `"model":"fast",`, `"model":"fast","temperature":0.7,`, 1)
	benchHandler(b, cfg, body, nil)
}
