package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/app"
	"github.com/gavel-gw/gavel/engine/config"
	"github.com/gavel-gw/gavel/test/internal/policybundle"
)

// gw is a gateway running on a loopback port for one test.
type gw struct {
	URL  string
	gw   *app.Gateway
	stop func()
}

// start runs gavel with the given gavel.yaml text and environment until the test ends. A
// file ledger gets a fresh path in the test's temp dir.
func start(t *testing.T, yaml string, env map[string]string) *gw {
	t.Helper()
	return startWith(t, yaml, env, true)
}

func startWith(t *testing.T, yaml string, env map[string]string, freshLedger bool, opts ...app.Option) *gw {
	t.Helper()
	return startLogged(t, yaml, env, freshLedger, nil, opts...)
}

// startLogged is startWith with gavel's logger (nil discards), for tests that read the log.
func startLogged(t *testing.T, yaml string, env map[string]string, freshLedger bool, log *slog.Logger, opts ...app.Option) *gw {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(yaml), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = l.Addr().String()
	cfg.ShutdownTimeout = 2 * time.Second
	if cfg.Ledger.Store == "file" && freshLedger {
		cfg.Ledger.Path = filepath.Join(t.TempDir(), "ledger.db")
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, err := app.New(ctx, cfg, func(k string) string { return env[k] }, log, opts...)
	if err != nil {
		cancel()
		l.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Serve(ctx, l)
	}()
	// Shutdown takes up to shutdown_timeout plus app.DrainMargin, then up to
	// app.SettleWait for charges still being counted.
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(cfg.ShutdownTimeout + app.DrainMargin + app.SettleWait + time.Second):
			t.Error("gateway did not shut down")
		}
	}
	t.Cleanup(stop)
	return &gw{URL: "http://" + l.Addr().String(), gw: g, stop: stop}
}

// client is the official OpenAI SDK pointed at gavel, with SDK retries off so every
// retry seen is gavel's.
func (g *gw) client(key string, opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(g.URL + "/v1"), option.WithAPIKey(key), option.WithMaxRetries(0),
		option.WithRequestTimeout(20 * time.Second),
	}, opts...)...)
	return &c
}

// post sends a raw request, for the malformed input no SDK would produce.
func (g *gw) post(t *testing.T, path, body string, header map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func (g *gw) get(t *testing.T, path string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
	return do(t, req)
}

// text GETs a plain-text endpoint such as /metrics.
func (g *gw) text(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(g.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func do(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("bad JSON %q: %v", raw, err)
		}
	}
	return resp, m
}

// bundle writes a policy bundle directory: the default policies with test data, so tests
// route between fake providers "a" and "b".
func bundle(t *testing.T, revision string, data map[string]any) string {
	return policybundle.Dir(t, revision, data)
}

func entry(provider, model string, fallbacks ...string) map[string]any {
	if fallbacks == nil {
		fallbacks = []string{}
	}
	return map[string]any{"provider": provider, "model": model, "tier": "standard", "quality": 50,
		"context_window": 100000, "max_output_tokens": 4096, "capabilities": map[string]bool{"tools": true},
		"price": map[string]int{"input_musd_per_mtok": 1000000, "output_musd_per_mtok": 2000000}, "fallbacks": fallbacks}
}

// twoProviders is bundle data routing alias "chat" to a/m1 then b/m1.
func twoProviders(keys map[string]any) map[string]any {
	if keys == nil {
		keys = map[string]any{}
	}
	return map[string]any{
		"routing": map[string]any{"honour_client_hints": true, "passthrough_uncataloged": false, "max_targets": 4},
		"aliases": map[string]any{
			"chat": map[string]any{"strategy": "ordered", "candidates": []string{"a/m1", "b/m1"}},
			"solo": map[string]any{"strategy": "ordered", "candidates": []string{"a/m1"}},
		},
		"catalog": map[string]any{"a/m1": entry("a", "m1", "b/m1"), "b/m1": entry("b", "m1")},
		"keys":    keys,
	}
}

// grepLines returns the lines of s that contain sub (for failure messages about metrics).
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// logBuffer collects gavel's JSON log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns every log line as written.
func (l *logBuffer) lines() []string {
	return strings.Split(strings.TrimSpace(l.String()), "\n")
}

// records returns the decoded log records whose msg is msg.
func (l *logBuffer) records(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range l.lines() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// eventually waits up to 10 s for cond, failing the test with what it waited for.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
