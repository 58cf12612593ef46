package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/test/fakeanthropic"
	"github.com/gavel-gw/gavel/test/fakegemini"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// fieldFakes runs an OpenAI-compatible provider "a" (alias "chat") and an Anthropic
// provider "claude" (alias "sonnet") with the given drop_params, and a decision log file.
func fieldFakes(t *testing.T, dropParams string, data func(map[string]any)) (*gw, *fakeupstream.Server, *fakeanthropic.Server, string) {
	t.Helper()
	a, c := fakeupstream.New(), fakeanthropic.New()
	t.Cleanup(a.Close)
	t.Cleanup(c.Close)
	d := twoProviders(nil)
	d["catalog"].(map[string]any)["claude/claude-sonnet-4-5"] = entry("claude", "claude-sonnet-4-5")
	d["aliases"] = map[string]any{
		"chat":   map[string]any{"strategy": "ordered", "candidates": []string{"a/m1"}},
		"sonnet": map[string]any{"strategy": "ordered", "candidates": []string{"claude/claude-sonnet-4-5"}},
	}
	if data != nil {
		data(d)
	}
	drop := ""
	if dropParams != "" {
		drop = ", drop_params: " + dropParams
	}
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	g := start(t, fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: %q, api_key: k, max_retries: 0}
  - {name: claude, type: anthropic, base_url: %q, api_key: ak, max_retries: 0%s}
decision_log: {file: %s, mask_messages: true}
`, bundle(t, "fields-1", d), a.URL(), c.URL(), drop, logFile), nil)
	return g, a, c, logFile
}

// cachedPart is a text part carrying Anthropic-style cache_control, as LiteLLM users send.
func cachedPart(text string) openai.ChatCompletionContentPartUnionParam {
	p := openai.ChatCompletionContentPartTextParam{Text: text}
	p.SetExtraFields(map[string]any{"cache_control": map[string]any{"type": "ephemeral"}})
	return openai.ChatCompletionContentPartUnionParam{OfText: &p}
}

// capture keeps the body the SDK sent, to compare with what the upstream received.
func capture(into *[]byte) option.RequestOption {
	return option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		*into = b
		r.Body = io.NopCloser(bytes.NewReader(b))
		return next(r)
	})
}

// Every field the issue lists reaches an OpenAI-compatible upstream as the OpenAI SDK sent
// it: the SDK's own typed fields, its extra-field options (what Python's extra_body
// becomes) and cache_control on a content part.
func TestEveryFieldReachesAnOpenAICompatibleUpstreamUnchanged(t *testing.T) {
	g, a, _, _ := fieldFakes(t, "", nil)
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			a.Reset()
			p := openai.ChatCompletionNewParams{
				Model: "chat",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"),
					openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{cachedPart("a long document"), openai.TextContentPart("summarise it")})},
				Modalities:       []string{"text"},
				Verbosity:        openai.ChatCompletionNewParamsVerbosityLow,
				PromptCacheKey:   openai.String("tenant-42"),
				SafetyIdentifier: openai.String("user-hash-7"),
				Prediction:       openai.ChatCompletionPredictionContentParam{Content: openai.ChatCompletionPredictionContentContentUnionParam{OfString: openai.String("draft")}},
				WebSearchOptions: openai.ChatCompletionNewParamsWebSearchOptions{SearchContextSize: "low"},
			}
			var sent []byte
			opts := []option.RequestOption{capture(&sent), option.WithJSONSet("top_k", 40),
				option.WithJSONSet("chat_template_kwargs", map[string]any{"enable_thinking": false}),
				option.WithJSONSet("repetition_penalty", 1.05)}
			if stream {
				s := g.client("k").Chat.Completions.NewStreaming(context.Background(), p, opts...)
				for s.Next() {
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
			} else if _, err := g.client("k").Chat.Completions.New(context.Background(), p, opts...); err != nil {
				t.Fatal(err)
			}
			reqs := a.Requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream saw %d requests", len(reqs))
			}
			var client, upstream map[string]json.RawMessage
			if err := json.Unmarshal(sent, &client); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(reqs[0].Raw, &upstream); err != nil {
				t.Fatal(err)
			}
			// Byte for byte: the fields gavel has no typed field for.
			for _, k := range []string{"top_k", "chat_template_kwargs", "repetition_penalty"} {
				if string(upstream[k]) != string(client[k]) {
					t.Errorf("%s: upstream got %s, the client sent %s", k, upstream[k], client[k])
				}
			}
			// By meaning: every field the client sent, except the model gavel routed and the
			// stream options it sets itself.
			for k, v := range client {
				if k == "model" || k == "stream_options" {
					continue
				}
				var want, got any
				json.Unmarshal(v, &want)
				json.Unmarshal(upstream[k], &got)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: upstream got %s, the client sent %s", k, upstream[k], v)
				}
			}
			for _, k := range []string{"modalities", "verbosity", "prompt_cache_key", "safety_identifier", "prediction", "web_search_options",
				"top_k", "chat_template_kwargs"} {
				if _, ok := upstream[k]; !ok {
					t.Errorf("%s did not reach the upstream: %s", k, reqs[0].Raw)
				}
			}
			if !strings.Contains(string(reqs[0].Raw), `"cache_control":{"type":"ephemeral"}`) {
				t.Errorf("the content part's cache_control did not reach the upstream: %s", reqs[0].Raw)
			}
		})
	}
}

// Claude can express top_k and cache_control: they are mapped onto the Messages API.
func TestAnthropicBackendGetsTopKAndCacheControl(t *testing.T) {
	g, _, c, _ := fieldFakes(t, "", nil)
	p := openai.ChatCompletionNewParams{
		Model: "sonnet",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage([]openai.ChatCompletionContentPartTextParam{{Text: "You answer questions about the contract."}}),
			openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{cachedPart("<the contract>"), openai.TextContentPart("Who signs?")})},
		SafetyIdentifier: openai.String("user-hash-7"),
	}
	var resp *http.Response
	if _, err := g.client("k").Chat.Completions.New(context.Background(), p, option.WithJSONSet("top_k", 5), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if h := resp.Header.Get("X-Gavel-Dropped-Params"); h != "" {
		t.Errorf("X-Gavel-Dropped-Params = %q: nothing was dropped", h)
	}
	reqs := c.Requests()
	if len(reqs) != 1 {
		t.Fatalf("claude saw %d requests", len(reqs))
	}
	body := reqs[0].Body
	if body["top_k"] != float64(5) {
		t.Errorf("top_k = %v: %s", body["top_k"], reqs[0].Raw)
	}
	if md, _ := body["metadata"].(map[string]any); md["user_id"] != "user-hash-7" {
		t.Errorf("metadata = %v", body["metadata"])
	}
	blocks := body["messages"].([]any)[0].(map[string]any)["content"].([]any)
	first := blocks[0].(map[string]any)
	if first["text"] != "<the contract>" || !reflect.DeepEqual(first["cache_control"], map[string]any{"type": "ephemeral"}) {
		t.Errorf("first block = %v", first)
	}
	if _, ok := blocks[1].(map[string]any)["cache_control"]; ok {
		t.Errorf("cache_control on a block the client did not mark: %v", blocks[1])
	}
}

// A field Claude cannot express is refused by default (400 naming the field and the
// provider, nothing sent upstream); with drop_params: drop it is dropped and reported.
func TestUnexpressibleFieldIsRefusedOrDroppedAndSaid(t *testing.T) {
	params := userParams("sonnet", "hi")
	params.Verbosity = openai.ChatCompletionNewParamsVerbosityLow
	opts := []option.RequestOption{option.WithJSONSet("chat_template_kwargs", map[string]any{"enable_thinking": false}), option.WithJSONSet("top_k", 3)}

	t.Run("error by default", func(t *testing.T) {
		g, _, c, _ := fieldFakes(t, "", nil)
		for _, stream := range []bool{false, true} {
			var err error
			if stream {
				s := g.client("k").Chat.Completions.NewStreaming(context.Background(), params, opts...)
				for s.Next() {
				}
				err = s.Err()
			} else {
				_, err = g.client("k").Chat.Completions.New(context.Background(), params, opts...)
			}
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "unsupported_parameter" || apiErr.Param != "chat_template_kwargs" {
				t.Fatalf("stream=%v: err = %v, want 400 unsupported_parameter", stream, err)
			}
			for _, want := range []string{"claude", "'chat_template_kwargs' and 'verbosity'", "drop_params: drop"} {
				if !strings.Contains(apiErr.Message, want) {
					t.Errorf("message %q does not say %q", apiErr.Message, want)
				}
			}
		}
		if n := len(c.Requests()); n != 0 {
			t.Errorf("claude saw %d requests", n)
		}
	})

	t.Run("drop", func(t *testing.T) {
		g, _, c, logFile := fieldFakes(t, "drop", nil)
		var resp *http.Response
		if _, err := g.client("k").Chat.Completions.New(context.Background(), params, append(opts, option.WithResponseInto(&resp))...); err != nil {
			t.Fatal(err)
		}
		if h := resp.Header.Get("X-Gavel-Dropped-Params"); h != "chat_template_kwargs,verbosity" {
			t.Errorf("X-Gavel-Dropped-Params = %q", h)
		}
		s := g.client("k").Chat.Completions.NewStreaming(context.Background(), params, append(opts, option.WithResponseInto(&resp))...)
		for s.Next() {
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if h := resp.Header.Get("X-Gavel-Dropped-Params"); h != "chat_template_kwargs,verbosity" {
			t.Errorf("streamed: X-Gavel-Dropped-Params = %q", h)
		}
		reqs := c.Requests()
		if len(reqs) != 2 {
			t.Fatalf("claude saw %d requests", len(reqs))
		}
		for _, r := range reqs {
			if _, ok := r.Body["verbosity"]; ok || r.Body["top_k"] != float64(3) || strings.Contains(string(r.Raw), "chat_template_kwargs") {
				t.Errorf("claude got %s", r.Raw)
			}
		}
		ev := decisionEvent(t, logFile, resp.Header.Get("X-Gavel-Decision-Id"))
		custom := ev["custom"].(map[string]any)
		if !reflect.DeepEqual(custom["dropped_params"], []any{"chat_template_kwargs", "verbosity"}) {
			t.Errorf("decision log custom = %v", custom)
		}
	})
}

// The policy sees which fields a request carries (input.request.fields, a literal
// extra_body's members among them), and the default library's deny_fields acts on it.
func TestPolicySeesTheRequestsFields(t *testing.T) {
	g, a, _, logFile := fieldFakes(t, "", func(d map[string]any) {
		d["pii_policy"] = map[string]any{"deny_fields": []string{"logit_bias", "messages[].content[].cache_control"}}
	})
	resp, _ := g.post(t, "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":0.1,`+
		`"extra_body":{"top_k":7,"chat_template_kwargs":{"enable_thinking":false}}}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ev := decisionEvent(t, logFile, resp.Header.Get("X-Gavel-Decision-Id"))
	fields := ev["input"].(map[string]any)["request"].(map[string]any)["fields"]
	if want := []any{"chat_template_kwargs", "messages", "model", "temperature", "top_k"}; !reflect.DeepEqual(fields, want) {
		t.Errorf("input.request.fields = %v, want %v", fields, want)
	}
	// extra_body's members are forwarded as top-level ones, as the OpenAI SDKs send them.
	raw := string(a.Requests()[0].Raw)
	if !strings.Contains(raw, `"top_k":7`) || !strings.Contains(raw, `"chat_template_kwargs":{"enable_thinking":false}`) || strings.Contains(raw, "extra_body") {
		t.Errorf("upstream got %s", raw)
	}

	_, err := g.client("k").Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{cachedPart("doc")})}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "field_denied" ||
		!strings.Contains(apiErr.Message, "messages[].content[].cache_control") {
		t.Fatalf("err = %v, want 400 field_denied", err)
	}
	if n := len(a.Requests()); n != 1 {
		t.Errorf("a denied request reached the upstream (%d requests)", n)
	}
}

// decisionEvent waits for the decision log file to hold the event of id.
func decisionEvent(t *testing.T, path, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var ev map[string]any
				if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["decision_id"] == id {
					f.Close()
					return ev
				}
			}
			f.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decision log event for %s in %s", id, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Gemini gets top_k as generationConfig.topK; cache_control, which it has no place for, is
// refused by default for a provider from the environment too.
func TestGeminiBackendGetsTopKAndRefusesCacheControl(t *testing.T) {
	up := fakegemini.New()
	t.Cleanup(up.Close)
	g := start(t, "", map[string]string{"GEMINI_API_KEY": "gk", "GEMINI_BASE_URL": up.URL()})
	c := g.client("k")
	if _, err := c.Chat.Completions.New(context.Background(), userParams("gemini-2.5-flash", "hi"), option.WithJSONSet("top_k", 20)); err != nil {
		t.Fatal(err)
	}
	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("gemini saw %d requests", len(reqs))
	}
	if gc, _ := reqs[0].Body["generationConfig"].(map[string]any); gc["topK"] != float64(20) {
		t.Errorf("generationConfig = %v in %s %s", reqs[0].Body["generationConfig"], reqs[0].Path, reqs[0].Raw)
	}
	_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "gemini-2.5-flash",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{cachedPart("doc")})}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "unsupported_parameter" ||
		!strings.Contains(apiErr.Message, "gemini") || !strings.Contains(apiErr.Message, "'messages[].content[].cache_control'") {
		t.Fatalf("err = %v, want 400 unsupported_parameter", err)
	}
	if n := len(up.Requests()); n != 1 {
		t.Errorf("a refused request reached gemini (%d requests)", n)
	}
}

// A Responses API request is translated to the canonical type, and the policy still sees
// the fields of the client's own body.
func TestPolicySeesTheFieldsOfAResponsesRequest(t *testing.T) {
	g, _, _, logFile := fieldFakes(t, "", nil)
	resp, body := g.post(t, "/v1/responses", `{"model":"chat","input":"hi","store":false,"prompt_cache_key":"k","max_output_tokens":50}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
	ev := decisionEvent(t, logFile, resp.Header.Get("X-Gavel-Decision-Id"))
	fields := ev["input"].(map[string]any)["request"].(map[string]any)["fields"]
	if want := []any{"input", "max_output_tokens", "model", "prompt_cache_key", "store"}; !reflect.DeepEqual(fields, want) {
		t.Errorf("input.request.fields = %v, want %v", fields, want)
	}
}
