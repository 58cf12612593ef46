package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/test/fakegemini"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

func TestGeminiFromEnvironmentStreamingToolCallAndEmbeddings(t *testing.T) {
	up := fakegemini.New()
	defer up.Close()
	up.RequireAPIKey("gk-test")
	g := start(t, "", map[string]string{"GEMINI_API_KEY": "gk-test", "GEMINI_BASE_URL": up.URL()})
	c := g.client("k")

	up.SetDefault("gemini-2.5-flash", fakegemini.Step{Reply: "Checking the weather now.", Chunks: 3,
		ToolCalls: []fakegemini.ToolCall{{Name: "get_weather", Arguments: `{"city":"Paris"}`}}})
	p := userParams("gemini-2.5-flash", "weather in Paris?")
	p.Tools = weatherTool()
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	var resp *http.Response
	s := c.Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
	acc := openai.ChatCompletionAccumulator{}
	var calls []openai.FinishedChatCompletionToolCall
	for s.Next() {
		acc.AddChunk(s.Current())
		if tc, ok := acc.JustFinishedToolCall(); ok {
			calls = append(calls, tc)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "Checking the weather now." || len(calls) != 1 || calls[0].Arguments != `{"city":"Paris"}` {
		t.Fatalf("content %q calls %+v", acc.Choices[0].Message.Content, calls)
	}
	if acc.Choices[0].FinishReason != "tool_calls" || acc.Usage.TotalTokens == 0 {
		t.Errorf("finish %q usage %+v", acc.Choices[0].FinishReason, acc.Usage)
	}
	if resp.Header.Get("X-Gavel-Route") != "gemini/gemini-2.5-flash" {
		t.Errorf("route %s", resp.Header.Get("X-Gavel-Route"))
	}
	rec := up.Requests()[0]
	if rec.KeyFrom != fakegemini.KeyHeader || rec.Action != fakegemini.ActionStream || rec.Query.Get("alt") != "sse" {
		t.Errorf("gemini request: key from %q action %q query %v", rec.KeyFrom, rec.Action, rec.Query)
	}
	if rec.Body["systemInstruction"] == nil || rec.Body["tools"] == nil {
		t.Errorf("gemini body = %v", rec.Body)
	}

	// Safety blocks come back as content_filter.
	up.Script("gemini-2.5-flash", fakegemini.Step{FinishReason: fakegemini.FinishSafety})
	out, err := c.Chat.Completions.New(context.Background(), userParams("gemini-2.5-flash", "x"))
	if err != nil || out.Choices[0].FinishReason != "content_filter" {
		t.Errorf("safety: %v %+v", err, out)
	}

	emb, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "gemini/gemini-embedding-001",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}, Dimensions: openai.Int(32)})
	if err != nil || len(emb.Data) != 2 || len(emb.Data[0].Embedding) != 32 {
		t.Fatalf("gemini embeddings: %v %+v", err, emb)
	}
}

// piiFakes runs two providers: "a" (no PII tag) and "z" (zero-retention), alias "chat" → a, z.
func piiFakes(t *testing.T) (*gw, *fakeupstream.Server, *fakeupstream.Server) {
	t.Helper()
	a, z := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(z.Close)
	data := twoProviders(nil)
	data["catalog"].(map[string]any)["z/m1"] = entry("z", "m1")
	data["aliases"] = map[string]any{"chat": map[string]any{"candidates": []string{"a/m1", "z/m1"}}}
	data["providers"] = map[string]any{"a": map[string]any{"tags": []string{"us"}}, "z": map[string]any{"tags": []string{"zero_retention"}}}
	data["pii_policy"] = map[string]any{
		"pii_actions":      map[string]any{"default": map[string]any{"credit_card": "block", "email": "redact", "ip": "allow"}, "teams": map[string]any{}},
		"pii_requires_tag": "zero_retention",
		"deny_terms":       []string{"project falcon"},
	}
	dir := bundle(t, "pii-1", data)
	yaml := fmt.Sprintf("policy: %s\nproviders:\n  - {name: a, type: openai, base_url: %q}\n  - {name: z, type: openai, base_url: %q}\n", dir, a.URL(), z.URL())
	return start(t, yaml, nil), a, z
}

func TestPIIRedactBlockAndRestrict(t *testing.T) {
	g, a, z := piiFakes(t)
	c := g.client("k")

	// Redact: the email never leaves the gateway.
	var resp *http.Response
	_, err := c.Chat.Completions.New(context.Background(), userParams("chat", "Mail jane.doe@example.com the invoice"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	sent := string(a.Requests()[0].Raw)
	if strings.Contains(sent, "jane.doe@example.com") || !strings.Contains(sent, "[REDACTED_EMAIL]") {
		t.Errorf("upstream saw %s", sent)
	}

	// Block: a card number is refused with a clear 400.
	_, err = c.Chat.Completions.New(context.Background(), userParams("chat", "charge 4111 1111 1111 1111 please"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "pii_blocked" || !strings.Contains(apiErr.Message, "credit_card") {
		t.Fatalf("card: %v", err)
	}

	// Allowed PII only goes to providers tagged for it.
	_, err = c.Chat.Completions.New(context.Background(), userParams("chat", "why is 10.1.2.3 unreachable?"), option.WithResponseInto(&resp))
	if err != nil || resp.Header.Get("X-Gavel-Route") != "z/m1" {
		t.Fatalf("ip: %v route %s", err, resp.Header.Get("X-Gavel-Route"))
	}
	if a.Count("m1") != 1 || z.Count("m1") != 1 {
		t.Errorf("a=%d z=%d", a.Count("m1"), z.Count("m1"))
	}

	// Deny-listed terms.
	_, err = c.Chat.Completions.New(context.Background(), userParams("chat", "status of Project Falcon?"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "content_denied" {
		t.Fatalf("deny term: %v", err)
	}

	// Streams are redacted too.
	s := c.Chat.Completions.NewStreaming(context.Background(), userParams("chat", "ping bob@corp.example"))
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if last := string(a.Requests()[len(a.Requests())-1].Raw); strings.Contains(last, "bob@corp.example") {
		t.Errorf("stream upstream saw %s", last)
	}
}
