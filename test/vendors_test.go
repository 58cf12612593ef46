package test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/gavel-gw/gavel/test/fakeanthropic"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// vendorFakes runs an OpenAI-compatible provider "a" and an Anthropic provider "claude";
// alias "chat" routes a/m1 first, then claude/claude-sonnet-4-5; alias "sonnet" goes to
// Claude directly.
func vendorFakes(t *testing.T) (*gw, *fakeupstream.Server, *fakeanthropic.Server) {
	t.Helper()
	a, c := fakeupstream.New(), fakeanthropic.New()
	t.Cleanup(a.Close)
	t.Cleanup(c.Close)
	c.RequireAPIKey("ak-test")
	data := twoProviders(nil)
	data["catalog"].(map[string]any)["claude/claude-sonnet-4-5"] = entry("claude", "claude-sonnet-4-5")
	data["aliases"] = map[string]any{
		"chat":   map[string]any{"strategy": "ordered", "candidates": []string{"a/m1", "claude/claude-sonnet-4-5"}},
		"sonnet": map[string]any{"strategy": "ordered", "candidates": []string{"claude/claude-sonnet-4-5"}},
	}
	dir := bundle(t, "vendors-1", data)
	yaml := fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: %q, api_key: k, max_retries: 0}
  - {name: claude, type: anthropic, base_url: %q, api_key: ak-test, max_retries: 0}
`, dir, a.URL(), c.URL())
	return start(t, yaml, nil), a, c
}

func weatherTool() []openai.ChatCompletionToolUnionParam {
	return []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:       "get_weather",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
	})}
}

func TestAnthropicStreamingToolCallThroughTheOpenAISDK(t *testing.T) {
	g, _, c := vendorFakes(t)
	args := `{"city":"Paris","unit":"celsius"}`
	c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Reply: "Let me check.", ToolCalls: []fakeanthropic.ToolCall{{ID: "toolu_1", Name: "get_weather", Arguments: args, Pieces: 4}}})
	p := userParams("sonnet", "weather in Paris?")
	p.Tools = weatherTool()
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	var resp *http.Response
	s := g.client("k").Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
	acc := openai.ChatCompletionAccumulator{}
	var finished []openai.FinishedChatCompletionToolCall
	chunks := 0
	for s.Next() {
		chunks++
		acc.AddChunk(s.Current())
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(finished) != 1 || finished[0].Name != "get_weather" || finished[0].Arguments != args || finished[0].ID != "toolu_1" {
		t.Fatalf("tool calls = %+v", finished)
	}
	ch := acc.Choices[0]
	if ch.Message.Content != "Let me check." || ch.FinishReason != "tool_calls" {
		t.Errorf("content %q finish %q", ch.Message.Content, ch.FinishReason)
	}
	if acc.Usage.PromptTokens == 0 || acc.Usage.CompletionTokens == 0 {
		t.Errorf("usage = %+v", acc.Usage)
	}
	if chunks < 8 {
		t.Errorf("%d chunks: the Anthropic stream was not translated event by event", chunks)
	}
	if resp.Header.Get("X-Gavel-Route") != "claude/claude-sonnet-4-5" {
		t.Errorf("route = %s", resp.Header.Get("X-Gavel-Route"))
	}
	// The upstream got a proper Messages API request: system on top, tools as input_schema.
	got := c.Requests()[0].Body
	if got["system"] != "be brief" || got["max_tokens"] == nil {
		t.Errorf("anthropic request = %v", got)
	}
	tools := got["tools"].([]any)
	if tools[0].(map[string]any)["input_schema"] == nil {
		t.Errorf("tools = %v", tools)
	}

	// The tool result goes back as a tool_result block, and Claude's answer comes back.
	out, err := g.client("k").Chat.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	p.Messages = append(p.Messages, out.Choices[0].Message.ToParam(), openai.ToolMessage(`{"temp":21}`, "toolu_1"))
	c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Reply: "It is 21 degrees."})
	out, err = g.client("k").Chat.Completions.New(context.Background(), p)
	if err != nil || out.Choices[0].Message.Content != "It is 21 degrees." {
		t.Fatalf("after the tool result: %v %+v", err, out)
	}
}

func TestCrossVendorFallbackInOneRequest(t *testing.T) {
	g, a, c := vendorFakes(t)
	a.SetDefault("m1", fakeupstream.Step{Status: 503, Message: "openai-compatible upstream down"})
	c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Reply: "Claude here."})
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			var resp *http.Response
			var content string
			if stream {
				s := g.client("k").Chat.Completions.NewStreaming(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp))
				acc := openai.ChatCompletionAccumulator{}
				for s.Next() {
					acc.AddChunk(s.Current())
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
				content = acc.Choices[0].Message.Content
			} else {
				out, err := g.client("k").Chat.Completions.New(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp))
				if err != nil {
					t.Fatal(err)
				}
				content = out.Choices[0].Message.Content
			}
			if content != "Claude here." || resp.Header.Get("X-Gavel-Route") != "claude/claude-sonnet-4-5" {
				t.Errorf("content %q route %s", content, resp.Header.Get("X-Gavel-Route"))
			}
		})
	}
	if a.Count("m1") != 2 || c.Count("claude-sonnet-4-5") != 2 {
		t.Errorf("a=%d claude=%d", a.Count("m1"), c.Count("claude-sonnet-4-5"))
	}
}

func TestAnthropicOverloadedMapsToRetryableAndFailsOver(t *testing.T) {
	g, a, c := vendorFakes(t)
	_ = a
	c.SetDefault("claude-sonnet-4-5", fakeanthropic.Step{Status: 529, Message: "Overloaded"})
	resp, body := g.post(t, "/v1/chat/completions", `{"model":"sonnet","messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != 502 || body["error"].(map[string]any)["code"] != "upstream_error" {
		t.Fatalf("529 everywhere: %d %v", resp.StatusCode, body)
	}
	c.Script("claude-sonnet-4-5", fakeanthropic.Step{Status: 400, Message: "prompt is too long: 250000 tokens > 200000 maximum"})
	resp, body = g.post(t, "/v1/chat/completions", `{"model":"sonnet","messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != 400 || body["error"].(map[string]any)["code"] != "context_length_exceeded" {
		t.Fatalf("context length: %d %v", resp.StatusCode, body)
	}
}
