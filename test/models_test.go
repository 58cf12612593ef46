package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// ownModels is a gavel.yaml holding only one OpenAI-compatible provider, "up", which
// declares two models; extra is appended to its entry.
func ownModels(up *fakeupstream.Server, extra string) string {
	return fmt.Sprintf(`providers:
  - name: up
    type: openai
    base_url: "%s"
    api_key: key-up
    max_retries: 0
    models:
      - name: m-large
        aliases: [smart]
        context_window: 128000
        prices: {input: 2.5, output: 10}
        capabilities: [tools, json]
      - name: m-small
        aliases: [fast, cheap]
%s`, up.URL(), extra)
}

func modelIDs(t *testing.T, c *openai.Client) []string {
	t.Helper()
	list, err := c.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	sort.Strings(ids)
	return ids
}

// The first promise: an operator's own provider, and nothing else, just works with
// the OpenAI SDK by alias and by bare model name, and /v1/models lists exactly what works.
func TestOwnProviderModelsByAliasAndName(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	up.RequireAPIKey("key-up")
	g := start(t, ownModels(up, ""), nil)
	c := g.client("k")

	for _, tc := range []struct{ model, route string }{
		{"smart", "up/m-large"},
		{"m-large", "up/m-large"},
		{"fast", "up/m-small"},
		{"cheap", "up/m-small"},
		{"m-small", "up/m-small"},
		{"up/m-small", "up/m-small"},
	} {
		var resp *http.Response
		out, err := c.Chat.Completions.New(context.Background(), userParams(tc.model, "hello"), option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("%s: %v", tc.model, err)
		}
		upstreamModel := strings.TrimPrefix(tc.route, "up/")
		if got := out.Choices[0].Message.Content; got != "Hello from "+upstreamModel {
			t.Errorf("%s: content = %q", tc.model, got)
		}
		if got := resp.Header.Get("X-Gavel-Route"); got != tc.route {
			t.Errorf("%s: route = %q, want %s", tc.model, got, tc.route)
		}
		if got := resp.Header.Get("X-Gavel-Substituted"); got != "" {
			t.Errorf("%s: substituted = %q", tc.model, got)
		}
	}

	// Streaming by alias too.
	stream := c.Chat.Completions.NewStreaming(context.Background(), userParams("fast", "hello"))
	var text strings.Builder
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil || text.String() != "Hello from m-small" {
		t.Fatalf("stream: %q, %v", text.String(), err)
	}

	// /v1/models lists exactly the names that work, and each of them answers.
	ids := modelIDs(t, c)
	want := []string{"cheap", "fast", "m-large", "m-small", "smart", "up/m-large", "up/m-small"}
	if !slices.Equal(ids, want) {
		t.Fatalf("models = %v, want %v", ids, want)
	}
	for _, id := range ids {
		if _, err := c.Chat.Completions.New(context.Background(), userParams(id, "hi")); err != nil {
			t.Errorf("listed model %s does not answer: %v", id, err)
		}
		if m, err := c.Models.Get(context.Background(), id); err != nil || m.OwnedBy != "up" {
			t.Errorf("GET /v1/models/%s: %+v, %v", id, m, err)
		}
	}
	// The bundle's names that have no target here are not listed, and say why when asked.
	if _, err := c.Models.Get(context.Background(), "gpt-4o"); err == nil {
		t.Error("gpt-4o is listed")
	}
}

// A provider with discover_models lists its models at startup and again at each interval;
// declared models keep their aliases, listed ones are reachable by name.
func TestModelDiscovery(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	up.RequireAPIKey("key-up")
	g := start(t, ownModels(up, "    discover_models: true\n    discovery_interval: 50ms\n"), nil)
	c := g.client("k")

	ids := modelIDs(t, c)
	for _, want := range []string{"gpt-4.1", "up/gpt-4.1", "o3-mini", "smart", "m-small"} {
		if !slices.Contains(ids, want) {
			t.Errorf("models lack %s: %v", want, ids)
		}
	}
	var resp *http.Response
	out, err := c.Chat.Completions.New(context.Background(), userParams("gpt-4.1", "hello"), option.WithResponseInto(&resp))
	if err != nil || out.Choices[0].Message.Content != "Hello from gpt-4.1" || resp.Header.Get("X-Gavel-Route") != "up/gpt-4.1" {
		t.Fatalf("discovered model: %v, %q", err, resp.Header.Get("X-Gavel-Route"))
	}
	// gpt-4o is an alias of the bundle (openai/gpt-4o, mock/mock-large, neither configured);
	// the discovered up/gpt-4o joins it.
	if _, err := c.Chat.Completions.New(context.Background(), userParams("gpt-4o", "hello"), option.WithResponseInto(&resp)); err != nil ||
		resp.Header.Get("X-Gavel-Route") != "up/gpt-4o" {
		t.Fatalf("bundle alias served by a discovered model: %v, %q", err, resp.Header.Get("X-Gavel-Route"))
	}

	// A model the upstream starts serving appears at the next discovery.
	up.SetDefault("qwen-new", fakeupstream.Step{Reply: "new"})
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(modelIDs(t, c), "qwen-new") {
		if time.Now().After(deadline) {
			t.Fatal("a newly listed model never appeared in /v1/models")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := c.Chat.Completions.New(context.Background(), userParams("qwen-new", "hi")); err != nil || out.Choices[0].Message.Content != "new" {
		t.Fatalf("newly discovered model: %v", err)
	}
	var listed int
	for _, r := range up.Requests() {
		if r.Method == http.MethodGet && r.Path == "/v1/models" {
			listed++
			if r.Header.Get("Authorization") != "Bearer key-up" {
				t.Errorf("discovery sent %q", r.Header.Get("Authorization"))
			}
		}
	}
	if listed < 2 {
		t.Errorf("GET /v1/models asked %d times, want startup and refreshes", listed)
	}
}

// A provider whose listing fails still serves its declared models.
func TestModelDiscoveryFailureKeepsDeclaredModels(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	up.RequireAPIKey("other-key") // every request of gavel's is refused, the listing first
	var log logBuffer
	g := startLogged(t, ownModels(up, "    discover_models: true\n"), nil, true, slog.New(slog.NewJSONHandler(&log, nil)))
	if ids := modelIDs(t, g.client("k")); !slices.Contains(ids, "smart") || slices.Contains(ids, "gpt-4.1") {
		t.Errorf("models = %v", ids)
	}
	if !strings.Contains(log.String(), "model discovery failed") || strings.Contains(log.String(), "key-up") {
		t.Errorf("log: %s", log.String())
	}
}

func sdkError(t *testing.T, err error) *openai.Error {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want an API error", err)
	}
	return apiErr
}

// A name with no reachable target says which targets and why: 404 when nothing it names is
// configured, 503 when something is but cannot take traffic now.
func TestNoTargetSaysWhichAndWhy(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	g := start(t, ownModels(up, "    breaker: {failure_threshold: 1, delay: 1m}\n"), nil)
	c := g.client("k")

	for _, tc := range []struct{ model, message string }{
		{"gpt-4o", "The model `gpt-4o` has no configured target here: openai/gpt-4o (provider not configured), mock/mock-large (provider not configured)."},
		// Named explicitly, with only "up" configured: not silently another model.
		{"anthropic/claude-sonnet-4-5", "The model `anthropic/claude-sonnet-4-5` has no configured target here: anthropic/claude-sonnet-4-5 (provider not configured)."},
		{"nope/x", "The model `nope/x` names provider `nope`, which is not configured here."},
	} {
		_, err := c.Chat.Completions.New(context.Background(), userParams(tc.model, "hi"))
		apiErr := sdkError(t, err)
		if apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" || apiErr.Message != tc.message {
			t.Errorf("%s: %d %s %q, want 404 model_not_found %q", tc.model, apiErr.StatusCode, apiErr.Code, apiErr.Message, tc.message)
		}
	}

	// One failure opens up/m-large's breaker: smart is configured but unavailable.
	up.Script("m-large", fakeupstream.Step{Status: 500, Message: "boom"})
	if _, err := c.Chat.Completions.New(context.Background(), userParams("smart", "hi")); sdkError(t, err).StatusCode != 502 {
		t.Fatalf("the failing call: %v", err)
	}
	// The executor refuses at once while the plan catches up; then the policy answers.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Chat.Completions.New(context.Background(), userParams("smart", "hi"))
		apiErr := sdkError(t, err)
		if apiErr.StatusCode != 503 || apiErr.Code != "no_available_target" {
			t.Fatalf("smart with its breaker open: %d %s %q", apiErr.StatusCode, apiErr.Code, apiErr.Message)
		}
		if strings.Contains(apiErr.Message, "up/m-large (circuit open)") {
			if !strings.Contains(apiErr.Message, "openai/gpt-4o (provider not configured)") {
				t.Errorf("503 message = %q", apiErr.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy never named the open circuit: %q", apiErr.Message)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A name only the provider declares: its open breaker tells the client when to retry.
	resp, body := g.post(t, "/v1/chat/completions", `{"model":"m-large","messages":[{"role":"user","content":"hi"}]}`, nil)
	if msg, _ := body["error"].(map[string]any)["message"].(string); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" ||
		msg != "No provider is available for model `m-large` right now: up/m-large (circuit open)." {
		t.Errorf("m-large with its breaker open: %d Retry-After %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// What cannot be served is not listed; the rest still is.
	if ids := modelIDs(t, c); slices.Contains(ids, "smart") || !slices.Contains(ids, "fast") {
		t.Errorf("models with m-large's breaker open = %v", ids)
	}
}

// A client that names provider/model explicitly is told when another target answered,
// and the decision log records it; an alias falling back is not a substitution.
func TestSubstitutionIsVisible(t *testing.T) {
	a, b := fakeupstream.New(), fakeupstream.New()
	defer a.Close()
	defer b.Close()
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	dir := bundle(t, "e2e-1", twoProviders(nil))
	g := start(t, fmt.Sprintf(`policy: %s
decision_log: {file: %s, mask_messages: true}
providers:
  - {name: a, type: openai, base_url: "%s", max_retries: 0}
  - {name: b, type: openai, base_url: "%s", max_retries: 0}
`, dir, logFile, a.URL(), b.URL()), nil)
	c := g.client("k")

	call := func(model string) *http.Response {
		t.Helper()
		var resp *http.Response
		if _, err := c.Chat.Completions.New(context.Background(), userParams(model, "hi"), option.WithResponseInto(&resp)); err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		return resp
	}
	if h := call("a/m1").Header.Get("X-Gavel-Substituted"); h != "" {
		t.Errorf("answered by the chosen target, yet substituted = %q", h)
	}
	a.Script("m1", fakeupstream.Step{Status: 500, Message: "boom"})
	resp := call("a/m1")
	if got := resp.Header.Get("X-Gavel-Substituted"); got != "a/m1 -> b/m1" || resp.Header.Get("X-Gavel-Route") != "b/m1" {
		t.Errorf("substituted = %q, route = %q", got, resp.Header.Get("X-Gavel-Route"))
	}
	id := resp.Header.Get("X-Gavel-Decision-Id")

	// The Responses API says it too.
	a.Script("m1", fakeupstream.Step{Status: 500, Message: "boom"})
	if _, err := c.Responses.New(context.Background(), responses.ResponseNewParams{Model: "a/m1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}, option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Gavel-Substituted"); got != "a/m1 -> b/m1" {
		t.Errorf("responses: substituted = %q", got)
	}

	a.Script("m1", fakeupstream.Step{Status: 500, Message: "boom"})
	if h := call("chat").Header.Get("X-Gavel-Substituted"); h != "" {
		t.Errorf("an alias's fallback reported as a substitution: %q", h)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		if ev := findEvent(t, logFile, id); ev != nil {
			custom, _ := ev["custom"].(map[string]any)
			if custom["substituted"] != "a/m1 -> b/m1" || custom["route"] != "b/m1" {
				t.Errorf("decision log custom = %v", custom)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("decision not logged")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// findEvent returns the decision-log event with decision id id from a file sink, or nil.
func findEvent(t *testing.T, path, id string) map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["decision_id"] == id {
			return ev
		}
	}
	return nil
}
