package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// Distinctive strings that must never reach a log line, the decision log or /metrics.
const (
	leakPrompt = "zebra-quokka-7731 what is the airspeed of a laden swallow"
	leakKey    = "sk-provider-DISTINCT-5c81e0f4a9"
)

// observedGateway runs providers a and b (both requiring leakKey) behind alias "chat" with
// experiment exp1 (one arm "x" taking every bucket), a logger at debug level into the
// returned buffer, and keys for team "search" and an admin.
func observedGateway(t *testing.T) (g *gw, logs *logBuffer, a, b *fakeupstream.Server, user, admin string) {
	t.Helper()
	a, b = fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	a.RequireAPIKey(leakKey)
	b.RequireAPIKey(leakKey)
	user, userHash, _ := auth.NewKey()
	admin, adminHash, _ := auth.NewKey()
	data := twoProviders(map[string]any{
		userHash:  map[string]any{"key_id": "k-user", "user": "ana", "team": "search"},
		adminHash: map[string]any{"key_id": "k-admin", "team": "platform", "admin": true},
	})
	data["ab_experiments"] = map[string]any{"exp1": map[string]any{
		"model": "chat",
		"arms":  []any{map[string]any{"name": "x", "weight_bp": 10000, "targets": []string{"a/m1"}}},
	}}
	dir := bundle(t, "obs-1", data)
	yaml := fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: "%s", api_key: %s, max_retries: 0}
  - {name: b, type: openai, base_url: "%s", api_key: %s, max_retries: 0}
`, dir, a.URL(), leakKey, b.URL(), leakKey)
	logs = &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return startLogged(t, yaml, nil, true, log), logs, a, b, user, admin
}

func TestRequestLogLineAndNoLeaks(t *testing.T) {
	g, logs, a, b, user, admin := observedGateway(t)
	c := g.client(user)
	echoed := "invalid api key " + leakKey + " for prompt: " + leakPrompt

	type sent struct {
		name     string
		id       string
		status   int
		usage    bool // the line must carry tokens and cost from reported usage
		async    bool // the upstream reported no usage: counted later, off the request path
		arm      bool
		wantCost func(in, out int64) int64
	}
	var reqs []sent
	// Catalog price of a/m1 and b/m1: 1 µUSD per input token, 2 per output token.
	price := func(in, out int64) int64 { return in + 2*out }
	record := func(name string, resp *http.Response, status int, usage, async, arm bool) {
		t.Helper()
		if resp == nil {
			t.Fatalf("%s: no response", name)
		}
		reqs = append(reqs, sent{name: name, id: resp.Header.Get("X-Gavel-Decision-Id"), status: status, usage: usage, async: async, arm: arm, wantCost: price})
	}

	t.Run("non-streaming", func(t *testing.T) {
		var resp *http.Response
		if _, err := c.Chat.Completions.New(context.Background(), userParams("chat", leakPrompt), option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		record("non-streaming", resp, 200, true, false, true)
	})
	t.Run("streaming", func(t *testing.T) {
		var resp *http.Response
		s := c.Chat.Completions.NewStreaming(context.Background(), userParams("chat", leakPrompt), option.WithResponseInto(&resp))
		for s.Next() {
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		record("streaming", resp, 200, true, false, true)
	})
	t.Run("streaming without upstream usage", func(t *testing.T) {
		a.Script("m1", fakeupstream.Step{Reply: "one two three", IgnoreIncludeUsage: true})
		var resp *http.Response
		s := c.Chat.Completions.NewStreaming(context.Background(), userParams("chat", leakPrompt), option.WithResponseInto(&resp))
		for s.Next() {
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		record("streaming without usage", resp, 200, false, true, true)
	})
	t.Run("failing upstreams echo the key and the prompt", func(t *testing.T) {
		a.Script("m1", fakeupstream.Step{Status: 500, Message: echoed})
		b.Script("m1", fakeupstream.Step{Status: 503, Message: echoed})
		var resp *http.Response
		_, err := c.Chat.Completions.New(context.Background(), userParams("chat", leakPrompt), option.WithResponseInto(&resp))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(apiErr.Message, leakKey) {
			t.Errorf("the client's error carries the provider key: %q", apiErr.Message)
		}
		record("upstream 5xx", apiErr.Response, 502, false, false, true)
	})
	t.Run("upstream client error echoes the key and the prompt", func(t *testing.T) {
		a.Script("m1", fakeupstream.Step{Status: 400, Code: "invalid_request_error", Message: echoed})
		_, err := c.Chat.Completions.New(context.Background(), userParams("chat", leakPrompt))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
			t.Fatalf("err = %v", err)
		}
		record("upstream 400", apiErr.Response, 400, false, false, true)
	})
	t.Run("denied by the policy", func(t *testing.T) {
		_, err := c.Chat.Completions.New(context.Background(), userParams("no-such-model", leakPrompt))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
			t.Fatalf("err = %v", err)
		}
		record("denied", apiErr.Response, 404, false, false, false)
	})

	// One line per request, with the fields the issue names.
	byID := map[string]map[string]any{}
	waitFor(t, func() bool { return len(requestLines(t, logs)) >= len(reqs) })
	for _, l := range requestLines(t, logs) {
		id, _ := l["decision_id"].(string)
		if byID[id] != nil {
			t.Errorf("two request lines for %s", id)
		}
		byID[id] = l
	}
	for _, r := range reqs {
		t.Run("line/"+r.name, func(t *testing.T) {
			l := byID[r.id]
			if l == nil {
				t.Fatalf("no request line for %s", r.id)
			}
			for _, f := range []string{"decision_id", "status", "route", "duration_ms", "upstream_ms", "endpoint", "model", "key_id", "team", "bundle_revision"} {
				if _, ok := l[f]; !ok {
					t.Errorf("line lacks %s: %v", f, l)
				}
			}
			if l["status"] != float64(r.status) || l["team"] != "search" {
				t.Errorf("status %v team %v, want %d search", l["status"], l["team"], r.status)
			}
			if r.arm && (l["arm"] != "x" || l["experiment"] != "exp1") {
				t.Errorf("arm %v experiment %v, want x exp1", l["arm"], l["experiment"])
			}
			in, _ := l["input_tokens"].(float64)
			out, _ := l["output_tokens"].(float64)
			cost, hasCost := l["cost_micro_usd"].(float64)
			switch {
			case r.async:
				if l["usage_counted_async"] != true || hasCost {
					t.Errorf("a stream without usage: %v", l)
				}
			case r.usage:
				if in <= 0 || out <= 0 || !hasCost || int64(cost) != r.wantCost(int64(in), int64(out)) {
					t.Errorf("tokens %v/%v cost %v: want tokens and cost = in + 2×out", in, out, cost)
				}
				if l["route"] != "a/m1" {
					t.Errorf("route = %v", l["route"])
				}
			default:
				if !hasCost || cost != 0 || in != 0 || out != 0 {
					t.Errorf("a request without usage: tokens %v/%v cost %v, want zeros", in, out, cost)
				}
			}
		})
	}

	// Nothing gavel wrote or serves contains the prompt or the provider key.
	var dumps []string
	for _, r := range reqs {
		dumps = append(dumps, explanation(t, g, admin, r.id))
	}
	metrics := g.text(t, "/metrics")
	for what, texts := range map[string][]string{"log line": logs.lines(), "decision log": dumps, "/metrics": {metrics}} {
		for _, s := range texts {
			for _, secret := range []string{leakPrompt, "zebra-quokka-7731", leakKey} {
				if strings.Contains(s, secret) {
					t.Errorf("a %s contains %q: %s", what, secret, s)
				}
			}
		}
	}

	// Tokens and cost carry the caller's team; decisions are counted by rule; and what a
	// live gateway exposes passes promlint.
	waitFor(t, func() bool {
		return strings.Contains(g.text(t, "/metrics"), `gavel_tokens_total{direction="output",model="m1",provider="a",team="search"}`)
	})
	metrics = g.text(t, "/metrics")
	for _, want := range []string{
		`gavel_cost_micro_usd_total{model="m1",provider="a",team="search"}`,
		`gavel_decision_rules_total{rule="experiment"} 5`,
		`gavel_decision_rules_total{rule="route.alias"} 5`,
		`gavel_decision_rules_total{rule="route.unknown_model"} 1`,
		`gavel_requests_total{arm="x",endpoint="chat",route="a/m1",status="200"} 3`,
		`gavel_experiment_request_duration_seconds_count{arm="x",experiment="exp1"} 5`,
		`gavel_experiment_cost_micro_usd_total{arm="x",experiment="exp1"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(metrics)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// requestLines are the parsed "request" lines of the log.
func requestLines(t *testing.T, logs *logBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, s := range logs.lines() {
		var l map[string]any
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("a log line is not JSON: %q", s)
		}
		if l["msg"] == "request" {
			out = append(out, l)
		}
	}
	return out
}

// explanation is GET /v1/gavel/decisions/{id} as the admin sees it (decision-log events are
// built off the request path, so it may take a moment to appear).
func explanation(t *testing.T, g *gw, admin, id string) string {
	t.Helper()
	var body []byte
	waitFor(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/decisions/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK
	})
	return string(body)
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
