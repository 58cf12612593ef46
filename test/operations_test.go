package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/app"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/config"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/telemetry"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// bundleServer serves one unsigned bundle at /bundle.tar.gz on loopback.
func bundleServer(t *testing.T, revision string) string {
	t.Helper()
	b, err := policy.Build(context.Background(), []string{bundle(t, revision, twoProviders(nil))}, revision)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := policy.WriteBundle(&buf, b); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/bundle.tar.gz"
}

// The counters alerts take increase() of exist at 0 from startup: a counter born at its
// first event would hide a short burst that then recovers.
func TestAlertCountersStartAtZero(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf(`ledger: {store: redis, redis: {addr: %s}}
decision_log: {file: %s}
bundle: {url: %s, persist_dir: %s, polling: {min_delay: 1h, max_delay: 2h}}
`, closedAddr(t), filepath.Join(dir, "decisions.log"), bundleServer(t, "zero-1"), filepath.Join(dir, "bundles"))
	g := start(t, yaml, nil)
	metrics := g.text(t, "/metrics")
	want := []string{
		`gavel_ledger_unavailable_total{op="reserve"} 0`,
		`gavel_ledger_unavailable_total{op="commit"} 0`,
		`gavel_ledger_unavailable_total{op="snapshot"} 0`,
		`gavel_decision_log_dropped_total{sink="buffer"} 0`,
		`gavel_decision_log_dropped_total{sink="file"} 0`,
		`gavel_decision_log_events_total{outcome="error",sink="file"} 0`,
		`gavel_bundle_download_errors_total{reason="verify"} 0`,
		`gavel_bundle_download_errors_total{reason="network"} 0`,
		`gavel_bundle_download_errors_total{reason="http"} 0`,
		`gavel_bundle_download_errors_total{reason="compile"} 0`,
		`gavel_bundle_activations_total{outcome="error"} 0`,
		`gavel_bundle_activations_total{outcome="ok"} 1`, // the first download
		`gavel_faults_injected_total{kind="error"} 0`,
		`gavel_faults_injected_total{kind="latency"} 0`,
		`gavel_faults_injected_total{kind="cut_stream"} 0`,
		`gavel_faults_injected_total{kind="timeout"} 0`,
		`gavel_stream_continuations_total{outcome="ok"} 0`,
		`gavel_stream_continuations_total{outcome="failed"} 0`,
		`gavel_stream_continuations_total{outcome="unsupported"} 0`,
	}
	for _, w := range want {
		if !strings.Contains(metrics, w+"\n") {
			name, _, _ := strings.Cut(w, "{")
			t.Errorf("missing %s; have:\n%s", w, grepLines(metrics, name))
		}
	}
}

// An outage that fails every request logs one "request failed" line per cause per
// interval with the count of the others, not one line per request; the lines still
// account for every failure (the last count is written at shutdown).
func TestOutageDoesNotFloodTheLog(t *testing.T) {
	yaml, key, _, _ := budgetSetup(t, 1_000_000, 0, "ledger: {store: redis, failure_mode: closed, redis: {addr: "+closedAddr(t)+"}}\n")
	logs := &logBuffer{}
	g := startLogged(t, yaml(), nil, true, slog.New(slog.NewJSONHandler(logs, nil)))
	const requests, workers = 3200, 16
	body := `{"model":"solo","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	var failed atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range requests / workers {
				req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(began)
	if failed.Load() != requests {
		t.Fatalf("%d of %d requests failed with 503", failed.Load(), requests)
	}
	g.stop() // shutdown writes the count still held back
	lines, occurrences, redisLines := 0, 0, 0
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if m["msg"] == "redis client" { // go-redis's own messages (failed dials), limited too
			redisLines++
		}
		if m["msg"] != "request failed" {
			continue
		}
		if m["cause"] != "ledger_unavailable" {
			t.Errorf("cause %v: %s", m["cause"], l)
		}
		lines++
		if n, ok := m["suppressed"].(float64); ok {
			occurrences += int(n)
		} else {
			occurrences++
		}
	}
	// One line at the start, one per 10 s interval the outage lasted, one at shutdown.
	if limit := 2 + int(took/telemetry.DefaultLogInterval); lines > limit {
		t.Errorf("%d \"request failed\" lines for %d failures in %s, want at most %d", lines, requests, took, limit)
	}
	if redisLines > 10 {
		t.Errorf("%d lines from the redis client for %d failures", redisLines, requests)
	}
	if occurrences != requests {
		t.Errorf("the lines account for %d failures, want %d", occurrences, requests)
	}
}

// scrape GETs url with an optional bearer token and returns the status and body.
func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /metrics (per-team spend, remaining budgets) can require a token and can move to an
// address of its own; left alone it stays on the main listener, open.
func TestMetricsAccess(t *testing.T) {
	const token = "metrics-token-4f1c9a"
	type want struct {
		path   string // "main" or "metrics" listener
		token  string
		status int
	}
	tests := []struct {
		name  string
		yaml  string
		wants []want
	}{
		{name: "default: main listener, open", yaml: "", wants: []want{{"main", "", 200}}},
		{name: "token on the main listener", yaml: "metrics: {token: ${METRICS_TOKEN}}\n", wants: []want{
			{"main", "", 401}, {"main", "wrong", 401}, {"main", token + "x", 401}, {"main", token, 200}}},
		{name: "own listener", yaml: "metrics: {listen: 127.0.0.1:0}\n", wants: []want{
			{"main", "", 404}, {"main", token, 404}, {"metrics", "", 200}}},
		{name: "own listener and token", yaml: "metrics: {listen: 127.0.0.1:0, token: ${METRICS_TOKEN}}\n", wants: []want{
			{"main", token, 404}, {"metrics", "", 401}, {"metrics", token, 200}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			g := startLogged(t, tc.yaml, map[string]string{"METRICS_TOKEN": token}, true, slog.New(slog.NewJSONHandler(logs, nil)))
			for _, w := range tc.wants {
				base := g.URL
				if w.path == "metrics" {
					base = "http://" + g.gw.MetricsAddr()
				}
				status, body := scrape(t, base+"/metrics", w.token)
				if status != w.status {
					t.Errorf("%s listener, token %q: %d, want %d", w.path, w.token, status, w.status)
				}
				switch status {
				case 200:
					if !strings.Contains(body, "gavel_requests_total") && !strings.Contains(body, "gavel_bundle_info") {
						t.Errorf("%s listener: not gavel's metrics: %.200s", w.path, body)
					}
				case 401, 404:
					var e struct {
						Error struct{ Code, Message string }
					}
					if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
						t.Errorf("%s listener %d: not OpenAI's error shape: %q", w.path, status, body)
					}
				}
			}
			if strings.Contains(logs.String(), token) {
				t.Error("the metrics token reached the log")
			}
		})
	}
}

// On a non-loopback address with keys, an open /metrics keeps working but is warned about.
func TestOpenMetricsOnSharedNetworkWarns(t *testing.T) {
	_, hash, _ := auth.NewKey()
	dir := bundle(t, "warn-1", twoProviders(map[string]any{hash: map[string]any{"key_id": "k"}}))
	tests := []struct {
		name, metrics string
		warns         bool
	}{
		{"open", "", true},
		{"token", "metrics: {token: t0k}\n", false},
		{"loopback listener", "metrics: {listen: 127.0.0.1:0}\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("listen: 0.0.0.0:0\npolicy: "+dir+"\nledger: {store: memory}\n"+tc.metrics), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			g, err := app.New(context.Background(), cfg, func(string) string { return "" }, slog.New(slog.NewJSONHandler(logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			g.Close()
			if got := strings.Contains(logs.String(), "/metrics is open"); got != tc.warns {
				t.Errorf("warned = %v, want %v\n%s", got, tc.warns, logs.String())
			}
		})
	}
}
