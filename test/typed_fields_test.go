package test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/gavel-gw/gavel/test/fakegemini"
)

// seed and logprobs change the answer and Claude cannot express them: refused by default
// (400 naming both and the provider, nothing sent), dropped and named with drop_params:
// drop. store, which changes nothing the client relies on, is dropped either way and named.
func TestTypedFieldsClaudeCannotExpressAreRefusedOrDroppedAndSaid(t *testing.T) {
	params := userParams("sonnet", "hi")
	params.Seed = openai.Int(42)
	params.Logprobs = openai.Bool(true)
	params.Store = openai.Bool(true)

	t.Run("error by default", func(t *testing.T) {
		g, _, c, _ := fieldFakes(t, "", nil)
		_, err := g.client("k").Chat.Completions.New(context.Background(), params)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "unsupported_parameter" || apiErr.Param != "logprobs" {
			t.Fatalf("err = %v, want 400 unsupported_parameter", err)
		}
		for _, want := range []string{"claude", "'logprobs' and 'seed'", "drop_params: drop"} {
			if !strings.Contains(apiErr.Message, want) {
				t.Errorf("message %q does not say %q", apiErr.Message, want)
			}
		}
		if n := len(c.Requests()); n != 0 {
			t.Errorf("claude saw %d requests", n)
		}

		// Only the advisory field: answered, and the loss is said.
		var resp *http.Response
		only := userParams("sonnet", "hi")
		only.Store = openai.Bool(true)
		if _, err := g.client("k").Chat.Completions.New(context.Background(), only, option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		if h := resp.Header.Get("X-Gavel-Dropped-Params"); h != "store" {
			t.Errorf("X-Gavel-Dropped-Params = %q, want store", h)
		}
	})

	t.Run("drop", func(t *testing.T) {
		g, _, c, logFile := fieldFakes(t, "drop", nil)
		var resp *http.Response
		if _, err := g.client("k").Chat.Completions.New(context.Background(), params, option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		if h := resp.Header.Get("X-Gavel-Dropped-Params"); h != "logprobs,seed,store" {
			t.Errorf("X-Gavel-Dropped-Params = %q", h)
		}
		reqs := c.Requests()
		if len(reqs) != 1 {
			t.Fatalf("claude saw %d requests", len(reqs))
		}
		for _, f := range []string{"seed", "logprobs", "store"} {
			if _, ok := reqs[0].Body[f]; ok {
				t.Errorf("claude got %s: %s", f, reqs[0].Raw)
			}
		}
		ev := decisionEvent(t, logFile, resp.Header.Get("X-Gavel-Decision-Id"))
		if got := ev["custom"].(map[string]any)["dropped_params"]; !reflect.DeepEqual(got, []any{"logprobs", "seed", "store"}) {
			t.Errorf("decision log dropped_params = %v", got)
		}
	})
}

// reasoning_effort reaches Claude as extended thinking, with max_tokens above the budget,
// and parallel_tool_calls=false as disable_parallel_tool_use.
func TestReasoningEffortReachesClaudeAsThinking(t *testing.T) {
	g, _, c, _ := fieldFakes(t, "", nil)
	params := userParams("sonnet", "plan a trip")
	params.ReasoningEffort = shared.ReasoningEffortHigh
	params.MaxCompletionTokens = openai.Int(500)
	params.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "get_time"})}
	params.ParallelToolCalls = openai.Bool(false)
	var resp *http.Response
	if _, err := g.client("k").Chat.Completions.New(context.Background(), params, option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if h := resp.Header.Get("X-Gavel-Dropped-Params"); h != "" {
		t.Errorf("X-Gavel-Dropped-Params = %q", h)
	}
	body := c.Requests()[0].Body
	if th, _ := body["thinking"].(map[string]any); th["type"] != "enabled" || th["budget_tokens"] != float64(16384) {
		t.Errorf("thinking = %v", body["thinking"])
	}
	if body["max_tokens"] != float64(16384+500) {
		t.Errorf("max_tokens = %v", body["max_tokens"])
	}
	if tc, _ := body["tool_choice"].(map[string]any); tc["disable_parallel_tool_use"] != true {
		t.Errorf("tool_choice = %v", body["tool_choice"])
	}
}

// reasoning_effort and response_format reach Gemini mapped; logprobs, which gavel does not
// translate back, is refused by default.
func TestReasoningEffortAndResponseFormatReachGemini(t *testing.T) {
	up := fakegemini.New()
	t.Cleanup(up.Close)
	g := start(t, "", map[string]string{"GEMINI_API_KEY": "gk", "GEMINI_BASE_URL": up.URL()})
	c := g.client("k")
	params := userParams("gemini-2.5-flash", "three primes")
	params.ReasoningEffort = shared.ReasoningEffortLow
	params.Seed = openai.Int(7)
	params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
		JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "primes", Schema: map[string]any{
			"type": "object", "properties": map[string]any{"primes": map[string]any{"type": "array", "items": map[string]any{"type": "integer"}}}}}}}
	if _, err := c.Chat.Completions.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	gc, _ := up.Requests()[0].Body["generationConfig"].(map[string]any)
	if tc, _ := gc["thinkingConfig"].(map[string]any); tc["thinkingBudget"] != float64(2048) {
		t.Errorf("thinkingConfig = %v", gc["thinkingConfig"])
	}
	if gc["responseMimeType"] != "application/json" || gc["responseSchema"] == nil || gc["seed"] != float64(7) {
		t.Errorf("generationConfig = %v", gc)
	}

	lp := userParams("gemini-2.5-flash", "hi")
	lp.Logprobs = openai.Bool(true)
	_, err := c.Chat.Completions.New(context.Background(), lp)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "unsupported_parameter" || !strings.Contains(apiErr.Message, "'logprobs'") {
		t.Fatalf("err = %v, want 400 unsupported_parameter", err)
	}
	if n := len(up.Requests()); n != 1 {
		t.Errorf("a refused request reached gemini (%d requests)", n)
	}
}

// A Responses API client is told what was dropped too: its metadata, which Claude has no
// place for, is dropped (advisory) and named in X-Gavel-Dropped-Params.
func TestResponsesClientIsToldWhatWasDropped(t *testing.T) {
	g, _, c, _ := fieldFakes(t, "", nil)
	var resp *http.Response
	_, err := g.client("k").Responses.New(context.Background(), responses.ResponseNewParams{
		Model: "sonnet", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
		Metadata: shared.Metadata{"team": "search"},
	}, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if h := resp.Header.Get("X-Gavel-Dropped-Params"); h != "metadata" {
		t.Errorf("X-Gavel-Dropped-Params = %q, want metadata", h)
	}
	if n := len(c.Requests()); n != 1 {
		t.Fatalf("claude saw %d requests", n)
	}
	if _, ok := c.Requests()[0].Body["metadata"]; ok {
		t.Errorf("claude got metadata: %s", c.Requests()[0].Raw)
	}
}
