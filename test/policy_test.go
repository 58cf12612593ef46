package test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// abFakes starts providers a, b and s (the shadow target) with an experiment on alias
// "chat": arm "a" (buckets 0–4999) → a/m1, arm "b" (5000–9999) → b/m1, every request
// shadowed to s/m1.
func abFakes(t *testing.T, keys map[string]any) (*gw, map[string]*fakeupstream.Server) {
	t.Helper()
	ups, yaml := abUpstreams(t, "")
	dir := bundle(t, "ab-1", abData(keys))
	return start(t, "policy: "+dir+"\nproviders:\n"+yaml, nil), ups
}

// abUpstreams starts fake providers a, b and s and returns their gavel.yaml entries, each
// with extra settings appended.
func abUpstreams(t *testing.T, extra string) (map[string]*fakeupstream.Server, string) {
	t.Helper()
	ups := map[string]*fakeupstream.Server{}
	yaml := ""
	for _, n := range []string{"a", "b", "s"} {
		up := fakeupstream.New()
		t.Cleanup(up.Close)
		ups[n] = up
		yaml += fmt.Sprintf("  - {name: %s, type: openai, base_url: %q, api_key: k, max_retries: 0%s}\n", n, up.URL(), extra)
	}
	return ups, yaml
}

// abData is bundle data with experiment exp1 on alias "chat" (arms a and b, every request
// shadowed to s/m1).
func abData(keys map[string]any) map[string]any {
	data := twoProviders(keys)
	data["catalog"].(map[string]any)["s/m1"] = entry("s", "m1")
	data["ab_experiments"] = map[string]any{"exp1": map[string]any{
		"model": "chat",
		"arms": []any{
			map[string]any{"name": "a", "weight_bp": 5000, "targets": []string{"a/m1"}},
			map[string]any{"name": "b", "weight_bp": 5000, "targets": []string{"b/m1"}},
		},
		"shadow": map[string]any{"sample_bp": 10000, "target": "s/m1"},
	}}
	return data
}

func TestABArmsAreStickyAndTagged(t *testing.T) {
	g, ups := abFakes(t, nil)
	c := g.client("k")
	arms := map[string]string{}
	for _, user := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"} {
		for i := 0; i < 2; i++ {
			p := userParams("chat", "hi")
			p.User = openaiString(user)
			var resp *http.Response
			if _, err := c.Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp)); err != nil {
				t.Fatal(err)
			}
			arm, route := resp.Header.Get("X-Gavel-Arm"), resp.Header.Get("X-Gavel-Route")
			if resp.Header.Get("X-Gavel-Experiment") != "exp1" || route != arm+"/m1" {
				t.Fatalf("user %s: experiment %q arm %q route %q", user, resp.Header.Get("X-Gavel-Experiment"), arm, route)
			}
			if prev, ok := arms[user]; ok && prev != arm {
				t.Errorf("user %s moved from arm %s to %s", user, prev, arm)
			}
			arms[user] = arm
		}
	}
	seen := map[string]bool{}
	for _, a := range arms {
		seen[a] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("8 users all landed in one arm: %v", arms)
	}
	if !strings.Contains(g.text(t, "/metrics"), `arm="b"`) {
		t.Error("per-arm metrics missing")
	}
	// Every request was shadowed to s, asynchronously and non-streamed.
	deadline := time.Now().Add(5 * time.Second)
	for ups["s"].Count("m1") < 16 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := ups["s"].Count("m1"); n != 16 {
		t.Errorf("shadow got %d requests, want 16", n)
	}
	// The fake counts a shadow when it arrives, gavel when its answer has been read: poll.
	want := `gavel_shadow_requests_total{experiment="exp1",model="m1",outcome="ok",provider="s"} 16`
	for !strings.Contains(g.text(t, "/metrics"), want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(g.text(t, "/metrics"), want) {
		t.Error("shadow metrics missing")
	}
}

func TestSlowShadowNeverDelaysThePrimary(t *testing.T) {
	g, ups := abFakes(t, nil)
	ups["s"].SetDefault("m1", fakeupstream.Step{Latency: 3 * time.Second})
	c := g.client("k")
	start := time.Now()
	for i := 0; i < 5; i++ {
		s := c.Chat.Completions.NewStreaming(context.Background(), userParams("chat", "hi"))
		for s.Next() {
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("5 requests took %v with a 3 s shadow: the shadow delayed the primary", el)
	}
	for _, r := range ups["s"].Requests() {
		if r.Stream {
			t.Error("a shadow of a streaming request was streamed")
		}
	}
}

func TestExplainDecisionByID(t *testing.T) {
	admin, adminHash, _ := auth.NewKey()
	user, userHash, _ := auth.NewKey()
	keys := map[string]any{
		adminHash: map[string]any{"key_id": "k-admin", "team": "platform", "admin": true},
		userHash:  map[string]any{"key_id": "k-user", "team": "search"},
	}
	g, _ := abFakes(t, keys)
	var resp *http.Response
	p := userParams("chat", "my secret prompt text")
	if _, err := g.client(user).Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Gavel-Decision-Id")
	get := func(key string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/decisions/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		return do(t, req)
	}
	var body map[string]any
	deadline := time.Now().Add(3 * time.Second)
	for {
		r, b := get(admin)
		if r.StatusCode == 200 || time.Now().After(deadline) {
			resp, body = r, b
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("explain: %d %v", resp.StatusCode, body)
	}
	result := body["result"].(map[string]any)
	custom := body["custom"].(map[string]any)
	if result["allow"] != true || custom["route"] == "none" || body["bundles"].(map[string]any)["gavel"].(map[string]any)["revision"] != "ab-1" {
		t.Errorf("explanation = %v", body)
	}
	reasons := fmt.Sprint(result["reasons"])
	if !strings.Contains(reasons, "route.alias:chat") || !strings.Contains(reasons, "experiment:exp1:") {
		t.Errorf("reasons = %s", reasons)
	}
	if caller := body["input"].(map[string]any)["caller"].(map[string]any); caller["key_id"] != "k-user" {
		t.Errorf("caller = %v", caller)
	}
	if strings.Contains(fmt.Sprint(body), "my secret prompt text") {
		t.Error("the explanation leaks the prompt")
	}
	if r, _ := get(user); r.StatusCode != 403 {
		t.Errorf("non-admin key: %d", r.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/decisions/nope", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	if r, _ := do(t, req); r.StatusCode != 404 {
		t.Errorf("unknown id: %d", r.StatusCode)
	}
}
