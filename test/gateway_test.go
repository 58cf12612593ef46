package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

func userParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    shared.ChatModel(model),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage(text)},
	}
}

// twoFakes starts fake upstreams a and b and a gateway routing "chat" to a, then b.
func twoFakes(t *testing.T, extra string) (*gw, *fakeupstream.Server, *fakeupstream.Server) {
	t.Helper()
	a, b := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	a.RequireAPIKey("key-a")
	b.RequireAPIKey("key-b")
	dir := bundle(t, "e2e-1", twoProviders(nil))
	yaml := fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: "%s", api_key: key-a, backoff: 1ms, max_backoff: 2ms%s}
  - {name: b, type: openai, base_url: "%s", api_key: key-b, backoff: 1ms, max_backoff: 2ms}
`, dir, a.URL(), extra, b.URL())
	return start(t, yaml, nil), a, b
}

func TestOpenAIFromEnvironmentNonStreaming(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	up.RequireAPIKey("sk-test")
	g := start(t, "", map[string]string{"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": up.URL()})
	c := g.client("anything")
	var resp *http.Response
	out, err := c.Chat.Completions.New(context.Background(), userParams("gpt-4o-mini", "hello"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Choices[0].Message.Content; got != "Hello from gpt-4o-mini" {
		t.Errorf("content = %q", got)
	}
	if out.Usage.TotalTokens == 0 {
		t.Error("usage missing")
	}
	for h, want := range map[string]string{"X-Gavel-Route": "openai/gpt-4o-mini", "X-Gavel-Bundle-Revision": "default-1"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if len(resp.Header.Get("X-Gavel-Decision-Id")) != 32 {
		t.Errorf("decision id = %q", resp.Header.Get("X-Gavel-Decision-Id"))
	}
	reqs := up.Requests()
	if len(reqs) != 1 || reqs[0].Model != "gpt-4o-mini" || reqs[0].Header.Get("Authorization") != "Bearer sk-test" {
		t.Fatalf("upstream saw %+v", reqs)
	}
	if len(reqs[0].Body.Messages) != 2 || reqs[0].Body.Messages[0].Role != "system" {
		t.Errorf("messages not forwarded: %+v", reqs[0].Body.Messages)
	}

	// A client hint provider/model is honoured by the default policy.
	out, err = c.Chat.Completions.New(context.Background(), userParams("openai/gpt-4o", "hello"), option.WithResponseInto(&resp))
	if err != nil || out.Choices[0].Message.Content != "Hello from gpt-4o" || resp.Header.Get("X-Gavel-Route") != "openai/gpt-4o" {
		t.Fatalf("client hint: %v %+v", err, out)
	}
}

func TestStreamingWithAndWithoutUsage(t *testing.T) {
	g, a, _ := twoFakes(t, "")
	a.SetDefault("m1", fakeupstream.Step{Reply: "one two three four five", Chunks: 5})
	c := g.client("k")
	for _, usage := range []bool{true, false} {
		t.Run(fmt.Sprintf("include_usage=%v", usage), func(t *testing.T) {
			p := userParams("chat", "count")
			if usage {
				p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			var resp *http.Response
			s := c.Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
			acc := openai.ChatCompletionAccumulator{}
			chunks, usageChunks := 0, 0
			for s.Next() {
				ch := s.Current()
				acc.AddChunk(ch)
				chunks++
				if ch.Usage.TotalTokens > 0 {
					usageChunks++
				}
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			if got := acc.Choices[0].Message.Content; got != "one two three four five" {
				t.Errorf("content = %q", got)
			}
			if acc.Choices[0].FinishReason != "stop" {
				t.Errorf("finish = %q", acc.Choices[0].FinishReason)
			}
			if want := map[bool]int{true: 1, false: 0}[usage]; usageChunks != want {
				t.Errorf("usage chunks = %d, want %d", usageChunks, want)
			}
			if resp.Header.Get("X-Gavel-Route") != "a/m1" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Errorf("headers = %v", resp.Header)
			}
			if chunks < 7 {
				t.Errorf("only %d chunks: the stream was not relayed chunk by chunk", chunks)
			}
		})
	}
	// gavel always asks the upstream for usage, for cost accounting.
	for _, r := range a.Requests() {
		if !strings.Contains(string(r.Raw), `"include_usage":true`) {
			t.Errorf("upstream request lacked include_usage: %s", r.Raw)
		}
	}
}

func TestToolCallStreamArgumentsInPieces(t *testing.T) {
	g, a, _ := twoFakes(t, "")
	args := `{"city":"Paris","unit":"celsius"}`
	a.SetDefault("m1", fakeupstream.Step{ToolCalls: []fakeupstream.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: args, Pieces: 5}}})
	p := userParams("chat", "weather in Paris?")
	p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name: "get_weather", Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
	})}
	c := g.client("k")

	s := c.Chat.Completions.NewStreaming(context.Background(), p)
	acc := openai.ChatCompletionAccumulator{}
	var finished []openai.FinishedChatCompletionToolCall
	for s.Next() {
		acc.AddChunk(s.Current())
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(finished) != 1 || finished[0].Name != "get_weather" || finished[0].Arguments != args || finished[0].ID != "call_1" {
		t.Fatalf("tool calls = %+v", finished)
	}
	if acc.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("finish = %q", acc.Choices[0].FinishReason)
	}
	got := a.Requests()[0].Body
	if len(got.Tools) != 1 || got.Tools[0].Function.Name != "get_weather" {
		t.Errorf("tools not forwarded: %+v", got.Tools)
	}

	// Non-streamed, and the tool result goes back up.
	out, err := c.Chat.Completions.New(context.Background(), p)
	if err != nil || len(out.Choices[0].Message.ToolCalls) != 1 || out.Choices[0].Message.ToolCalls[0].Function.Arguments != args {
		t.Fatalf("non-stream tool call: %v %+v", err, out)
	}
	p.Messages = append(p.Messages, out.Choices[0].Message.ToParam(), openai.ToolMessage(`{"temp":21}`, "call_1"))
	a.SetDefault("m1", fakeupstream.Step{Reply: "21 degrees"})
	out, err = c.Chat.Completions.New(context.Background(), p)
	if err != nil || out.Choices[0].Message.Content != "21 degrees" {
		t.Fatalf("after tool result: %v %+v", err, out)
	}
	last := a.Requests()[len(a.Requests())-1].Body.Messages
	if m := last[len(last)-1]; m.Role != "tool" || m.ToolCallID != "call_1" {
		t.Errorf("tool message forwarded as %+v", m)
	}
}

func TestFallbackWhenPrimaryFails(t *testing.T) {
	tests := []struct {
		name      string
		steps     []fakeupstream.Step
		aCalls    int
		wantRoute string
	}{
		{"500 twice: retry, then fallback", []fakeupstream.Step{{Status: 500}, {Status: 500}}, 2, "b/m1"},
		{"429 with a long Retry-After fails over at once", []fakeupstream.Step{{Status: 429, RetryAfter: "120"}}, 1, "b/m1"},
		{"429 with a short retry-after-ms is retried", []fakeupstream.Step{{Status: 429, RetryAfterMs: "30"}}, 2, "a/m1"},
		{"503 then success is a retry, not a fallback", []fakeupstream.Step{{Status: 503}}, 2, "a/m1"},
		{"connection dropped, then success", []fakeupstream.Step{{Fault: fakeupstream.Abort}}, 2, "a/m1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, a, b := twoFakes(t, ", max_retries: 1")
			a.Script("m1", tc.steps...)
			var resp *http.Response
			out, err := g.client("k").Chat.Completions.New(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp))
			if err != nil {
				t.Fatal(err)
			}
			wantRoute := tc.wantRoute
			if got := resp.Header.Get("X-Gavel-Route"); got != wantRoute {
				t.Errorf("route = %s, want %s (content %q)", got, wantRoute, out.Choices[0].Message.Content)
			}
			if a.Count("m1") != tc.aCalls {
				t.Errorf("a called %d times, want %d", a.Count("m1"), tc.aCalls)
			}
			if wantRoute == "b/m1" && b.Count("m1") != 1 {
				t.Errorf("b called %d times", b.Count("m1"))
			}
		})
	}
}

func TestStreamFailsOverBeforeFirstByte(t *testing.T) {
	g, a, b := twoFakes(t, ", max_retries: 0")
	a.Script("m1", fakeupstream.Step{Status: 502})
	b.SetDefault("m1", fakeupstream.Step{Reply: "from b"})
	var resp *http.Response
	s := g.client("k").Chat.Completions.NewStreaming(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp))
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "from b" || resp.Header.Get("X-Gavel-Route") != "b/m1" {
		t.Fatalf("content %q route %s", acc.Choices[0].Message.Content, resp.Header.Get("X-Gavel-Route"))
	}
}

func TestStreamFailureAfterFirstByteEndsWithError(t *testing.T) {
	tests := []struct {
		name  string
		fault fakeupstream.Fault
		extra string
	}{
		{"connection dropped", fakeupstream.Abort, ""},
		{"error event", fakeupstream.MidStreamError, ""},
		// A stalled upstream ends the stream after the attempt timeout, not the request's.
		{"upstream stalls", fakeupstream.Hang, ", timeout: 300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, a, b := twoFakes(t, tc.extra)
			a.SetDefault("m1", fakeupstream.Step{Reply: "a b c d e f", Chunks: 6, Fault: tc.fault, FaultAfter: 3})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s := g.client("k").Chat.Completions.NewStreaming(ctx, userParams("chat", "hi"))
			n := 0
			for s.Next() {
				n++
			}
			if s.Err() == nil {
				t.Fatal("stream ended without an error")
			}
			if ctx.Err() != nil {
				t.Fatal("stream hung until the deadline")
			}
			if n == 0 {
				t.Error("no chunk reached the client before the failure")
			}
			if a.Count("m1") != 1 || b.Count("m1") != 0 {
				t.Errorf("retried after the first byte: a=%d b=%d", a.Count("m1"), b.Count("m1"))
			}
			waitNoStreams(t, a)
		})
	}
}

func TestBreakerOpensAndTrafficSkipsIt(t *testing.T) {
	g, a, b := twoFakes(t, ", max_retries: 0, breaker: {failure_threshold: 3, delay: 1h}")
	a.SetDefault("m1", fakeupstream.Step{Status: 500})
	c := g.client("k")
	for i := 0; i < 10; i++ {
		var resp *http.Response
		if _, err := c.Chat.Completions.New(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.Header.Get("X-Gavel-Route") != "b/m1" {
			t.Fatalf("request %d answered by %s", i, resp.Header.Get("X-Gavel-Route"))
		}
	}
	if got := a.Count("m1"); got != 3 {
		t.Errorf("a was called %d times; the breaker should open after 3 failures", got)
	}
	if b.Count("m1") != 10 {
		t.Errorf("b answered %d", b.Count("m1"))
	}
	text := g.text(t, "/metrics")
	if !strings.Contains(text, `gavel_circuit_breaker_state{model="m1",provider="a"} 2`) {
		t.Errorf("metrics lack the open breaker")
	}
	if !strings.Contains(text, `gavel_fallbacks_total{from="a/m1",to="b/m1"}`) {
		t.Errorf("metrics lack fallbacks")
	}

	// With only the broken target, the policy sees the open circuit and answers 503 at once.
	_, err := c.Chat.Completions.New(context.Background(), userParams("solo", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.Code != "no_available_target" {
		t.Fatalf("solo = %v", err)
	}
	if a.Count("m1") != 3 {
		t.Errorf("an open circuit was called")
	}
	// The 503 says when to come back: when a's breaker lets a probe through (1h).
	resp, body := g.post(t, "/v1/chat/completions", `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`, nil)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 503 || ra < 3590 || ra > 3600 {
		t.Errorf("solo: %d Retry-After %q %v; want 503 with the breaker's remaining delay (about 3600 s)", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestAllTargetsFail502WithUpstreamReason(t *testing.T) {
	g, a, b := twoFakes(t, ", max_retries: 0")
	a.SetDefault("m1", fakeupstream.Step{Status: 500, Message: "a is down"})
	b.SetDefault("m1", fakeupstream.Step{Status: 503, Message: "b is overloaded"})
	resp, body := g.post(t, "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != 502 {
		t.Fatalf("status = %d %v", resp.StatusCode, body)
	}
	e := body["error"].(map[string]any)
	if e["code"] != "upstream_error" || !strings.Contains(e["message"].(string), "b is overloaded") || e["type"] != "server_error" {
		t.Errorf("error = %v", e)
	}
	if resp.Header.Get("X-Gavel-Decision-Id") == "" || resp.Header.Get("X-Gavel-Bundle-Revision") != "e2e-1" {
		t.Errorf("headers = %v", resp.Header)
	}
}

func TestUpstreamClientErrorPassesThrough(t *testing.T) {
	g, a, b := twoFakes(t, "")
	a.Script("m1", fakeupstream.Step{Status: 400, Code: "context_length_exceeded", Message: "too long"})
	_, err := g.client("k").Chat.Completions.New(context.Background(), userParams("chat", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "context_length_exceeded" {
		t.Fatalf("err = %v", err)
	}
	if a.Count("m1") != 1 || b.Count("m1") != 0 {
		t.Errorf("a 400 was retried or failed over: a=%d b=%d", a.Count("m1"), b.Count("m1"))
	}
}

func TestVirtualKeys(t *testing.T) {
	secret, hash, _ := auth.NewKey()
	up := fakeupstream.New()
	defer up.Close()
	keys := map[string]any{hash: map[string]any{"key_id": "k-search", "user": "ana", "team": "search", "project": "p", "tier": "gold"}}
	dir := bundle(t, "keys-1", twoProviders(keys))
	g := start(t, fmt.Sprintf("policy: %s\nproviders:\n  - {name: a, type: openai, base_url: %q}\n", dir, up.URL()), nil)

	_, err := g.client("wrong").Chat.Completions.New(context.Background(), userParams("solo", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
		t.Fatalf("bad key: %v", err)
	}
	resp, body := g.post(t, "/v1/chat/completions", `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != 401 || body["error"].(map[string]any)["type"] != "authentication_error" {
		t.Fatalf("no key: %d %v", resp.StatusCode, body)
	}
	out, err := g.client(secret).Chat.Completions.New(context.Background(), userParams("solo", "hi"))
	if err != nil || out.Choices[0].Message.Content != "Hello from m1" {
		t.Fatalf("good key: %v", err)
	}
	if _, err := g.client("wrong").Models.List(context.Background()); err == nil {
		t.Error("models listed with a bad key")
	}
}

func TestKeysFileAndNonLoopbackRefusal(t *testing.T) {
	// Without keys gavel refuses to listen beyond loopback.
	_, err := gatewayNew(t, "listen: 0.0.0.0:0\n")
	if err == nil || !strings.Contains(err.Error(), "refusing to listen") {
		t.Fatalf("err = %v", err)
	}
	secret, hash, _ := auth.NewKey()
	path := t.TempDir() + "/keys.yaml"
	writeFile(t, path, fmt.Sprintf("keys:\n  - sha256: %s\n    key_id: k1\n    team: infra\n", hash))
	g := start(t, "keys_file: "+path+"\n", nil)
	if _, err := g.client("nope").Chat.Completions.New(context.Background(), userParams("fast", "hi")); err == nil {
		t.Fatal("unknown key accepted")
	}
	out, err := g.client(secret).Chat.Completions.New(context.Background(), userParams("fast", "hi"))
	if err != nil || !strings.HasPrefix(out.Choices[0].Message.Content, "mock reply from mock-small") {
		t.Fatalf("mock via key: %v %+v", err, out)
	}
}

func TestBadRequests(t *testing.T) {
	g := start(t, "max_body_bytes: 4096\n", nil)
	big := `{"model":"fast","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"malformed JSON", `{"model":`, 400, "invalid_json"},
		{"not an object", `[1,2]`, 400, "invalid_json"},
		{"wrong type", `{"model":"fast","messages":"hi"}`, 400, "invalid_json"},
		{"empty body", ``, 400, "invalid_body"},
		{"missing model", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "missing_required_parameter"},
		{"missing messages", `{"model":"fast"}`, 400, "missing_required_parameter"},
		{"bad role", `{"model":"fast","messages":[{"role":"robot","content":"hi"}]}`, 400, "invalid_value"},
		{"bad temperature", `{"model":"fast","temperature":7,"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_value"},
		{"unknown model", `{"model":"gpt-17","messages":[{"role":"user","content":"hi"}]}`, 404, "model_not_found"},
		// Named explicitly, its provider not configured (only the mock is): 404, not the mock's answer.
		{"unconfigured provider hint", `{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`, 404, "model_not_found"},
		{"too large", big, 413, "request_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.post(t, "/v1/chat/completions", tc.body, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d: %v", resp.StatusCode, tc.status, body)
			}
			if tc.code == "" {
				return
			}
			e, ok := body["error"].(map[string]any)
			if !ok || e["code"] != tc.code || e["message"] == "" || e["type"] == nil {
				t.Errorf("error = %v, want code %s", body, tc.code)
			}
		})
	}
	resp, body := g.get(t, "/v1/nope")
	if resp.StatusCode != 404 || body["error"].(map[string]any)["code"] != "unknown_url" {
		t.Errorf("unknown URL: %d %v", resp.StatusCode, body)
	}
}

func TestClientDisconnectMidStreamCancelsUpstream(t *testing.T) {
	g, a, _ := twoFakes(t, "")
	a.SetDefault("m1", fakeupstream.Step{Reply: strings.Repeat("w ", 200), Chunks: 200, ChunkInterval: 20 * time.Millisecond})
	c := g.client("k")
	// Warm up so pooled connections and the planner exist in the baseline.
	if _, err := c.Chat.Completions.New(context.Background(), userParams("chat", "warm")); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	s := c.Chat.Completions.NewStreaming(ctx, userParams("chat", "long"))
	for i := 0; i < 3 && s.Next(); i++ {
	}
	if a.ActiveStreams() != 1 {
		t.Fatalf("active upstream streams = %d", a.ActiveStreams())
	}
	cancel()
	s.Close()
	waitNoStreams(t, a)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after\n%s", base, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestModelsHealthReadiness(t *testing.T) {
	g := start(t, "", nil)
	list, err := g.client("k").Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range list.Data {
		ids[m.ID] = true
	}
	for _, want := range []string{"smart", "fast", "cheap", "mock/mock-large"} {
		if !ids[want] {
			t.Errorf("models lack %s: %v", want, ids)
		}
	}
	if ids["openai/gpt-4o"] {
		t.Error("a catalog model of an unconfigured provider is listed")
	}
	m, err := g.client("k").Models.Get(context.Background(), "smart")
	if err != nil || m.ID != "smart" {
		t.Errorf("get model: %v", err)
	}
	resp, body := g.get(t, "/healthz")
	if resp.StatusCode != 200 || body["status"] != "ok" {
		t.Errorf("healthz %d %v", resp.StatusCode, body)
	}
	resp, body = g.get(t, "/readyz")
	if resp.StatusCode != 200 || body["bundle"].(map[string]any)["revision"] != "default-1" {
		t.Errorf("readyz %d %v", resp.StatusCode, body)
	}
}

func TestDegradeStreamAndABHeadersFromPolicy(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	data := twoProviders(nil)
	dir := bundle(t, "degrade-1", data)
	// A governance decision that degrades streams to buffered calls, caps tokens and tags an A/B arm.
	writeFile(t, dir+"/decision.rego", `package gavel

import rego.v1

import data.gavel.route

decision := {
	"allow": true,
	"targets": route.targets,
	"reasons": route.reasons,
	"degrade": {"stream": false},
	"ab": {"experiment": "exp1", "arm": "b"},
	"limits": {"max_tokens": 7},
} if route.targets[0]

# Every request gets a decision: gavel refuses a bundle that leaves one undefined.
else := {"allow": false, "deny": {"status": 404, "code": "model_not_found", "message": "No route."}}
`)
	g := start(t, fmt.Sprintf("policy: %s\nproviders:\n  - {name: a, type: openai, base_url: %q}\n", dir, up.URL()), nil)
	var resp *http.Response
	p := userParams("solo", "hi")
	p.MaxTokens = openai.Int(100)
	s := g.client("k").Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "Hello from m1" {
		t.Errorf("content = %q", acc.Choices[0].Message.Content)
	}
	reqs := up.Requests()
	if len(reqs) != 1 || reqs[0].Stream || *reqs[0].Body.MaxTokens != 7 {
		t.Errorf("upstream should get a buffered call capped at 7 tokens: %+v", reqs[0].Body)
	}
	if resp.Header.Get("X-Gavel-Arm") != "b" || resp.Header.Get("X-Gavel-Experiment") != "exp1" || resp.Header.Get("X-Gavel-Degraded") != "stream" {
		t.Errorf("headers = %v", resp.Header)
	}
}

// waitNoStreams fails the test unless the upstream's streams all end within a few seconds:
// gavel must close upstream streams when the client or the upstream fails.
func waitNoStreams(t *testing.T, up *fakeupstream.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := up.WaitIdle(ctx); err != nil {
		t.Fatalf("upstream streams still open: %d", up.ActiveStreams())
	}
}

func TestHealthProbeTakesAFailingProviderOutOfRotation(t *testing.T) {
	g, a, b := twoFakes(t, ", health_check: {model: probe-model, interval: 20ms, failure_threshold: 2}")
	a.SetDefault("probe-model", fakeupstream.Step{Status: 503})
	deadline := time.Now().Add(5 * time.Second)
	for a.Count("probe-model") < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a health flip re-plans at once (Changed); let that evaluation finish
	var resp *http.Response
	if _, err := g.client("k").Chat.Completions.New(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Gavel-Route") != "b/m1" || a.Count("m1") != 0 || b.Count("m1") != 1 {
		t.Fatalf("route %s; a=%d b=%d: the unhealthy provider still got traffic", resp.Header.Get("X-Gavel-Route"), a.Count("m1"), b.Count("m1"))
	}
	// Recovery: one good probe brings it back.
	a.SetDefault("probe-model", fakeupstream.Step{})
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := g.client("k").Chat.Completions.New(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp)); err == nil && resp.Header.Get("X-Gavel-Route") == "a/m1" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the recovered provider never got traffic back")
}

func TestPolicyFromBundleTarball(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	b, err := policy.LoadPath(bundle(t, "tarball-7", twoProviders(nil)))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := opabundle.NewWriter(f).Write(*b); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g := start(t, fmt.Sprintf("policy: %s\nproviders:\n  - {name: a, type: openai, base_url: %q}\n", path, up.URL()), nil)
	var resp *http.Response
	if _, err := g.client("k").Chat.Completions.New(context.Background(), userParams("solo", "hi"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Gavel-Bundle-Revision") != "tarball-7" || resp.Header.Get("X-Gavel-Route") != "a/m1" {
		t.Errorf("headers = %v", resp.Header)
	}
}
