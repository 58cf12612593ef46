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

func TestHedgeAnswersFromTheNextTargetAndCancelsTheSlowOne(t *testing.T) {
	const slow = 3 * time.Second
	a, b := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	a.SetDefault("m1", fakeupstream.Step{Latency: slow})
	data := twoProviders(nil)
	data["aliases"].(map[string]any)["chat"].(map[string]any)["hedge_ms"] = 100
	dir := bundle(t, "hedge-1", data)
	g := start(t, fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: %q, api_key: k}
  - {name: b, type: openai, base_url: %q, api_key: k}
`, dir, a.URL(), b.URL()), nil)
	c := g.client("k")
	for _, stream := range []bool{false, true} {
		start := time.Now()
		var resp *http.Response
		if stream {
			s := c.Chat.Completions.NewStreaming(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp))
			n := 0
			for s.Next() {
				n++
			}
			if err := s.Err(); err != nil || n == 0 {
				t.Fatalf("stream: %d chunks, err %v", n, err)
			}
		} else {
			r, err := c.Chat.Completions.New(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp))
			if err != nil {
				t.Fatal(err)
			}
			if r.Choices[0].Message.Content != "Hello from m1" {
				t.Errorf("answer %q", r.Choices[0].Message.Content)
			}
		}
		if el := time.Since(start); el > slow/4 {
			t.Fatalf("stream=%v: answered after %v; the hedge should answer about 100 ms in, not after the primary's %v", stream, el, slow)
		}
		if route := resp.Header.Get("X-Gavel-Route"); route != "b/m1" {
			t.Errorf("stream=%v: route %q, want the hedge b/m1", stream, route)
		}
		// The primary was asked first and then cancelled: its request ends long before the
		// answer it was scripted to give after 3 s.
		eventually(t, "the slow primary's request to be cancelled", func() bool { return a.InFlight() == 0 })
		if el := time.Since(start); el > slow/2 {
			t.Errorf("stream=%v: the loser's upstream request was not cancelled (ended after %v)", stream, el)
		}
	}
	if a.Count("m1") != 2 || b.Count("m1") != 2 {
		t.Errorf("a got %d requests, b %d; want both asked twice", a.Count("m1"), b.Count("m1"))
	}
	m := g.text(t, "/metrics")
	if metric(m, "gavel_hedges_total", `provider="b"`, `outcome="won"`) != 2 || metric(m, "gavel_hedges_total", `provider="a"`, `outcome="lost"`) != 2 {
		t.Errorf("hedge metrics:\n%s", grepLines(m, "gavel_hedges_total"))
	}
	if metric(m, "gavel_upstream_attempts_total", `provider="a"`, `outcome="server"`) != 0 || metric(m, "gavel_circuit_breaker_state", `provider="a"`) != 0 {
		t.Error("a cancelled hedge loser counted against the primary's health")
	}
}

func TestCanaryRollsBackOnLiveErrorRate(t *testing.T) {
	admin, adminHash, _ := auth.NewKey()
	g, ups, _ := shadowFakes(t, "", func(data map[string]any) {
		exp := data["ab_experiments"].(map[string]any)["exp1"].(map[string]any)
		delete(exp, "shadow")
		exp["canary"] = map[string]any{"min_requests": 5, "max_error_rate_bp": 2000}
		data["keys"] = map[string]any{adminHash: map[string]any{"key_id": "k-admin", "admin": true}}
	})
	ups["b"].SetDefault("m1", fakeupstream.Step{Status: 500, Message: "canary broke"})
	c := g.client(admin)
	ask := func(user string) *http.Response {
		t.Helper()
		p := userParams("chat", "hi")
		p.User = openaiString(user)
		var resp *http.Response
		if _, err := c.Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp)); err != nil {
			t.Fatalf("user %s: %v (a failing canary falls back to the normal route)", user, err)
		}
		return resp
	}
	canaryUser, controlUser := userInArm(true), userInArm(false)
	if arm := ask(canaryUser).Header.Get("X-Gavel-Arm"); arm != "b" {
		t.Fatalf("the canary user starts in arm %q, want b", arm)
	}
	// Canary traffic keeps failing over to a; once b's error rate over its first 5
	// requests passes 20 % and the planner refreshes (every second), b gets no traffic.
	var last *http.Response
	eventually(t, "the canary arm to be rolled back", func() bool {
		last = ask(canaryUser)
		return last.Header.Get("X-Gavel-Arm") != "b"
	})
	if n := ups["b"].Count("m1"); n < 5 {
		t.Errorf("rolled back after %d canary requests; the experiment asks for at least 5", n)
	}
	before := ups["b"].Count("m1")
	for i := 0; i < 8; i++ {
		user := userInArm(i%2 == 0)
		if i >= 2 {
			user = fmt.Sprintf("%s-%d", user, i) // other users too, both former arms
		}
		resp := ask(user)
		if arm, route := resp.Header.Get("X-Gavel-Arm"), resp.Header.Get("X-Gavel-Route"); arm == "b" || route != "a/m1" {
			t.Errorf("user %s: arm %q route %q after the rollback", user, arm, route)
		}
	}
	if ups["b"].Count("m1") != before {
		t.Error("the rolled-back canary still got traffic")
	}
	if arm := ask(controlUser).Header.Get("X-Gavel-Arm"); arm != "a" {
		t.Errorf("the control user is in arm %q, want a", arm)
	}
	// The decision says why.
	id := last.Header.Get("X-Gavel-Decision-Id")
	var reasons string
	eventually(t, "the decision's explanation", func() bool {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/decisions/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, body := do(t, req)
		if resp.StatusCode != 200 {
			return false
		}
		reasons = fmt.Sprint(body["result"].(map[string]any)["reasons"])
		return true
	})
	if !strings.Contains(reasons, "canary:exp1:b:error_rate") {
		t.Errorf("reasons %s do not say the canary was rolled back", reasons)
	}
}
