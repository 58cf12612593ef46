package test

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/auth"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// shadowFakes is abFakes with gavel's log captured, extra gavel.yaml and bundle data
// changes: providers a and b serve the arms of experiment exp1 on alias "chat", and every
// request is shadowed to s/m1.
func shadowFakes(t *testing.T, extraYAML string, edit func(data map[string]any)) (*gw, map[string]*fakeupstream.Server, *logBuffer) {
	t.Helper()
	ups, yaml := abUpstreams(t, ", breaker: {failure_threshold: 1000}")
	data := abData(nil)
	if edit != nil {
		edit(data)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := bundle(t, "shadow-1", data)
	return startLogged(t, "policy: "+dir+"\n"+extraYAML+"providers:\n"+yaml, nil, true, log), ups, logs
}

// userInArm returns a user whose sticky bucket (FNV-1a of the user, mod 10000, as gavel
// computes it) falls in exp1's arm b (5000–9999) or arm a.
func userInArm(b bool) string {
	for i := 0; ; i++ {
		u := fmt.Sprintf("user-%d", i)
		h := fnv.New32a()
		h.Write([]byte(u))
		if (h.Sum32()%10000 >= 5000) == b {
			return u
		}
	}
}

// metric sums the samples of name whose labels contain every one of labels.
func metric(text, name string, labels ...string) float64 {
	sum := 0.0
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func TestShadowNeverDelaysThePrimaryAndIsCompared(t *testing.T) {
	const shadowDelay = 3 * time.Second
	g, ups, logs := shadowFakes(t, "", nil)
	// The shadow answers like arm a, seconds later; arm b answers differently.
	ups["s"].SetDefault("m1", fakeupstream.Step{Latency: shadowDelay, Reply: "The capital of France is Paris."})
	ups["a"].SetDefault("m1", fakeupstream.Step{Reply: "The capital of France is Paris."})
	ups["b"].SetDefault("m1", fakeupstream.Step{Reply: "Lyon has wonderful food markets."})
	c := g.client("k")
	ids := map[string]bool{}
	// The non-streamed request lands in arm a, the streamed one in arm b.
	for i, stream := range []bool{false, true} {
		p := userParams("chat", "What is the capital of France?")
		p.User = openaiString(userInArm(i == 1))
		start := time.Now()
		var resp *http.Response
		if stream {
			s := c.Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
		} else if _, err := c.Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > shadowDelay/4 {
			t.Fatalf("stream=%v: the primary took %v with a %v shadow", stream, el, shadowDelay)
		}
		if arm := resp.Header.Get("X-Gavel-Arm"); arm != map[bool]string{false: "a", true: "b"}[stream] {
			t.Fatalf("stream=%v landed in arm %q", stream, arm)
		}
		ids[resp.Header.Get("X-Gavel-Decision-Id")] = true
	}
	eventually(t, "two shadow log lines", func() bool { return len(logs.records("shadow")) == 2 })
	for _, r := range ups["s"].Requests() {
		if r.Stream || r.Body.StreamOptions != nil {
			t.Error("a shadow of a streaming request was streamed")
		}
	}
	for _, l := range logs.records("shadow") {
		if !ids[fmt.Sprint(l["decision_id"])] || l["experiment"] != "exp1" || l["provider"] != "s" || l["model"] != "m1" {
			t.Errorf("shadow line = %v", l)
		}
		sim, ok := l["similarity"].(float64)
		if !ok {
			t.Fatalf("shadow line without similarity: %v", l)
		}
		// Arm a answered the shadow's words exactly, arm b nothing alike.
		if want := map[string]float64{"a": 1, "b": 0}[fmt.Sprint(l["arm"])]; sim != want {
			t.Errorf("arm %v: similarity %v, want %v", l["arm"], sim, want)
		}
		if l["latency_ms"].(float64) < float64(shadowDelay.Milliseconds()) || l["input_tokens"].(float64) != fakeupstream.DefaultPromptTokens ||
			l["output_tokens"].(float64) != 6 || l["cost_micro_usd"].(float64) != 12+2*6 || l["output_bytes"].(float64) != 31 || l["error"] != nil {
			t.Errorf("shadow line = %v", l)
		}
	}
	if strings.Contains(logs.String(), "capital of France") {
		t.Error("the log holds prompt or completion text")
	}
	m := g.text(t, "/metrics")
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gavel_shadow_similarity_count", []string{`experiment="exp1"`, `provider="s"`, `model="m1"`}, 2},
		{"gavel_shadow_similarity_sum", []string{`experiment="exp1"`}, 1},
		{"gavel_shadow_tokens_total", []string{`direction="input"`, `experiment="exp1"`}, 2 * fakeupstream.DefaultPromptTokens},
		{"gavel_shadow_tokens_total", []string{`direction="output"`, `experiment="exp1"`}, 12},
		{"gavel_shadow_cost_micro_usd_total", []string{`experiment="exp1"`, `provider="s"`}, 2 * (12 + 2*6)},
		{"gavel_shadow_requests_total", []string{`outcome="ok"`, `experiment="exp1"`}, 2},
		// With no cap in the bundle the spend is still charged to scope shadow, not the caller.
		{"gavel_budget_spent_micro_usd", []string{`scope="shadow"`, `id="exp1"`}, 2 * (12 + 2*6)},
	} {
		if got := metric(m, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

func TestFailingShadowDoesNotFailThePrimary(t *testing.T) {
	g, ups, logs := shadowFakes(t, "", nil)
	ups["s"].SetDefault("m1", fakeupstream.Step{Status: 500})
	c := g.client("k")
	for _, stream := range []bool{false, true} {
		if stream {
			s := c.Chat.Completions.NewStreaming(context.Background(), userParams("chat", "hi"))
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
		} else if _, err := c.Chat.Completions.New(context.Background(), userParams("chat", "hi")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "two failed shadows", func() bool {
		return metric(g.text(t, "/metrics"), "gavel_shadow_requests_total", `outcome="server"`) == 2
	})
	for _, l := range logs.records("shadow") {
		if l["error"] != "server" || l["similarity"] != nil || l["cost_micro_usd"].(float64) != 0 {
			t.Errorf("shadow line = %v", l)
		}
	}
}

func TestFullShadowQueueDrops(t *testing.T) {
	g, ups, _ := shadowFakes(t, "shadow: {workers: 1, queue: 1}\n", nil)
	ups["s"].SetDefault("m1", fakeupstream.Step{Latency: 2 * time.Second})
	c := g.client("k")
	for i := 0; i < 5; i++ {
		start := time.Now()
		if _, err := c.Chat.Completions.New(context.Background(), userParams("chat", "hi")); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 500*time.Millisecond {
			t.Fatalf("request %d took %v behind a full shadow queue", i, el)
		}
	}
	// One shadow runs, one waits; the other three were dropped (four if the worker had not
	// yet picked up the first when the second arrived).
	if got := metric(g.text(t, "/metrics"), "gavel_shadow_dropped_total"); got != 3 && got != 4 {
		t.Errorf("gavel_shadow_dropped_total = %v, want 3", got)
	}
	if n := ups["s"].Count("m1"); n > 2 {
		t.Errorf("the shadow upstream got %d requests through a queue of 1 and 1 worker", n)
	}
}

func TestShadowBudgetScopeCapsShadowSpend(t *testing.T) {
	// Each shadow reserves its estimate (about 30 µUSD with max_tokens 10) and costs 18
	// (12 input + 3 output tokens at 1 and 2 USD per million): a 100 µUSD cap admits a few.
	g, ups, logs := shadowFakes(t, "", func(data map[string]any) {
		data["budgets"] = []any{map[string]any{"name": "exp1-shadows", "scope": "shadow", "id": "exp1", "period": "day", "limit_musd": 100}}
	})
	c := g.client("k")
	for i := 0; i < 10; i++ {
		p := userParams("chat", "hi")
		p.MaxTokens = openai.Int(10)
		if _, err := c.Chat.Completions.New(context.Background(), p); err != nil {
			t.Fatalf("request %d: %v (a spent shadow budget must not touch the caller)", i, err)
		}
		n := i + 1
		eventually(t, "the shadow to finish", func() bool { return len(logs.records("shadow")) == n })
	}
	m := g.text(t, "/metrics")
	sent, skipped := metric(m, "gavel_shadow_requests_total", `outcome="ok"`), metric(m, "gavel_shadow_requests_total", `outcome="budget"`)
	if sent < 1 || skipped < 1 || sent+skipped != 10 {
		t.Fatalf("shadows sent %v, skipped for budget %v; want some of each, 10 in all", sent, skipped)
	}
	if n := ups["s"].Count("m1"); float64(n) != sent {
		t.Errorf("the shadow upstream got %d requests, %v were counted as sent", n, sent)
	}
	spent := metric(m, "gavel_budget_spent_micro_usd", `scope="shadow"`, `id="exp1"`)
	if spent != sent*18 || spent > 100 || metric(m, "gavel_shadow_cost_micro_usd_total") != spent {
		t.Errorf("shadow spend %v for %v shadows (cost metric %v), cap 100", spent, sent, metric(m, "gavel_shadow_cost_micro_usd_total"))
	}
	budgetLines := 0
	for _, l := range logs.records("shadow") {
		if l["error"] == "budget" {
			budgetLines++
		}
	}
	if float64(budgetLines) != skipped {
		t.Errorf("%d log lines say budget, %v shadows were skipped", budgetLines, skipped)
	}
}

func TestShadowBudgetScopeNoneChargesNothing(t *testing.T) {
	g, _, logs := shadowFakes(t, "shadow: {budget_scope: none}\n", func(data map[string]any) {
		data["budgets"] = []any{map[string]any{"name": "exp1-shadows", "scope": "shadow", "id": "*", "period": "day", "limit_musd": 1}}
	})
	if _, err := g.client("k").Chat.Completions.New(context.Background(), userParams("chat", "hi")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the shadow", func() bool { return len(logs.records("shadow")) == 1 })
	m := g.text(t, "/metrics")
	if metric(m, "gavel_shadow_requests_total", `outcome="ok"`) != 1 || metric(m, "gavel_budget_spent_micro_usd", `scope="shadow"`) != 0 {
		t.Errorf("with budget_scope none the shadow must run uncapped and uncharged:\n%s", m)
	}
}

func TestShadowBudgetScopeCallerChargesTheCallersBudget(t *testing.T) {
	key, keyHash, _ := auth.NewKey()
	g, _, logs := shadowFakes(t, "shadow: {budget_scope: caller}\n", func(data map[string]any) {
		data["keys"] = map[string]any{keyHash: map[string]any{"key_id": "k-ana", "user": "ana", "team": "search"}}
		data["budgets"] = []any{map[string]any{"name": "team-daily", "scope": "team", "period": "day", "limit_musd": 1000000, "hard": true}}
	})
	p := userParams("chat", "hi")
	p.MaxTokens = openai.Int(10)
	if _, err := g.client(key).Chat.Completions.New(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the shadow", func() bool { return len(logs.records("shadow")) == 1 })
	var m string
	// The shadow commits after its log line; the primary's and the shadow's cost both land
	// on the caller's team budget and nothing on a shadow scope.
	eventually(t, "both charges on the team budget", func() bool {
		m = g.text(t, "/metrics")
		shadowCost := metric(m, "gavel_shadow_cost_micro_usd_total")
		primary := metric(m, "gavel_cost_micro_usd_total")
		return shadowCost > 0 && primary > 0 && metric(m, "gavel_budget_spent_micro_usd", `scope="team"`, `id="search"`) == shadowCost+primary
	})
	if metric(m, "gavel_budget_spent_micro_usd", `scope="shadow"`) != 0 {
		t.Errorf("with budget_scope caller nothing is charged to a shadow scope:\n%s", grepLines(m, "gavel_budget_spent"))
	}
}
