package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeanthropic"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// messagesRig is a gateway in front of an OpenAI-compatible provider "a" and an Anthropic
// provider "claude". The bundle routes Claude Code's model name by data: alias
// "claude-opus-5-5" (and "sonnet") to claude/claude-sonnet-4-5, where Messages requests
// pass through; alias "gpt" to a/m1, where they are translated.
type messagesRig struct {
	g          *gw
	a          *fakeupstream.Server
	c          *fakeanthropic.Server
	key, admin string
	logFile    string
	bundleDir  string
	data       map[string]any // the bundle's data
}

func newMessagesRig(t *testing.T, extraData map[string]any) *messagesRig {
	t.Helper()
	r := &messagesRig{a: fakeupstream.New(), c: fakeanthropic.New()}
	t.Cleanup(r.a.Close)
	t.Cleanup(r.c.Close)
	r.c.RequireAPIKey("ak-upstream")
	var keyHash, adminHash string
	r.key, keyHash, _ = auth.NewKey()
	r.admin, adminHash, _ = auth.NewKey()
	data := twoProviders(map[string]any{
		keyHash:   map[string]any{"key_id": "k-dev", "user": "dev", "team": "agents"},
		adminHash: map[string]any{"key_id": "k-admin", "team": "platform", "admin": true},
	})
	claude := entry("claude", "claude-sonnet-4-5")
	// Claude Code asks for up to 128k output tokens on top of a long system prompt.
	claude["context_window"], claude["max_output_tokens"] = 1000000, 128000
	claude["price"] = map[string]int{"input_musd_per_mtok": 3000000, "output_musd_per_mtok": 15000000,
		"cached_input_musd_per_mtok": 300000, "cache_write_musd_per_mtok": 3750000}
	data["catalog"].(map[string]any)["claude/claude-sonnet-4-5"] = claude
	data["aliases"] = map[string]any{
		"claude-opus-5-5": map[string]any{"strategy": "ordered", "candidates": []string{"claude/claude-sonnet-4-5"}},
		"sonnet":          map[string]any{"strategy": "ordered", "candidates": []string{"claude/claude-sonnet-4-5"}},
		"gpt":             map[string]any{"strategy": "ordered", "candidates": []string{"a/m1"}},
	}
	// Coding agents' prompts carry e-mail addresses and the like: the default library then
	// restricts them to providers tagged for PII, as an operator would tag Anthropic.
	data["providers"] = map[string]any{"claude": map[string]any{"tags": []string{"zero_retention"}}, "a": map[string]any{"tags": []string{"zero_retention"}}}
	data["pii_policy"] = map[string]any{"pii_requires_tag": "zero_retention"}
	for k, v := range extraData {
		data[k] = v
	}
	r.logFile = filepath.Join(t.TempDir(), "decisions.jsonl")
	r.data, r.bundleDir = data, bundle(t, "messages-1", data)
	r.g = start(t, fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: %q, api_key: k, max_retries: 0}
  - {name: claude, type: anthropic, base_url: %q, api_key: ak-upstream, max_retries: 0}
decision_log:
  file: %s
`, r.bundleDir, r.a.URL(), r.c.URL(), r.logFile), nil)
	return r
}

// sdk is the official Anthropic Go SDK pointed at gavel with a gavel key, retries off.
func (r *messagesRig) sdk(key string) *anthropic.Client {
	c := anthropic.NewClient(aoption.WithBaseURL(r.g.URL), aoption.WithAPIKey(key), aoption.WithMaxRetries(0),
		aoption.WithRequestTimeout(20*time.Second))
	return &c
}

func userTurn(text string) []anthropic.MessageParam {
	return []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))}
}

func TestMessagesNonStreamedPassthrough(t *testing.T) {
	r := newMessagesRig(t, nil)
	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Reply: "Hi from Claude."})
	var resp *http.Response
	msg, err := r.sdk(r.key).Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-opus-5-5", MaxTokens: 256, Messages: userTurn("hello"),
		System: []anthropic.TextBlockParam{{Text: "be brief"}},
	}, aoption.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "Hi from Claude." || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.InputTokens == 0 {
		t.Fatalf("message = %+v", msg)
	}
	if resp.Header.Get("X-Gavel-Route") != "claude/claude-sonnet-4-5" || resp.Header.Get("X-Gavel-Decision-Id") == "" {
		t.Errorf("headers %v", resp.Header)
	}
	got := r.c.Requests()[0]
	if got.Model != "claude-sonnet-4-5" || got.Header.Get("X-Api-Key") != "ak-upstream" || got.Header.Get("Anthropic-Version") != "2026-10-21" { // the client's version, forwarded
		t.Errorf("upstream request: model %q headers %v", got.Model, got.Header)
	}
}

// A body gavel does not model reaches an Anthropic target byte for byte but for its
// model: unknown fields, cache_control, thinking signatures, betas.
func TestMessagesPassthroughIsByteExact(t *testing.T) {
	r := newMessagesRig(t, nil)
	body := `{"model":"claude-opus-5-5",  "max_tokens":300,"system":[{"type":"text","text":"sys","cache_control":{"type":"ephemeral","ttl":"1h"}}],` +
		`"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"Sig+/=\u00e9"},{"type":"text","text":"a"}]},` +
		`{"role":"user","content":[{"type":"text","text":"more","cache_control":{"type":"ephemeral"}}]}],"context_management":{"edits":[]},"unknown_future":[1,2.50,"x"]}`
	resp, out := r.g.post(t, "/v1/messages?beta=true", body, map[string]string{"x-api-key": r.key, "anthropic-version": "2023-06-01",
		"anthropic-beta": "interleaved-thinking-2025-05-14,context-1m-2025-08-07"})
	if resp.StatusCode != 200 || out["type"] != "message" {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
	got := r.c.Requests()[0]
	want := strings.Replace(body, `"claude-opus-5-5"`, `"claude-sonnet-4-5"`, 1)
	if string(got.Raw) != want {
		t.Errorf("upstream body\n%s\nwant\n%s", got.Raw, want)
	}
	if got.Header.Get("Anthropic-Beta") != "interleaved-thinking-2025-05-14,context-1m-2025-08-07" {
		t.Errorf("betas not forwarded: %v", got.Header)
	}
}

// readEvents reads an SSE body into "event: …\ndata: …\n\n" records.
func readEvents(t *testing.T, body io.Reader) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteString(line + "\n")
	}
	return out
}

// A streamed tool call from an Anthropic target reaches the client event for event as
// the upstream sent it.
func TestMessagesStreamedToolUsePassthroughIsEventExact(t *testing.T) {
	r := newMessagesRig(t, nil)
	step := fakeanthropic.Step{Reply: "Checking.", ToolCalls: []fakeanthropic.ToolCall{{ID: "toolu_1", Name: "get_weather", Arguments: `{"city":"Paris"}`, Pieces: 3}}}
	r.c.SetDefault("claude-sonnet-4-5", step)
	body := `{"model":"MODEL","max_tokens":100,"stream":true,"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"weather?"}]}`

	// What the upstream sends for this request, asked directly.
	req, _ := http.NewRequest(http.MethodPost, r.c.URL()+"/v1/messages", strings.NewReader(strings.Replace(body, "MODEL", "claude-sonnet-4-5", 1)))
	req.Header.Set("x-api-key", "ak-upstream")
	req.Header.Set("anthropic-version", "2023-06-01")
	direct, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	want := readEvents(t, direct.Body)
	direct.Body.Close()

	req, _ = http.NewRequest(http.MethodPost, r.g.URL+"/v1/messages", strings.NewReader(strings.Replace(body, "MODEL", "claude-opus-5-5", 1)))
	req.Header.Set("x-api-key", r.key)
	req.Header.Set("anthropic-version", "2023-06-01")
	via, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := readEvents(t, via.Body)
	via.Body.Close()
	if via.StatusCode != 200 || len(got) != len(want) || len(got) < 10 {
		t.Fatalf("status %d, %d events, want %d:\n%s", via.StatusCode, len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		// The two answers differ only in the fake's message id sequence number.
		w := strings.Replace(want[i], "msg_fake0000000000000001", "msg_fake0000000000000002", 1)
		if got[i] != w {
			t.Errorf("event %d:\n%s\nwant\n%s", i, got[i], w)
		}
	}
	if !strings.Contains(strings.Join(got, ""), `"type":"input_json_delta"`) {
		t.Error("no input_json_delta in the relayed stream")
	}
}

// streamMessage runs a streamed request through the SDK and accumulates the answer.
func streamMessage(t *testing.T, c *anthropic.Client, p anthropic.MessageNewParams) (anthropic.Message, []string) {
	t.Helper()
	s := c.Messages.NewStreaming(context.Background(), p)
	var msg anthropic.Message
	var types []string
	for s.Next() {
		ev := s.Current()
		types = append(types, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return msg, types
}

func weatherToolParam() []anthropic.ToolUnionParam {
	return []anthropic.ToolUnionParam{anthropic.ToolUnionParamOfTool(anthropic.ToolInputSchemaParam{
		Properties: map[string]any{"city": map[string]any{"type": "string"}}}, "get_weather")}
}

// A Messages client's streamed tool use against an OpenAI-compatible target: the request
// is translated to Chat Completions and the chunks back into Anthropic's events.
func TestMessagesStreamedToolUseTranslatedToOpenAI(t *testing.T) {
	r := newMessagesRig(t, nil)
	r.a.SetDefault("m1", fakeupstream.Step{Reply: "Let me look.", ToolCalls: []fakeupstream.ToolCall{{ID: "call_9", Name: "get_weather", Arguments: `{"city":"Paris"}`, Pieces: 3}}})
	p := anthropic.MessageNewParams{Model: "gpt", MaxTokens: 200, Messages: userTurn("weather in Paris?"), Tools: weatherToolParam(),
		System: []anthropic.TextBlockParam{{Text: "be brief"}}}
	msg, types := streamMessage(t, r.sdk(r.key), p)
	if msg.StopReason != anthropic.StopReasonToolUse || len(msg.Content) != 2 {
		t.Fatalf("message %+v", msg)
	}
	if msg.Content[0].Type != "text" || msg.Content[0].Text != "Let me look." {
		t.Errorf("text block %+v", msg.Content[0])
	}
	tu := msg.Content[1]
	if tu.Type != "tool_use" || tu.ID != "call_9" || tu.Name != "get_weather" || string(tu.Input) != `{"city":"Paris"}` {
		t.Errorf("tool_use block %+v input %s", tu, tu.Input)
	}
	if msg.Usage.OutputTokens == 0 || msg.Usage.InputTokens == 0 {
		t.Errorf("usage %+v", msg.Usage)
	}
	joined := strings.Join(types, ",")
	// (The SDK does not hand pings to its caller.)
	if !strings.HasPrefix(joined, "message_start,content_block_start,content_block_delta") || !strings.HasSuffix(joined, "content_block_stop,message_delta,message_stop") {
		t.Errorf("events %s", joined)
	}
	// The upstream got Chat Completions: the system prompt first, the tool as a function.
	got := r.a.Requests()[0].Body
	if got.Messages[0].Role != "system" || len(got.Tools) != 1 || got.Tools[0].Type != "function" || got.Tools[0].Function.Name != "get_weather" {
		t.Errorf("translated request %+v", got)
	}

	// The tool result goes back, translated as a tool message, and the answer comes back.
	r.a.SetDefault("m1", fakeupstream.Step{Reply: "21 degrees."})
	p.Messages = append(p.Messages, msg.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock("call_9", `{"temp":21}`, false)))
	out, err := r.sdk(r.key).Messages.New(context.Background(), p)
	if err != nil || out.Content[0].Text != "21 degrees." {
		t.Fatalf("after the tool result: %v %+v", err, out)
	}
	last := r.a.Requests()[1].Body.Messages
	if tm := last[len(last)-1]; tm.Role != "tool" || tm.ToolCallID != "call_9" {
		t.Errorf("tool result as %+v", tm)
	}
}

// Thinking blocks and their signatures come back from an Anthropic target and go back to
// it on the next turn unchanged.
func TestMessagesThinkingRoundTrip(t *testing.T) {
	r := newMessagesRig(t, nil)
	sig := "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds/+=="
	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Thinking: "Let me think about 27*453.", Signature: sig, Reply: "12231"})
	p := anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 4000, Messages: userTurn("27*453?"),
		Thinking: anthropic.ThinkingConfigParamOfEnabled(2048)}
	msg, types := streamMessage(t, r.sdk(r.key), p)
	if len(msg.Content) != 2 || msg.Content[0].Type != "thinking" || msg.Content[0].Signature != sig || msg.Content[0].Thinking != "Let me think about 27*453." {
		t.Fatalf("content %+v", msg.Content)
	}
	if !strings.Contains(strings.Join(types, ","), "content_block_delta") {
		t.Errorf("events %v", types)
	}
	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Reply: "Yes."})
	p.Messages = append(p.Messages, msg.ToParam(), anthropic.NewUserMessage(anthropic.NewTextBlock("sure?")))
	out, err := r.sdk(r.key).Messages.New(context.Background(), p)
	if err != nil || out.Content[0].Text != "Yes." {
		t.Fatalf("second turn: %v %+v", err, out)
	}
	raw := string(r.c.Requests()[1].Raw)
	if !strings.Contains(raw, `"signature":"`+sig+`"`) || !strings.Contains(raw, `"thinking":"Let me think about 27*453."`) {
		t.Errorf("the thinking block did not reach the upstream intact: %s", raw)
	}
}

func TestMessagesCountTokens(t *testing.T) {
	r := newMessagesRig(t, nil)
	c := r.sdk(r.key)
	res, err := c.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{Model: "claude-opus-5-5", Messages: userTurn("count me")})
	if err != nil {
		t.Fatal(err)
	}
	got := r.c.Requests()[0]
	if got.Path != "/v1/messages/count_tokens" || res.InputTokens != int64(fakeanthropic.CountTokens(got.Raw)) {
		t.Errorf("count %d from %s %s", res.InputTokens, got.Path, got.Raw)
	}
	// A target that cannot count: gavel's estimate, said to be one.
	var resp *http.Response
	res, err = c.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{Model: "gpt", Messages: userTurn("count me")}, aoption.WithResponseInto(&resp))
	if err != nil || res.InputTokens <= 0 || resp.Header.Get("X-Gavel-Estimated") != "true" {
		t.Fatalf("estimate: %v %+v %v", err, res, resp.Header)
	}
	if r.a.Count("m1") != 0 {
		t.Error("counting called the OpenAI upstream")
	}
}

// anthropicErr returns the SDK's error and the error body as the client got it.
func anthropicErr(t *testing.T, err error) (*anthropic.Error, map[string]any) {
	t.Helper()
	var ae *anthropic.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an *anthropic.Error", err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(ae.RawJSON()), &body); err != nil {
		t.Fatalf("error body %q: %v", ae.RawJSON(), err)
	}
	return ae, body
}

func errType(body map[string]any) string {
	if body["type"] != "error" {
		return "<not an Anthropic error>"
	}
	e, _ := body["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

func TestMessagesErrorsInAnthropicShape(t *testing.T) {
	r := newMessagesRig(t, nil)
	p := anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 10, Messages: userTurn("hi")}

	_, err := r.sdk("gvl-wrong").Messages.New(context.Background(), p)
	ae, body := anthropicErr(t, err)
	if ae.StatusCode != 401 || errType(body) != "authentication_error" {
		t.Errorf("bad key: %d %v", ae.StatusCode, body)
	}

	// A bearer token is a gavel key too.
	resp, out := r.g.post(t, "/v1/messages", `{"model":"sonnet","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"Authorization": "Bearer " + r.key})
	if resp.StatusCode != 200 || out["type"] != "message" {
		t.Errorf("bearer: %d %v", resp.StatusCode, out)
	}

	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Status: 429, RetryAfter: "7"})
	var hr *http.Response
	_, err = r.sdk(r.key).Messages.New(context.Background(), p, aoption.WithResponseInto(&hr))
	ae, body = anthropicErr(t, err)
	if ae.StatusCode != 429 || errType(body) != "rate_limit_error" || ae.Response.Header.Get("Retry-After") != "7" {
		t.Errorf("upstream 429: %d %v retry-after %q", ae.StatusCode, body, ae.Response.Header.Get("Retry-After"))
	}

	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Status: 529})
	_, err = r.sdk(r.key).Messages.New(context.Background(), p)
	ae, body = anthropicErr(t, err)
	if ae.StatusCode != 529 || errType(body) != "overloaded_error" {
		t.Errorf("upstream 529: %d %v", ae.StatusCode, body)
	}

	// Requests the API would reject are the client's 400, in the same shape.
	for _, bad := range []string{`{"model":"sonnet","messages":[{"role":"user","content":"hi"}]}`, `{"model":"sonnet","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`, `[1]`} {
		resp, out := r.g.post(t, "/v1/messages", bad, map[string]string{"x-api-key": r.key})
		if resp.StatusCode != 400 || errType(out) != "invalid_request_error" {
			t.Errorf("%s: %d %v", bad, resp.StatusCode, out)
		}
	}

	// A failure after the stream started is an error event.
	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Reply: "one two three four", Fault: fakeanthropic.MidStreamError, FaultAfter: 4})
	s := r.sdk(r.key).Messages.NewStreaming(context.Background(), p)
	for s.Next() {
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "overloaded_error") {
		t.Errorf("mid-stream error: %v", err)
	}
}

// Both decisions are logged with the endpoint and protocol, and the metrics count the
// endpoint.
func TestMessagesDecisionsLoggedAndCounted(t *testing.T) {
	r := newMessagesRig(t, nil)
	c := r.sdk(r.key)
	if _, err := c.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 10, Messages: userTurn("hi")}); err != nil {
		t.Fatal(err)
	}
	streamMessage(t, c, anthropic.MessageNewParams{Model: "gpt", MaxTokens: 10, Messages: userTurn("hi")})
	lines := waitDecisionLines(t, r.logFile, 2)
	for _, l := range lines {
		if !strings.Contains(l, `"endpoint":"messages"`) || !strings.Contains(l, `"protocol":"anthropic"`) {
			t.Errorf("decision log line %s", l)
		}
	}
	m := r.g.text(t, "/metrics")
	if !strings.Contains(m, `endpoint="messages"`) {
		t.Errorf("metrics:\n%s", grepLines(m, "gavel_requests_total"))
	}
}

// waitDecisionLines waits for n lines in a decision log file.
func waitDecisionLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("decision log has %d lines, want %d:\n%s", len(lines), n, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A stream's real usage, cache reads and writes included, is charged at the catalog's
// prices: 10 input, 1000 cache reads, 100 cache writes, 20 output tokens on Sonnet.
func TestMessagesStreamChargesCacheTokens(t *testing.T) {
	r := newMessagesRig(t, map[string]any{"budgets": []any{map[string]any{"name": "agents-daily", "scope": "team", "period": "day", "limit_musd": 1000000, "hard": true}}})
	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Reply: "ok", Usage: &fakeanthropic.Usage{InputTokens: 10, CacheReadInputTokens: 1000, CacheCreationInputTokens: 100, OutputTokens: 20}})
	streamMessage(t, r.sdk(r.key), anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 50, Messages: userTurn("hi")})
	want := int64((10*3000000 + 1000*300000 + 100*3750000 + 20*15000000 + 999999) / 1000000)
	deadline := time.Now().Add(3 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, r.g.URL+"/v1/gavel/spend?scope=team&id=agents", nil)
		req.Header.Set("Authorization", "Bearer "+r.admin)
		_, body := do(t, req)
		var spent int64
		for _, d := range body["data"].([]any) {
			spent += int64(d.(map[string]any)["spent_micro_usd"].(float64))
		}
		if spent == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spent %d µUSD, want %d", spent, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// input.request.fields names a Messages body's members, so the operator's deny_fields
// governs agent traffic as it governs chat: here, extended thinking is not allowed.
func TestMessagesFieldsGovernedByPolicy(t *testing.T) {
	r := newMessagesRig(t, map[string]any{"pii_policy": map[string]any{"pii_requires_tag": "zero_retention", "deny_fields": []string{"thinking"}}})
	p := anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 4000, Messages: userTurn("hi")}
	if _, err := r.sdk(r.key).Messages.New(context.Background(), p); err != nil {
		t.Fatalf("without thinking: %v", err)
	}
	p.Thinking = anthropic.ThinkingConfigParamOfEnabled(2048)
	_, err := r.sdk(r.key).Messages.New(context.Background(), p)
	ae, body := anthropicErr(t, err)
	if ae.StatusCode != 400 || errType(body) != "invalid_request_error" || !strings.Contains(ae.RawJSON(), "thinking") {
		t.Errorf("with thinking: %d %v", ae.StatusCode, body)
	}
	if n := r.c.Count("claude-sonnet-4-5"); n != 1 {
		t.Errorf("upstream called %d times, want once", n)
	}
	lines := waitDecisionLines(t, r.logFile, 2)
	if !strings.Contains(lines[1], `"fields":["max_tokens","messages","model","thinking"]`) {
		t.Errorf("decision input fields: %.3000s", lines[1])
	}
}

// An Anthropic target that is overloaded fails over, within the request, to a translated
// OpenAI-protocol target: the client sees one answer in Anthropic's format.
func TestMessagesFailoverFromPassthroughToTranslated(t *testing.T) {
	r := newMessagesRig(t, map[string]any{"aliases": map[string]any{
		"agent": map[string]any{"strategy": "ordered", "candidates": []string{"claude/claude-sonnet-4-5", "a/m1"}}}})
	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Status: 529})
	r.a.SetDefault("m1", fakeupstream.Step{Reply: "from the fallback"})
	for _, stream := range []bool{false, true} {
		p := anthropic.MessageNewParams{Model: "agent", MaxTokens: 50, Messages: userTurn("hi")}
		var text string
		if stream {
			msg, _ := streamMessage(t, r.sdk(r.key), p)
			text = msg.Content[0].Text
		} else {
			msg, err := r.sdk(r.key).Messages.New(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			text = msg.Content[0].Text
		}
		if text != "from the fallback" {
			t.Errorf("stream=%v: %q", stream, text)
		}
	}
	if r.c.Count("claude-sonnet-4-5") != 2 || r.a.Count("m1") != 2 {
		t.Errorf("claude %d, a %d", r.c.Count("claude-sonnet-4-5"), r.a.Count("m1"))
	}
}

// One budget governs every endpoint: spent through /v1/messages, it refuses the key's next
// request on /v1/responses and /v1/chat/completions.
func TestMessagesBudgetSpentRefusesOtherEndpoints(t *testing.T) {
	r := newMessagesRig(t, map[string]any{"budgets": []any{map[string]any{"name": "agents-daily", "scope": "team", "period": "day", "limit_musd": 2000, "hard": true}}})
	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Reply: "ok", Usage: &fakeanthropic.Usage{InputTokens: 100, OutputTokens: 200}})
	// 100 × 3 + 200 × 15 = 3300 µUSD > 2000: the first request is admitted (its estimate
	// fits), the budget is spent past its limit by its real usage.
	if _, err := r.sdk(r.key).Messages.New(context.Background(), anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 50, Messages: userTurn("hi")}); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer " + r.key}
	resp, body := r.g.post(t, "/v1/responses", `{"model":"gpt","input":"hi","max_output_tokens":16}`, auth)
	if resp.StatusCode != 429 {
		t.Errorf("responses after the budget was spent: %d %v", resp.StatusCode, body)
	}
	resp, body = r.g.post(t, "/v1/chat/completions", `{"model":"gpt","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, auth)
	if resp.StatusCode != 429 {
		t.Errorf("chat after the budget was spent: %d %v", resp.StatusCode, body)
	}
	resp, body = r.g.post(t, "/v1/messages", `{"model":"sonnet","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, map[string]string{"x-api-key": r.key})
	if resp.StatusCode != 429 || errType(body) != "rate_limit_error" {
		t.Errorf("messages after the budget was spent: %d %v", resp.StatusCode, body)
	}
}

// A translated stream's message_start carries an input count, as Anthropic's does (Claude
// Code reads it there): gavel's estimate, since an OpenAI-compatible upstream reports its
// usage last; the message the SDK accumulates ends with the upstream's exact usage.
func TestMessagesTranslatedStreamReportsInputTokensAtStart(t *testing.T) {
	r := newMessagesRig(t, nil)
	r.a.SetDefault("m1", fakeupstream.Step{Reply: "Short answer.", Usage: &adapters.Usage{PromptTokens: 321, CompletionTokens: 3, TotalTokens: 324}})
	s := r.sdk(r.key).Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{Model: "gpt", MaxTokens: 50,
		Messages: userTurn("Summarise the benefits of policy-as-code for routing LLM traffic, please.")})
	var msg anthropic.Message
	var atStart int64 = -1
	for s.Next() {
		ev := s.Current()
		if ev.Type == "message_start" {
			atStart = ev.Message.Usage.InputTokens
		}
		if err := msg.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if atStart <= 0 || atStart == 321 {
		t.Errorf("message_start input_tokens %d, want gavel's estimate (> 0, not the upstream's final count)", atStart)
	}
	if msg.Usage.InputTokens != 321 || msg.Usage.OutputTokens != 3 {
		t.Errorf("final usage %+v, want the upstream's 321 in / 3 out", msg.Usage)
	}
}

// count_tokens has an endpoint of its own in the policy's input, the decision log and the
// metrics: counting is not generating, and a policy or a dashboard tells them apart.
func TestMessagesCountTokensHasItsOwnEndpoint(t *testing.T) {
	r := newMessagesRig(t, nil)
	if _, err := r.sdk(r.key).Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{Model: "claude-opus-5-5", Messages: userTurn("count me")}); err != nil {
		t.Fatal(err)
	}
	lines := waitDecisionLines(t, r.logFile, 1)
	if !strings.Contains(lines[0], `"endpoint":"count_tokens"`) || !strings.Contains(lines[0], `"protocol":"anthropic"`) {
		t.Errorf("decision log line %s", lines[0])
	}
	requests := grepLines(r.g.text(t, "/metrics"), "gavel_requests_total")
	if !strings.Contains(requests, `endpoint="count_tokens"`) || strings.Contains(requests, `endpoint="messages"`) {
		t.Errorf("metrics:\n%s", requests)
	}
}

// Routes under /v1/messages that gavel does not serve answer in Anthropic's error shape,
// which is all the Anthropic SDKs and Claude Code parse: not_found_error, with 404 for an
// unknown path and 405 for a method the path does not take.
func TestMessagesUnknownRoutesAnswerInAnthropicShape(t *testing.T) {
	r := newMessagesRig(t, nil)
	c := r.sdk(r.key)
	_, err := c.Messages.Batches.New(context.Background(), anthropic.MessageBatchNewParams{Requests: []anthropic.MessageBatchNewParamsRequest{
		{CustomID: "a", Params: anthropic.MessageBatchNewParamsRequestParams{Model: "sonnet", MaxTokens: 10, Messages: userTurn("hi")}}}})
	ae, body := anthropicErr(t, err)
	if ae.StatusCode != http.StatusNotFound || errType(body) != "not_found_error" {
		t.Errorf("POST /v1/messages/batches: %d %s", ae.StatusCode, ae.RawJSON())
	}
	var out map[string]any
	var resp *http.Response
	err = c.Get(context.Background(), "v1/messages", nil, &out, aoption.WithResponseInto(&resp))
	ae, body = anthropicErr(t, err)
	if ae.StatusCode != http.StatusMethodNotAllowed || errType(body) != "not_found_error" || !strings.Contains(ae.RawJSON(), "GET /v1/messages") {
		t.Errorf("GET /v1/messages: %d %s", ae.StatusCode, ae.RawJSON())
	}
	// The OpenAI routes keep OpenAI's shape.
	req, _ := http.NewRequest(http.MethodGet, r.g.URL+"/v1/chat/completions/nope", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var oai map[string]any
	json.NewDecoder(res.Body).Decode(&oai)
	if e, _ := oai["error"].(map[string]any); res.StatusCode != http.StatusNotFound || e["code"] != "unknown_url" {
		t.Errorf("OpenAI route: %d %v", res.StatusCode, oai)
	}
}

// A passed-through answer feeds its shadows' similarity like a translated one: the text
// of the message (non-streamed) or of its text deltas (streamed), read in the client's
// protocol. Here the shadow answers the primary's words exactly, so each similarity is 1.
func TestMessagesPassthroughFeedsShadowSimilarity(t *testing.T) {
	r := newMessagesRig(t, map[string]any{"ab_experiments": map[string]any{"exp-agents": map[string]any{
		"model":  "sonnet",
		"arms":   []any{map[string]any{"name": "claude", "weight_bp": 10000, "targets": []string{"claude/claude-sonnet-4-5"}}},
		"shadow": map[string]any{"sample_bp": 10000, "target": "a/m1"},
	}}})
	const answer = "The capital of France is Paris."
	r.c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Reply: answer})
	r.a.SetDefault("m1", fakeupstream.Step{Reply: answer})
	c := r.sdk(r.key)
	p := anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 50, Messages: userTurn("What is the capital of France?")}
	var resp *http.Response
	if _, err := c.Messages.New(context.Background(), p, aoption.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Gavel-Route") != "claude/claude-sonnet-4-5" || resp.Header.Get("X-Gavel-Experiment") != "exp-agents" {
		t.Fatalf("route %q experiment %q", resp.Header.Get("X-Gavel-Route"), resp.Header.Get("X-Gavel-Experiment"))
	}
	streamMessage(t, c, p)
	var m string
	eventually(t, "two shadow similarities", func() bool {
		m = r.g.text(t, "/metrics")
		return metric(m, "gavel_shadow_similarity_count", `experiment="exp-agents"`) == 2
	})
	if sum := metric(m, "gavel_shadow_similarity_sum", `experiment="exp-agents"`); sum != 2 {
		t.Errorf("similarity sum %v over 2 shadows, want 2 (each shadow answered the primary's words):\n%s", sum, grepLines(m, "gavel_shadow"))
	}
	if r.a.Count("m1") != 2 {
		t.Errorf("the shadow target got %d requests, want 2", r.a.Count("m1"))
	}
}
