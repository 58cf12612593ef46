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
	b, err := policy.Build(context.Background(), []string{bundle(t, revision, twoProviders(nil))}, "")
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
	lines, occurrences := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
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
	if occurrences != requests {
		t.Errorf("the lines account for %d failures, want %d", occurrences, requests)
	}
}
