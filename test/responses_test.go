package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeanthropic"
	"github.com/gavel-gw/gavel/test/fakegemini"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// respFakes runs three backends behind gavel: OpenAI-compatible "a" (alias "gpt"),
// Anthropic "claude" (alias "sonnet") and Gemini "gemini" (alias "gem"), and two keys,
// k1 (team one) and k2 (team two).
type respFakes struct {
	g      *gw
	a      *fakeupstream.Server
	oa     *fakeupstream.Server // serves the Responses API itself: alias "gpt5", first of "mixed"
	claude *fakeanthropic.Server
	gem    *fakegemini.Server
	k1, k2 string
}

func startRespFakes(t *testing.T, extraData func(map[string]any), extraYAML string) *respFakes {
	t.Helper()
	f := &respFakes{a: fakeupstream.New(), oa: fakeupstream.New(), claude: fakeanthropic.New(), gem: fakegemini.New()}
	t.Cleanup(f.a.Close)
	t.Cleanup(f.oa.Close)
	t.Cleanup(f.claude.Close)
	t.Cleanup(f.gem.Close)
	var h1, h2 string
	f.k1, h1, _ = auth.NewKey()
	f.k2, h2, _ = auth.NewKey()
	data := twoProviders(map[string]any{
		h1: map[string]any{"key_id": "k-one", "team": "one"},
		h2: map[string]any{"key_id": "k-two", "team": "two"},
	})
	cat := data["catalog"].(map[string]any)
	cat["claude/claude-sonnet-4-5"] = entry("claude", "claude-sonnet-4-5")
	cat["gemini/gemini-2.5-flash"] = entry("gemini", "gemini-2.5-flash")
	cat["oa/gpt-5"] = entry("oa", "gpt-5")
	data["aliases"] = map[string]any{
		"gpt5":   map[string]any{"strategy": "ordered", "candidates": []string{"oa/gpt-5"}},
		"mixed":  map[string]any{"strategy": "ordered", "candidates": []string{"oa/gpt-5", "claude/claude-sonnet-4-5"}},
		"gpt":    map[string]any{"strategy": "ordered", "candidates": []string{"a/m1"}},
		"sonnet": map[string]any{"strategy": "ordered", "candidates": []string{"claude/claude-sonnet-4-5"}},
		"gem":    map[string]any{"strategy": "ordered", "candidates": []string{"gemini/gemini-2.5-flash"}},
	}
	if extraData != nil {
		extraData(data)
	}
	dir := bundle(t, "responses-1", data)
	yaml := fmt.Sprintf(`policy: %s
%sproviders:
  - {name: a, type: openai, base_url: %q, api_key: k, max_retries: 0}
  - {name: claude, type: anthropic, base_url: %q, api_key: ak, max_retries: 0}
  - {name: gemini, type: gemini, base_url: %q, api_key: gk, max_retries: 0}
  - {name: oa, type: openai, base_url: %q, api_key: ok, max_retries: 0, responses_api: true}
`, dir, extraYAML, f.a.URL(), f.claude.URL(), f.gem.URL(), f.oa.URL())
	f.g = start(t, yaml, nil)
	return f
}

// scriptToolCall makes every backend's next answer a text and a get_weather call.
func (f *respFakes) scriptToolCall(args string) {
	f.a.Script("m1", fakeupstream.Step{Reply: "Let me check.", ToolCalls: []fakeupstream.ToolCall{{ID: "call_w1", Name: "get_weather", Arguments: args, Pieces: 3}}})
	f.claude.Script("claude-sonnet-4-5", fakeanthropic.Step{Reply: "Let me check.", ToolCalls: []fakeanthropic.ToolCall{{ID: "call_w1", Name: "get_weather", Arguments: args, Pieces: 3}}})
	f.gem.Script("gemini-2.5-flash", fakegemini.Step{Reply: "Let me check.", ToolCalls: []fakegemini.ToolCall{{ID: "call_w1", Name: "get_weather", Arguments: args}}})
}

func weatherResponsesTool() []responses.ToolUnionParam {
	return []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{Name: "get_weather", Strict: openai.Bool(false),
		Parameters: map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}}}}
}

// streamed is what a Responses stream delivered, checked event by event.
type streamed struct {
	types     []string
	text      string
	args      map[string]string // item id → arguments from the deltas
	final     responses.Response
	finalType string
}

func readResponsesStream(t *testing.T, s interface {
	Next() bool
	Current() responses.ResponseStreamEventUnion
	Err() error
}) *streamed {
	t.Helper()
	out := &streamed{args: map[string]string{}}
	seq := int64(0)
	for s.Next() {
		ev := s.Current()
		if ev.SequenceNumber != seq {
			t.Fatalf("event %d (%s) has sequence_number %d", seq, ev.Type, ev.SequenceNumber)
		}
		seq++
		out.types = append(out.types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			out.text += ev.Delta
		case "response.function_call_arguments.delta":
			out.args[ev.ItemID] += ev.Delta
		case "response.function_call_arguments.done":
			if out.args[ev.ItemID] != ev.Arguments {
				t.Errorf("arguments.done %q after deltas %q", ev.Arguments, out.args[ev.ItemID])
			}
		case "response.completed", "response.incomplete", "response.failed":
			out.final, out.finalType = ev.Response, ev.Type
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestResponsesStreamedToolUseAcrossBackends(t *testing.T) {
	f := startRespFakes(t, nil, "")
	args := `{"city":"Paris"}`
	for _, model := range []string{"gpt", "sonnet", "gem"} {
		t.Run(model, func(t *testing.T) {
			f.scriptToolCall(args)
			c := f.g.client(f.k1)
			p := responses.ResponseNewParams{Model: model, Instructions: openai.String("be brief"),
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("weather in Paris?")},
				Tools: weatherResponsesTool(), MaxOutputTokens: openai.Int(200)}
			var resp *http.Response
			st := readResponsesStream(t, c.Responses.NewStreaming(context.Background(), p, option.WithResponseInto(&resp)))
			want := []string{"response.created", "response.in_progress",
				"response.output_item.added", "response.content_part.added", "response.output_text.delta"}
			if len(st.types) < len(want)+6 || strings.Join(st.types[:len(want)], ",") != strings.Join(want, ",") {
				t.Fatalf("events %v", st.types)
			}
			if st.types[len(st.types)-1] != "response.completed" || st.finalType != "response.completed" {
				t.Fatalf("last event %s", st.types[len(st.types)-1])
			}
			if st.text != "Let me check." {
				t.Errorf("text %q", st.text)
			}
			fin := st.final
			if fin.Status != "completed" || len(fin.Output) != 2 || fin.Usage.InputTokens == 0 || fin.Usage.OutputTokens == 0 {
				t.Fatalf("final response %s", fin.RawJSON())
			}
			call := fin.Output[1]
			if call.Type != "function_call" || call.Name != "get_weather" || call.Arguments.OfString != args || call.CallID == "" {
				t.Fatalf("call %s", call.RawJSON())
			}
			if fin.Output[0].Content[0].Text != "Let me check." || !strings.HasPrefix(fin.ID, "resp_") {
				t.Errorf("message %s id %s", fin.Output[0].RawJSON(), fin.ID)
			}
			if resp.Header.Get("X-Gavel-Decision-Id") == "" || fin.ID != "resp_"+resp.Header.Get("X-Gavel-Decision-Id") {
				t.Errorf("response id %s, decision %s", fin.ID, resp.Header.Get("X-Gavel-Decision-Id"))
			}

			// The tool's result continues the stored response; the answer is not streamed.
			f.a.Script("m1", fakeupstream.Step{Reply: "It is 21 degrees."})
			f.claude.Script("claude-sonnet-4-5", fakeanthropic.Step{Reply: "It is 21 degrees."})
			f.gem.Script("gemini-2.5-flash", fakegemini.Step{Reply: "It is 21 degrees."})
			next, err := c.Responses.New(context.Background(), responses.ResponseNewParams{Model: model,
				PreviousResponseID: openai.String(fin.ID), Tools: weatherResponsesTool(),
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
					toolOutput(call.CallID, `{"temp":21}`)}}})
			if err != nil {
				t.Fatal(err)
			}
			if next.OutputText() != "It is 21 degrees." || next.PreviousResponseID != fin.ID || next.Status != "completed" {
				t.Fatalf("second turn %s", next.RawJSON())
			}
		})
	}
	// What the backends received on the second turn: the whole conversation, the tool call
	// and its result in their own formats.
	last := f.a.Requests()[len(f.a.Requests())-1].Body
	if n := len(last.Messages); n != 3 || last.Messages[1].Content.String() != "Let me check." ||
		last.Messages[1].ToolCalls[0].Function.Arguments != args || last.Messages[2].ToolCallID != "call_w1" {
		t.Errorf("openai second turn messages %+v", last.Messages)
	}
	claudeLast := f.claude.Requests()[len(f.claude.Requests())-1].Body
	if claudeLast["system"] != nil {
		t.Errorf("instructions are not carried over to a continued response: system %v", claudeLast["system"])
	}
	msgs := claudeLast["messages"].([]any)
	if len(msgs) != 3 || !strings.Contains(fmt.Sprint(msgs[2]), "tool_result") {
		t.Errorf("anthropic second turn messages %v", msgs)
	}
}

func TestResponsesStoredScopedToTheKeyAndDeleted(t *testing.T) {
	f := startRespFakes(t, nil, "")
	ctx := context.Background()
	c1, c2 := f.g.client(f.k1), f.g.client(f.k2)
	res, err := c1.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("remember 42")}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.RawJSON(), `"store":true`) || res.OutputText() != "Hello from m1" {
		t.Fatalf("created %s", res.RawJSON())
	}
	got, err := c1.Responses.Get(ctx, res.ID, responses.ResponseGetParams{})
	if err != nil || got.ID != res.ID || got.OutputText() != "Hello from m1" {
		t.Fatalf("get by its key: %v %+v", err, got)
	}
	var apiErr *openai.Error
	if _, err := c2.Responses.Get(ctx, res.ID, responses.ResponseGetParams{}); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("get by another key: %v", err)
	}
	_, err = c2.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt", PreviousResponseID: openai.String(res.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what was it?")}})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "previous_response_not_found" || apiErr.Param != "previous_response_id" {
		t.Fatalf("continue another key's response: %v", err)
	}
	if err := c2.Responses.Delete(ctx, res.ID); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("delete by another key: %v", err)
	}
	// The owner continues it: the upstream sees the first turn, then the new input.
	f.a.Script("m1", fakeupstream.Step{Reply: "It was 42."})
	next, err := c1.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt", PreviousResponseID: openai.String(res.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what was it?")}, Store: openai.Bool(false)})
	if err != nil || next.OutputText() != "It was 42." || !strings.Contains(next.RawJSON(), `"store":false`) {
		t.Fatalf("continue: %v %+v", err, next)
	}
	sent := f.a.Requests()[len(f.a.Requests())-1].Body.Messages
	if len(sent) != 3 || sent[0].Content.String() != "remember 42" || sent[1].Content.String() != "Hello from m1" || sent[2].Content.String() != "what was it?" {
		t.Fatalf("continued conversation sent upstream: %+v", sent)
	}
	// store: false is not stored.
	if _, err := c1.Responses.Get(ctx, next.ID, responses.ResponseGetParams{}); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("get of an unstored response: %v", err)
	}
	if err := c1.Responses.Delete(ctx, res.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Responses.Get(ctx, res.ID, responses.ResponseGetParams{}); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("get after delete: %v", err)
	}
	if err := c1.Responses.Delete(ctx, res.ID); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("second delete: %v", err)
	}
}

func TestResponsesStoredSurviveARestartInTheFileLedger(t *testing.T) {
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	key, hash, _ := auth.NewKey()
	dir := bundle(t, "responses-restart", twoProviders(map[string]any{hash: map[string]any{"key_id": "k-one", "team": "one"}}))
	path := t.TempDir() + "/ledger.db"
	yaml := fmt.Sprintf("policy: %s\nledger: {store: file, path: %s}\nproviders:\n  - {name: a, type: openai, base_url: %q, max_retries: 0}\n  - {name: b, type: openai, base_url: %q, max_retries: 0}\n", dir, path, up.URL(), up.URL())
	g := startWith(t, yaml, nil, false)
	res, err := g.client(key).Responses.New(context.Background(), responses.ResponseNewParams{Model: "chat",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	g.stop()
	g = startWith(t, yaml, nil, false)
	got, err := g.client(key).Responses.Get(context.Background(), res.ID, responses.ResponseGetParams{})
	if err != nil || got.OutputText() != res.OutputText() {
		t.Fatalf("after a restart: %v %+v", err, got)
	}
}

func TestResponsesHostedToolsRefusedOnATranslatedTarget(t *testing.T) {
	f := startRespFakes(t, nil, "")
	for _, tool := range []string{`{"type":"web_search"}`, `{"type":"file_search","vector_store_ids":["vs_1"]}`, `{"type":"code_interpreter","container":{"type":"auto"}}`} {
		resp, body := f.g.post(t, "/v1/responses", `{"model":"sonnet","input":"search the web","tools":[`+tool+`]}`,
			map[string]string{"Authorization": "Bearer " + f.k1})
		e, _ := body["error"].(map[string]any)
		if resp.StatusCode != 400 || e["code"] != "hosted_tool_unsupported" || e["param"] != "tools" || resp.Header.Get("X-Gavel-Decision-Id") == "" {
			t.Fatalf("%s: %d %v", tool, resp.StatusCode, body)
		}
	}
	if n := f.claude.Count("claude-sonnet-4-5"); n != 0 {
		t.Errorf("claude got %d requests", n)
	}
}

func TestResponsesErrorsInOpenAIShape(t *testing.T) {
	f := startRespFakes(t, nil, "")
	auth := map[string]string{"Authorization": "Bearer " + f.k1}
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
		param      string
	}{
		{"no model", `{"input":"hi"}`, 400, "missing_required_parameter", "model"},
		{"no input", `{"model":"gpt"}`, 400, "missing_required_parameter", "input"},
		{"bad input", `{"model":"gpt","input":42}`, 400, "invalid_json", ""},
		{"bad role", `{"model":"gpt","input":[{"role":"robot","content":"hi"}]}`, 400, "invalid_value", "input[0].role"},
		{"background", `{"model":"gpt","input":"hi","background":true}`, 400, "unsupported_parameter", "background"},
		{"unknown item", `{"model":"gpt","input":[{"type":"computer_call_output","call_id":"c"}]}`, 400, "invalid_value", "input[0].type"},
		{"unknown previous", `{"model":"gpt","input":"hi","previous_response_id":"resp_nope"}`, 400, "previous_response_not_found", "previous_response_id"},
		{"bad format", `{"model":"gpt","input":"hi","text":{"format":{"type":"yaml"}}}`, 400, "invalid_value", "text.format.type"},
	} {
		resp, body := f.g.post(t, "/v1/responses", tc.body, auth)
		e, _ := body["error"].(map[string]any)
		param, _ := e["param"].(string)
		if resp.StatusCode != tc.status || e["code"] != tc.code || param != tc.param || e["type"] != "invalid_request_error" {
			t.Errorf("%s: %d %v", tc.name, resp.StatusCode, body)
		}
	}
	resp, body := f.g.post(t, "/v1/responses", `{"model":"gpt","input":"hi"}`, nil)
	if resp.StatusCode != 401 || body["error"].(map[string]any)["code"] != "invalid_api_key" {
		t.Errorf("no key: %d %v", resp.StatusCode, body)
	}

	// An upstream's 429 reaches the SDK as OpenAI's 429.
	f.a.Script("m1", fakeupstream.Step{Status: 429, Message: "slow down", RetryAfter: "3"})
	_, err := f.g.client(f.k1).Responses.New(context.Background(), responses.ResponseNewParams{Model: "gpt",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" {
		t.Fatalf("upstream 429: %v", err)
	}

	// A stream that breaks after it started ends with error and response.failed.
	f.a.Script("m1", fakeupstream.Step{Reply: "one two three four", Fault: fakeupstream.MidStreamError, FaultAfter: 2, Message: "boom"})
	s := f.g.client(f.k1).Responses.NewStreaming(context.Background(), responses.ResponseNewParams{Model: "gpt",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	st := readResponsesStream(t, s)
	n := len(st.types)
	if n < 4 || st.types[n-2] != "error" || st.types[n-1] != "response.failed" || st.final.Status != "failed" || st.final.Error.Code != "upstream_stream_error" {
		t.Fatalf("events %v final %s", st.types, st.final.RawJSON())
	}
}

func TestResponsesStructuredOutputAndReasoningReachTheUpstream(t *testing.T) {
	f := startRespFakes(t, nil, "")
	f.a.Script("m1", fakeupstream.Step{Reply: `{"answer":42}`})
	res, err := f.g.client(f.k1).Responses.New(context.Background(), responses.ResponseNewParams{Model: "gpt",
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("answer in JSON", responses.EasyInputMessageRoleDeveloper),
			responses.ResponseInputItemParamOfMessage("the answer?", responses.EasyInputMessageRoleUser)}},
		Reasoning:       responsesReasoning("high"),
		Text:            responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigParamOfJSONSchema("answer", map[string]any{"type": "object"})},
		MaxOutputTokens: openai.Int(300), Store: openai.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputText() != `{"answer":42}` || res.Reasoning.Effort != "high" || res.Text.Format.Type != "json_schema" {
		t.Fatalf("response %s", res.RawJSON())
	}
	sent := f.a.Requests()[0].Body
	if sent.ReasoningEffort != "high" || sent.MaxCompletionTokens == nil || *sent.MaxCompletionTokens != 300 ||
		!strings.Contains(string(sent.ResponseFormat), `"json_schema":{`) || sent.Messages[0].Role != "developer" {
		t.Fatalf("sent upstream %+v (format %s)", sent, sent.ResponseFormat)
	}
}

func responsesReasoning(effort string) openai.ReasoningParam {
	return openai.ReasoningParam{Effort: openai.ReasoningEffort(effort)}
}

// toolOutput is a function_call_output input item.
func toolOutput(callID, output string) responses.ResponseInputItemUnionParam {
	it := responses.ResponseInputItemParamOfFunctionCallOutput(output)
	it.OfFunctionCallOutput.CallID = openai.String(callID)
	return it
}

// One budget governs every endpoint: a team's spend through /v1/chat/completions refuses
// its next /v1/responses request. The refusal is logged as a responses decision and
// counted under endpoint="responses".
func TestResponsesShareTheBudgetSpentThroughChat(t *testing.T) {
	logFile := t.TempDir() + "/decisions.jsonl"
	yaml, key, admin, _ := budgetSetup(t, 20, 0, "decision_log: {file: "+logFile+"}\n")
	g := start(t, yaml(), nil)
	c := g.client(key)
	p := userParams("solo", "hi")
	p.MaxTokens = openai.Int(3)
	if _, err := c.Chat.Completions.New(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if spent := spendOf(t, g, admin); spent != 18 {
		t.Fatalf("chat spent %d µUSD, want 18", spent)
	}
	var resp *http.Response
	_, err := c.Responses.New(context.Background(), responses.ResponseNewParams{Model: "solo", MaxOutputTokens: openai.Int(16),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}, option.WithResponseInto(&resp))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "insufficient_quota" || !strings.Contains(apiErr.Message, "team-daily") {
		t.Fatalf("responses after the budget was spent through chat: %v", err)
	}
	id := apiErr.Response.Header.Get("X-Gavel-Decision-Id")
	metrics := g.text(t, "/metrics")
	if !strings.Contains(metrics, `gavel_requests_total{arm="",endpoint="responses",route="none",status="429"} 1`) {
		t.Errorf("metrics:\n%s", grepLines(metrics, "gavel_requests_total"))
	}
	var explained string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/decisions/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		if r, body := do(t, req); r.StatusCode == 200 {
			raw, _ := json.Marshal(body)
			explained = string(raw)
			break
		}
	}
	if !strings.Contains(explained, `"endpoint":"responses"`) || !strings.Contains(explained, `"protocol":"responses"`) {
		t.Errorf("decision log: %s", explained)
	}
}

// With a Redis ledger, a response stored through one replica is read, continued and
// deleted through another; its store_ttl is Redis' expiry.
func TestResponsesStoredInRedisAcrossReplicas(t *testing.T) {
	addr := redisServer(t)
	yaml, key, _, up := budgetSetup(t, 1_000_000, 0, "ledger: {store: redis, redis: {addr: "+addr+"}}\nresponses: {store_ttl: 1s}\n")
	g1, g2 := start(t, yaml(), nil), start(t, yaml(), nil)
	ctx := context.Background()
	res, err := g1.client(key).Responses.New(ctx, responses.ResponseNewParams{Model: "solo",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("remember 7")}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := g2.client(key).Responses.Get(ctx, res.ID, responses.ResponseGetParams{})
	if err != nil || got.OutputText() != res.OutputText() {
		t.Fatalf("read through the other replica: %v", err)
	}
	next, err := g2.client(key).Responses.New(ctx, responses.ResponseNewParams{Model: "solo", PreviousResponseID: openai.String(res.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what was it?")}})
	if err != nil {
		t.Fatal(err)
	}
	if sent := up.Requests()[len(up.Requests())-1].Body.Messages; len(sent) != 3 || sent[0].Content.String() != "remember 7" {
		t.Fatalf("continued through the other replica: %+v", sent)
	}
	if err := g1.client(key).Responses.Delete(ctx, next.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	var apiErr *openai.Error
	if _, err := g1.client(key).Responses.Get(ctx, res.ID, responses.ResponseGetParams{}); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("after store_ttl: %v", err)
	}
}

// Responses to an OpenAI upstream that serves the Responses API pass through: the body
// arrives with only the model rewritten (fields gavel does not model included), hosted
// tools are allowed, and the answer (a reasoning item's encrypted content included)
// comes back as OpenAI sent it, streamed event by event or not.
func TestResponsesPassThroughToOpenAI(t *testing.T) {
	f := startRespFakes(t, nil, "")
	auth := map[string]string{"Authorization": "Bearer " + f.k1, "OpenAI-Beta": "responses=experimental"}
	st := fakeupstream.Step{Reply: "Found it.", Reasoning: "gAAAA-secret-reasoning", ToolCalls: []fakeupstream.ToolCall{{ID: "call_x", Name: "f", Arguments: `{"a":1}`}}}
	f.oa.Script("gpt-5", st, st)
	body := `{"model":"gpt5", "input":"search", "tools":[{"type":"web_search","search_context_size":"low"}],"include":["reasoning.encrypted_content"],"x_future":{"n":[1, 2]},"store":false}`
	resp, got := f.g.post(t, "/v1/responses", body, auth)
	if resp.StatusCode != 200 || resp.Header.Get("X-Gavel-Route") != "oa/gpt-5" {
		t.Fatalf("%d %v", resp.StatusCode, got)
	}
	out := got["output"].([]any)
	if len(out) != 3 || out[0].(map[string]any)["encrypted_content"] != "gAAAA-secret-reasoning" || !strings.HasPrefix(got["id"].(string), "resp_fake") {
		t.Fatalf("answer %v", got)
	}
	sent := f.oa.Requests()[0]
	if string(sent.Raw) != strings.Replace(body, `"gpt5"`, `"gpt-5"`, 1) || sent.Path != "/v1/responses" || sent.Header.Get("OpenAI-Beta") != "responses=experimental" {
		t.Errorf("sent %s to %s (beta %q)", sent.Raw, sent.Path, sent.Header.Get("OpenAI-Beta"))
	}

	// Streamed: the upstream's events, in order, numbered by the upstream.
	s := f.g.client(f.k1).Responses.NewStreaming(context.Background(), responses.ResponseNewParams{Model: "gpt5",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("search")}, Store: openai.Bool(false),
		Tools: []responses.ToolUnionParam{{OfWebSearch: &responses.WebSearchToolParam{Type: "web_search"}}}})
	ev := readResponsesStream(t, s)
	if ev.types[2] != "response.output_item.added" || ev.final.Output[0].Type != "reasoning" || ev.final.Output[0].EncryptedContent != "gAAAA-secret-reasoning" ||
		ev.final.Usage.TotalTokens == 0 || ev.text != "Found it." {
		t.Fatalf("events %v final %s", ev.types, ev.final.RawJSON())
	}
	if f.a.Count(fakeupstream.AnyModel)+f.claude.Count("claude-sonnet-4-5") != 0 {
		t.Error("a translated upstream was called")
	}
}

// Hosted tools need every target of the decision to be OpenAI's Responses API: a fallback
// that would translate refuses the request before anything is sent.
func TestResponsesHostedToolsNeedEveryTargetNative(t *testing.T) {
	f := startRespFakes(t, nil, "")
	resp, body := f.g.post(t, "/v1/responses", `{"model":"mixed","input":"x","tools":[{"type":"web_search"}]}`,
		map[string]string{"Authorization": "Bearer " + f.k1})
	if resp.StatusCode != 400 || body["error"].(map[string]any)["code"] != "hosted_tool_unsupported" {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
	if n := f.oa.Count("gpt-5"); n != 0 {
		t.Errorf("oa got %d requests", n)
	}
}

// A passed-through response is stored under OpenAI's id; continuing it passes the whole
// conversation through inline (the reasoning item as OpenAI sent it), and a translated
// target refuses to continue a conversation holding hosted tool calls.
func TestResponsesPassThroughStoredAndContinued(t *testing.T) {
	f := startRespFakes(t, nil, "")
	ctx := context.Background()
	c := f.g.client(f.k1)
	f.oa.Script("gpt-5", fakeupstream.Step{Reply: "First.", Reasoning: "gAAAA-r1"}, fakeupstream.Step{Reply: "Second."})
	first, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt5", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("one")}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
	if err != nil || got.RawJSON() != first.RawJSON() {
		t.Fatalf("get: %v\n%s\n%s", err, got.RawJSON(), first.RawJSON())
	}
	second, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt5", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("two")}})
	if err != nil || second.OutputText() != "Second." {
		t.Fatalf("continue: %v", err)
	}
	var sent map[string]any
	json.Unmarshal(f.oa.Requests()[1].Raw, &sent)
	in, _ := sent["input"].([]any)
	if _, has := sent["previous_response_id"]; has || len(in) != 4 || in[1].(map[string]any)["encrypted_content"] != "gAAAA-r1" {
		t.Fatalf("continuation sent upstream: %s", f.oa.Requests()[1].Raw)
	}
	// The same conversation continued on Claude: the reasoning item is dropped, the text kept.
	f.claude.Script("claude-sonnet-4-5", fakeanthropic.Step{Reply: "Third."})
	third, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "sonnet", PreviousResponseID: openai.String(second.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("three")}})
	if err != nil || third.OutputText() != "Third." {
		t.Fatalf("continue on claude: %v", err)
	}
	if msgs := f.claude.Requests()[0].Body["messages"].([]any); len(msgs) != 5 {
		t.Errorf("claude got %v", msgs)
	}
}
