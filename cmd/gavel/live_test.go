package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/gavel-gw/gavel/engine/app"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/config"
	"github.com/gavel-gw/gavel/engine/policy"
)

// decisionsAPI serves events (oldest first, as a log holds them) the way GET
// /v1/gavel/decisions does: newest first, pages of at most pageSize whatever the limit
// asked, a next_before cursor, since as a lower bound, and a bearer key.
type decisionsAPI struct {
	key      string
	events   []json.RawMessage
	times    []time.Time
	pageSize int

	mu    sync.Mutex
	pages []string // the query of every request
}

func (d *decisionsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.pages = append(d.pages, r.URL.RawQuery)
	d.mu.Unlock()
	if r.URL.Path != "/v1/gavel/decisions" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+d.key {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"message":"Invalid admin key.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
		return
	}
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	var since time.Time
	if v := q.Get("since"); v != "" {
		since, _ = time.Parse(time.RFC3339Nano, v)
	}
	start := len(d.events) - 1
	if b := q.Get("before"); b != "" {
		for i := range d.events {
			var ev struct {
				ID string `json:"decision_id"`
			}
			json.Unmarshal(d.events[i], &ev)
			if ev.ID == b {
				start = i - 1
			}
		}
	}
	var page []json.RawMessage
	next := ""
	for i := start; i >= 0 && len(page) < min(limit, d.pageSize); i-- {
		if d.times[i].Before(since) {
			break
		}
		page = append(page, d.events[i])
		if len(page) == min(limit, d.pageSize) && i > 0 && !d.times[i-1].Before(since) {
			var ev struct {
				ID string `json:"decision_id"`
			}
			json.Unmarshal(d.events[i], &ev)
			next = ev.ID
		}
	}
	if page == nil {
		page = []json.RawMessage{}
	}
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": page, "next_before": next})
}

// sampleEvents reads the shipped sample log, with a canary event among them (the live
// list holds those too), and gives event i the time base + i minutes.
func sampleEvents(t *testing.T, base time.Time) ([]json.RawMessage, []time.Time) {
	t.Helper()
	raw, err := os.ReadFile("../../docs/examples/decisions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var events []json.RawMessage
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		events = append(events, json.RawMessage(l))
		if len(events) == 3 {
			events = append(events, json.RawMessage(`{"decision_id":"x-canary","path":"gavel/canary","result":{"allow":false},"custom":{"kind":"canary"}}`))
		}
	}
	times := make([]time.Time, len(events))
	for i := range times {
		times[i] = base.Add(time.Duration(i) * time.Minute)
	}
	return events, times
}

// --live reads the decisions API page by page and reports exactly what --replay reports
// on the same events; --since and --limit bound what it reads; a refused key is a clear
// error without the key in it.
func TestPolicyDiffLive(t *testing.T) {
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	events, times := sampleEvents(t, base)
	api := &decisionsAPI{key: "gv-admin-secret", events: events, times: times, pageSize: 7}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	candidate := []string{"--policy", "../../policies", "--policy", "../../docs/examples/candidate", "--format", "json"}

	diff := func(t *testing.T, args ...string) (*policy.Impact, string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		err := policyDiff(append(args, candidate...), &out, &errb)
		if err != nil {
			return nil, errb.String(), err
		}
		var im policy.Impact
		if err := json.Unmarshal(out.Bytes(), &im); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		return &im, errb.String(), nil
	}
	want, _, err := diff(t, "--replay", "../../docs/examples/decisions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	got, stderr, err := diff(t, "--live", srv.URL, "--key", "gv-admin-secret")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("--live report differs from --replay on the same events:\n%s\nwant\n%s", g, w)
	}
	if !strings.Contains(stderr, "read 25 recent decisions") || len(api.pages) != 4 {
		t.Errorf("stderr %q after %d pages (%v), want 25 decisions in 4 pages of 7", stderr, len(api.pages), api.pages)
	}

	// The last 10 minutes only, and at most 5 of them.
	api.pages = nil
	t.Setenv("GAVEL_ADMIN_KEY", "gv-admin-secret")
	got, _, err = diff(t, "--live", srv.URL+"/", "--since", base.Add(15*time.Minute).Format(time.RFC3339), "--limit", "5")
	if err != nil {
		t.Fatal(err)
	}
	if got.Replayed != 5 || len(api.pages) != 1 || !strings.Contains(api.pages[0], "limit=5") || !strings.Contains(api.pages[0], "since=2026-12-07T10%3A15%3A00Z") {
		t.Errorf("replayed %d in pages %v, want 5 in one page since 10:15", got.Replayed, api.pages)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong key", []string{"--live", srv.URL, "--key", "gv-wrong-s3cret"}, "answered 401 invalid_api_key: Invalid admin key."},
		{"not gavel", []string{"--live", srv.URL + "/elsewhere", "--key", "k"}, "answered 404"},
		{"bad url", []string{"--live", "gavel:8080", "--key", "k"}, "want the gateway's http(s) base URL"},
		{"bad since", []string{"--live", srv.URL, "--since", "yesterday"}, `--since "yesterday"`},
		{"both sources", []string{"--live", srv.URL, "--replay", "x.jsonl"}, "--replay LOG or --live URL (not both)"},
		{"key without live", []string{"--replay", "../../docs/examples/decisions.jsonl", "--key", "k"}, "--key and --since go with --live"},
		{"bad limit", []string{"--live", srv.URL, "--limit", "0"}, "--limit must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := diff(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the key: %v", err)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// --live against a real gavel: requests sent with the OpenAI SDK are read back through
// the decisions API and re-decided by a candidate that moves alias "fast": exactly the
// fast requests are rerouted.
func TestPolicyDiffLiveGateway(t *testing.T) {
	admin, adminHash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(keys, []byte(fmt.Sprintf("keys:\n  - {sha256: %s, key_id: k-admin, user: ops, team: ops, admin: true}\n", adminHash)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("keys_file: "+keys+"\nledger: {store: memory}\nlog_level: error\n"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.ShutdownTimeout = l.Addr().String(), time.Second
	ctx, cancel := context.WithCancel(context.Background())
	g, err := app.New(ctx, cfg, func(string) string { return "" }, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); g.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "http://" + l.Addr().String()

	client := openai.NewClient(option.WithBaseURL(url+"/v1"), option.WithAPIKey(admin), option.WithMaxRetries(0))
	models := []string{"fast", "smart", "fast", "smart", "smart", "fast", "fast"}
	for _, m := range models {
		if _, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: shared.ChatModel(m),
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}}); err != nil {
			t.Fatal(err)
		}
	}
	cb, err := policy.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	cb.Manifest.Revision = "candidate"
	cb.Data["gavel"].(map[string]any)["aliases"].(map[string]any)["fast"] = map[string]any{"strategy": "ordered", "candidates": []any{"mock/mock-large"}}
	var tarball bytes.Buffer
	if err := policy.WriteBundle(&tarball, cb); err != nil {
		t.Fatal(err)
	}
	cand := filepath.Join(dir, "candidate.tar.gz")
	if err := os.WriteFile(cand, tarball.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var im policy.Impact
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out, errb bytes.Buffer
		if err := policyDiff([]string{"--live", url, "--key", admin, "--since", "1h", "--policy", cand, "--format", "json"}, &out, &errb); err != nil {
			t.Fatalf("%v\n%s", err, errb.String())
		}
		if err := json.Unmarshal(out.Bytes(), &im); err != nil {
			t.Fatal(err)
		}
		if im.Replayed == len(models) || time.Now().After(deadline) {
			break // the decision log writes its events off the request path
		}
		time.Sleep(20 * time.Millisecond)
	}
	if im.Replayed != 7 || im.Changed != 4 || im.Rerouted != 4 || len(im.Moves) != 1 || im.Moves[0].Alias != "fast" ||
		im.Moves[0].To != "mock/mock-large" || im.Moves[0].Requests != 4 || im.RouteChanges("smart") != 0 {
		t.Errorf("impact %s, want the 4 fast requests rerouted to mock/mock-large and nothing else", mustJSON(t, im))
	}
}
