package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The -cache mode measures issue 15's cache-hit cost: each gavel binary is started once
// more with the default bundle and exact caching on for every name (writeCacheBundle), and
// loaded twice in that one process with the same request but for its temperature: 0
// (deterministic, cached: after the first, every request is a hit) and 0.2 (never cached:
// every request goes to the fake upstream). The CPU per request of each, and their ratio,
// come from the same process in the same run, so the machine's load affects both alike.

// cacheData is the data.gavel.cache the -cache runs serve with.
var cacheData = map[string]any{"default": map[string]any{"mode": "exact", "ttl_s": 3600, "streams": true}}

// writeCacheBundle writes the repository's default bundle (policies, manifest, data) to
// dir with cacheData as data.gavel.cache, for gavel serve --policy.
func writeCacheBundle(dir string) error {
	root := moduleDir()
	if root == "" {
		return fmt.Errorf("-cache needs the gavel source tree (the default bundle's files)")
	}
	rego, err := filepath.Glob(filepath.Join(root, "policies", "*.rego"))
	if err != nil || len(rego) == 0 {
		return fmt.Errorf("no policies in %s", root)
	}
	for _, f := range rego {
		if !strings.HasSuffix(f, "_test.rego") {
			if err := copyTo(f, filepath.Join(dir, filepath.Base(f))); err != nil {
				return err
			}
		}
	}
	if err := copyTo(filepath.Join(root, "bundles", ".manifest"), filepath.Join(dir, ".manifest")); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(root, "bundles", "gavel", "data.json"))
	if err != nil {
		return err
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		return err
	}
	data["cache"] = cacheData
	out, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "gavel"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "gavel", "data.json"), out, 0o644)
}

func copyTo(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cacheKeys are the -cache runs: hits and misses, JSON and (with -stream) streams, at
// -conns.
func cacheKeys(cfg config) []runKey {
	var keys []runKey
	for _, k := range runKeys(cfg) {
		if k.conns != cfg.conns {
			continue
		}
		hit, miss := k, k
		hit.cache, miss.cache = cacheHit, cacheMiss
		keys = append(keys, hit, miss)
	}
	return keys
}

// benchCache runs one gavel binary with the caching bundle through cacheKeys.
func benchCache(ctx context.Context, cfg config, bin, name, tmp, upURL string, direct map[runKey]*runStats) ([]row, error) {
	dir := filepath.Join(tmp, name+"-cache-bundle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeCacheBundle(dir); err != nil {
		return nil, err
	}
	logPath := filepath.Join(tmp, name+"-cache.log")
	g, gURL, err := startGavel(ctx, bin, upURL, cfg.cpus, logPath, nil, "--policy", dir)
	if err != nil {
		return nil, err
	}
	defer g.stop()
	progress("%s (%s, caching bundle) at %s (pid %d)", name, bin, gURL, g.pid())
	keys := cacheKeys(cfg)
	plain := map[runKey]*runStats{}
	for _, k := range keys {
		plain[k] = direct[runKey{stream: k.stream, conns: k.conns}]
	}
	rows, err := measureProcess(ctx, cfg, g, name, gURL+"/v1/chat/completions", "openai/gpt-4o-mini", plain, nil, keys, "")
	if err != nil {
		err = fmt.Errorf("%w\n--- %s output (tail) ---\n%s", err, name, tail(logPath, 8<<10))
	}
	return rows, err
}

// printCacheRatios writes, per gavel and kind of request, a hit's CPU per request over a
// miss's from the same process (issue 15: ≤ 50 %).
func printCacheRatios(w io.Writer, rows []row) {
	miss := map[string]*row{}
	for i := range rows {
		if rows[i].key.cache == cacheMiss {
			miss[strings.Replace(rows[i].name, "cache miss", "", 1)] = &rows[i]
		}
	}
	first := true
	for i := range rows {
		r := &rows[i]
		if r.key.cache != cacheHit {
			continue
		}
		m := miss[strings.Replace(r.name, "cache hit", "", 1)]
		if m == nil || r.cpuPerReq() <= 0 || m.cpuPerReq() <= 0 {
			continue
		}
		if first {
			fmt.Fprintln(w, "\n| cache | hit CPU µs/req | miss CPU µs/req | hit / miss |")
			fmt.Fprintln(w, "|---|---:|---:|---:|")
			first = false
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f %% |\n", strings.TrimSpace(strings.Replace(r.name, "cache hit", "", 1)),
			r.cpuPerReq(), m.cpuPerReq(), 100*r.cpuPerReq()/m.cpuPerReq())
	}
}
