package fakeanthropic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const version = "2023-06-01"

func newServer(t *testing.T) *Server {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	return s
}

// body is a minimal valid messages request for model, streamed or not.
func body(model string, stream bool) string {
	b := `{"model":"` + model + `","max_tokens":256,"messages":[{"role":"user","content":"hi"}]`
	if stream {
		b += `,"stream":true`
	}
	return b + "}"
}

// send posts body to /v1/messages with the usual headers; edit may change them.
func send(t *testing.T, s *Server, body string, edit ...func(http.Header)) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/v1/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", "k")
	req.Header.Set("anthropic-version", version)
	for _, e := range edit {
		e(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// event is one parsed server-sent event.
type event struct {
	name string
	data string
}

// parseSSE parses a stream the way the WHATWG EventSource algorithm does (any line ending,
// "event" and "data" fields, dispatch on a blank line) and also insists on Anthropic's
// framing: every event has exactly one event line and one data line.
func parseSSE(t *testing.T, r io.Reader) ([]event, error) {
	t.Helper()
	var events []event
	var cur event
	var lines int
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if lines != 2 || cur.name == "" {
				t.Errorf("malformed event %+v (%d lines)", cur, lines)
			}
			events = append(events, cur)
			cur, lines = event{}, 0
			continue
		}
		lines++
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			cur.name = value
		case "data":
			cur.data = value
		default:
			t.Errorf("unexpected field in line %q", line)
		}
	}
	if lines != 0 {
		t.Errorf("stream ends inside an event: %+v", cur)
	}
	return events, sc.Err()
}

func decode(t *testing.T, data string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatalf("%v in %s", err, data)
	}
	return m
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("stream differs from %s:\n got: %q\nwant: %q", path, got, want)
	}
}

func TestJSONWireFormat(t *testing.T) {
	s := newServer(t)
	resp := send(t, s, body("claude-x", false))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if id := resp.Header.Get("Request-Id"); !strings.HasPrefix(id, "req_") {
		t.Errorf("request-id %q", id)
	}
	got := readAll(t, resp)
	want := `{"id":"msg_fake0000000000000001","type":"message","role":"assistant","model":"claude-x",` +
		`"content":[{"type":"text","text":"Hello from claude-x"}],"stop_reason":"end_turn","stop_sequence":null,` +
		`"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}}`
	if string(got) != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestToolUseJSON(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{
		Reply:     "Let me check.",
		ToolCalls: []ToolCall{{Name: "get_weather", Arguments: `{ "city": "Zürich" }`}, {ID: "toolu_x", Name: "noop"}},
		Usage:     &Usage{InputTokens: 100, OutputTokens: 7, CacheReadInputTokens: 50},
	})
	got := readAll(t, send(t, s, body("m", false)))
	want := `{"id":"msg_fake0000000000000001","type":"message","role":"assistant","model":"m","content":[` +
		`{"type":"text","text":"Let me check."},` +
		`{"type":"tool_use","id":"toolu_fake0","name":"get_weather","input":{"city":"Zürich"}},` +
		`{"type":"tool_use","id":"toolu_x","name":"noop","input":{}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,` +
		`"usage":{"input_tokens":100,"cache_creation_input_tokens":0,"cache_read_input_tokens":50,"output_tokens":7}}`
	if string(got) != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestStopReasons(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{StopReason: StopMaxTokens}, Step{StopReason: StopSequence, StopSequence: "END"})
	var m struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
	_ = json.Unmarshal(readAll(t, send(t, s, body("m", false))), &m)
	if *m.StopReason != "max_tokens" || m.StopSequence != nil {
		t.Errorf("max_tokens: %+v", m)
	}
	events, _ := parseSSE(t, send(t, s, body("m", true)).Body)
	delta := decode(t, events[len(events)-2].data)["delta"].(map[string]any)
	if delta["stop_reason"] != "stop_sequence" || delta["stop_sequence"] != "END" {
		t.Errorf("stop_sequence delta %v", delta)
	}
}

// TestStreamGolden pins the exact bytes of short streams, framing included.
func TestStreamGolden(t *testing.T) {
	s := newServer(t)
	s.SetDefault("claude-text", Step{Reply: "Hi there", Chunks: 2})
	s.SetDefault("claude-tool", Step{
		Reply: "Checking.", Chunks: 1,
		ToolCalls: []ToolCall{{Name: "get_weather", Arguments: `{"city":"Paris"}`, Pieces: 2}},
	})
	for _, model := range []string{"claude-text", "claude-tool"} {
		resp := send(t, s, body(model, true))
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
			t.Errorf("content-type %q", ct)
		}
		golden(t, "stream_"+strings.TrimPrefix(model, "claude-")+".golden", readAll(t, resp))
	}
}

func TestStreamEvents(t *testing.T) {
	s := newServer(t)
	args := `{"city":"Zürich","unit":"celsius"}`
	s.SetDefault("m", Step{
		Reply: "héllo wörld, streamed", Chunks: 5,
		ToolCalls: []ToolCall{{Name: "a", Arguments: args, Pieces: 4}, {Name: "b"}},
	})
	events, err := parseSSE(t, send(t, s, body("m", true)).Body)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var text strings.Builder
	inputs := map[int]string{}
	for i, ev := range events {
		names = append(names, ev.name)
		d := decode(t, ev.data)
		if d["type"] != ev.name {
			t.Errorf("event %d: name %q, data type %v", i, ev.name, d["type"])
		}
		switch ev.name {
		case "message_start":
			msg := d["message"].(map[string]any)
			if msg["role"] != "assistant" || msg["model"] != "m" || len(msg["content"].([]any)) != 0 ||
				msg["stop_reason"] != nil || !strings.HasPrefix(msg["id"].(string), "msg_") {
				t.Errorf("message_start %v", msg)
			}
			if u := msg["usage"].(map[string]any); u["input_tokens"] != float64(DefaultInputTokens) || u["output_tokens"] != float64(1) {
				t.Errorf("message_start usage %v", u)
			}
		case "content_block_delta":
			delta := d["delta"].(map[string]any)
			switch delta["type"] {
			case "text_delta":
				text.WriteString(delta["text"].(string))
			case "input_json_delta":
				inputs[int(d["index"].(float64))] += delta["partial_json"].(string)
			}
		case "message_delta":
			if d["delta"].(map[string]any)["stop_reason"] != "tool_use" || d["usage"].(map[string]any)["output_tokens"] != float64(3+20) {
				t.Errorf("message_delta %v", d)
			}
		}
	}
	want := "message_start content_block_start ping " + strings.Repeat("content_block_delta ", 5) + "content_block_stop " +
		"content_block_start " + strings.Repeat("content_block_delta ", 4) + "content_block_stop " +
		"content_block_start content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	if text.String() != "héllo wörld, streamed" {
		t.Errorf("text %q", text.String())
	}
	if inputs[1] != args || inputs[2] != "{}" {
		t.Errorf("inputs %v", inputs)
	}

	// Without text the first block is a tool_use block, and the ping follows it.
	s.Script("m", Step{ToolCalls: []ToolCall{{Name: "f", Arguments: `{"a":1}`}}})
	events, _ = parseSSE(t, send(t, s, body("m", true)).Body)
	start := decode(t, events[1].data)
	if events[2].name != "ping" || start["index"] != float64(0) {
		t.Errorf("events %v", events[:3])
	}
	block := start["content_block"].(map[string]any)
	if block["type"] != "tool_use" || block["id"] != "toolu_fake0" || block["name"] != "f" || len(block["input"].(map[string]any)) != 0 {
		t.Errorf("tool_use start %v", block)
	}
}

func TestHeaders(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		name   string
		edit   func(http.Header)
		status int
		want   string
	}{
		{"no key", func(h http.Header) { h.Del("x-api-key") }, 401,
			`{"type":"error","error":{"type":"authentication_error","message":"x-api-key header is required"}}`},
		{"bearer is not enough", func(h http.Header) { h.Del("x-api-key"); h.Set("Authorization", "Bearer k") }, 401,
			`{"type":"error","error":{"type":"authentication_error","message":"x-api-key header is required"}}`},
		{"no version", func(h http.Header) { h.Del("anthropic-version") }, 400,
			`{"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version: header is required"}}`},
		{"bad version", func(h http.Header) { h.Set("anthropic-version", "2024-01-01") }, 400,
			`{"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version: \"2024-01-01\" is not a valid version"}}`},
	} {
		resp := send(t, s, body("m", false), tc.edit)
		if got := readAll(t, resp); resp.StatusCode != tc.status || string(got) != tc.want {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, got)
		}
	}

	s.RequireAPIKey("sk-ant-right")
	resp := send(t, s, body("m", false))
	want := `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`
	if got := readAll(t, resp); resp.StatusCode != 401 || string(got) != want {
		t.Errorf("wrong key: %d %s", resp.StatusCode, got)
	}
	if resp := send(t, s, body("m", false), func(h http.Header) { h.Set("x-api-key", "sk-ant-right") }); resp.StatusCode != 200 {
		t.Errorf("right key: %d", resp.StatusCode)
	}
	if s.Count("m") != 1 || len(s.Requests()) != 6 {
		t.Errorf("count %d, recorded %d", s.Count("m"), len(s.Requests()))
	}
	if h := s.Requests()[5].Header; h.Get("x-api-key") != "sk-ant-right" || h.Get("anthropic-version") != version {
		t.Errorf("recorded headers %v", h)
	}
}

func TestValidation(t *testing.T) {
	s := newServer(t)
	user := `{"role":"user","content":"hi"}`
	asst := `{"role":"assistant","content":"hello"}`
	toolUse := `{"role":"assistant","content":[{"type":"text","text":"checking"},{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]}`
	toolResult := `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"42"},{"type":"text","text":"go on"}]}`
	msgs := func(m ...string) string {
		return `{"model":"m","max_tokens":10,"messages":[` + strings.Join(m, ",") + `]}`
	}
	for _, tc := range []struct {
		name, body, want string // want "" means accepted
	}{
		{"minimal", msgs(user), ""},
		{"conversation", msgs(user, asst, user), ""},
		{"tool round trip", msgs(user, toolUse, toolResult), ""},
		{"pending tool_use at the end", msgs(user, toolUse), ""},
		{"prefill", msgs(user, `{"role":"assistant","content":"The answer is"}`), ""},
		{"empty prefill", msgs(user, `{"role":"assistant","content":""}`), ""},
		{"system string and blocks", `{"model":"m","max_tokens":1,"system":[{"type":"text","text":"be brief"}],"messages":[` + user + `]}`, ""},
		{"tools", `{"model":"m","max_tokens":1,"tools":[{"name":"f","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search"}],"messages":[` + user + `]}`, ""},
		{"not json", `{"model":`, "There was an error parsing the body"},
		{"array body", `[]`, "There was an error parsing the body"},
		{"no model", `{"max_tokens":1,"messages":[` + user + `]}`, "model: Field required"},
		{"no max_tokens", `{"model":"m","messages":[` + user + `]}`, "max_tokens: Field required"},
		{"fractional max_tokens", `{"model":"m","max_tokens":1.5,"messages":[` + user + `]}`, "max_tokens: Input should be a valid integer"},
		{"zero max_tokens", `{"model":"m","max_tokens":0,"messages":[` + user + `]}`, "greater than or equal to 1"},
		{"no messages", `{"model":"m","max_tokens":1}`, "messages: Field required"},
		{"empty messages", msgs(), "at least one message"},
		{"string stream", `{"model":"m","max_tokens":1,"stream":"yes","messages":[` + user + `]}`, "stream: Input should be a valid boolean"},
		{"temperature", `{"model":"m","max_tokens":1,"temperature":1.5,"messages":[` + user + `]}`, "temperature: Input should be less than or equal to 1"},
		{"starts with assistant", msgs(asst, user), `first message must use the "user" role`},
		{"two users", msgs(user, user), `roles must alternate between "user" and "assistant", but found multiple "user" roles in a row`},
		{"two assistants", msgs(user, asst, asst), `multiple "assistant" roles`},
		{"system role", msgs(`{"role":"system","content":"x"}`, user), `Unexpected role "system"`},
		{"tool role", msgs(user, `{"role":"tool","content":"x"}`), "messages.1.role: Input should be 'user' or 'assistant'"},
		{"no content", msgs(`{"role":"user"}`), "messages.0.content: Field required"},
		{"empty content", msgs(`{"role":"user","content":""}`), "messages.0: all messages must have non-empty content"},
		{"empty blocks", msgs(`{"role":"user","content":[]}`), "messages.0: all messages must have non-empty content"},
		{"empty text block", msgs(`{"role":"user","content":[{"type":"text","text":""}]}`), "text content blocks must be non-empty"},
		{"whitespace", msgs(`{"role":"user","content":"  "}`), "non-whitespace text"},
		{"trailing whitespace prefill", msgs(user, `{"role":"assistant","content":"The answer is "}`), "final assistant content cannot end with trailing whitespace"},
		{"block without type", msgs(`{"role":"user","content":[{"text":"x"}]}`), "messages.0.content.0.type: Field required"},
		{"missing tool_result", msgs(user, toolUse, user), "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"},
		{"unexpected tool_result", msgs(user, asst, `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","content":"x"}]}`), "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9"},
		{"tool_result after text", msgs(user, toolUse, `{"role":"user","content":[{"type":"text","text":"x"},{"type":"tool_result","tool_use_id":"toolu_1","content":"1"}]}`), "must come first"},
		{"string tool input", msgs(user, `{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":"{}"}]}`), "input: Input should be a valid dictionary"},
		{"tool without schema", `{"model":"m","max_tokens":1,"tools":[{"name":"f"}],"messages":[` + user + `]}`, "tools.0.custom.input_schema: Field required"},
		{"bad system", `{"model":"m","max_tokens":1,"system":{"text":"x"},"messages":[` + user + `]}`, "system: Input should be a valid string or list"},
	} {
		resp := send(t, s, tc.body)
		got := readAll(t, resp)
		if tc.want == "" {
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d %s", tc.name, resp.StatusCode, got)
			}
			continue
		}
		var e errorBody
		if err := json.Unmarshal(got, &e); err != nil || resp.StatusCode != 400 || e.Type != "error" ||
			e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tc.want) {
			t.Errorf("%s: %d %s, want 400 containing %q", tc.name, resp.StatusCode, got, tc.want)
		}
	}
	if n := len(s.Requests()); n != 36 {
		t.Errorf("recorded %d requests", n)
	}
	if s.Count(AnyModel) != 8 {
		t.Errorf("Count = %d: rejected requests must not count", s.Count(AnyModel))
	}
}

func TestErrors(t *testing.T) {
	s := newServer(t)
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		step Step
		typ  string
		msg  string
	}{
		{Step{Status: 400, Message: "bad"}, "invalid_request_error", "bad"},
		{Step{Status: 401}, "authentication_error", ""},
		{Step{Status: 403}, "permission_error", ""},
		{Step{Status: 404}, "not_found_error", "Not found"},
		{Step{Status: 413}, "request_too_large", ""},
		{Step{Status: 429, RetryAfter: "7", Header: http.Header{"Anthropic-Ratelimit-Requests-Remaining": {"0"}}}, "rate_limit_error", ""},
		{Step{Status: 500}, "api_error", "Internal server error"},
		{Step{Status: 503, RetryAfter: date}, "api_error", ""},
		{Step{Status: 529}, "overloaded_error", "Overloaded"},
		{Step{Status: 400, Type: "custom_error", Message: "custom"}, "custom_error", "custom"},
	} {
		s.Script("m", tc.step)
		for _, stream := range []bool{false, true} {
			if stream {
				s.Script("m", tc.step)
			}
			resp := send(t, s, body("m", stream))
			var e errorBody
			if err := json.Unmarshal(readAll(t, resp), &e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.step.Status || resp.Header.Get("Content-Type") != "application/json" ||
				e.Type != "error" || e.Error.Type != tc.typ || e.Error.Message == "" || (tc.msg != "" && e.Error.Message != tc.msg) {
				t.Errorf("%d stream=%v: %d %+v", tc.step.Status, stream, resp.StatusCode, e)
			}
			if resp.Header.Get("Retry-After") != tc.step.RetryAfter {
				t.Errorf("%d: retry-after %q", tc.step.Status, resp.Header.Get("Retry-After"))
			}
			if tc.step.Status == 429 && resp.Header.Get("anthropic-ratelimit-requests-remaining") != "0" {
				t.Errorf("429: custom header missing: %v", resp.Header)
			}
		}
	}
	resp := send(t, s, body("m", false))
	if resp.StatusCode != 200 {
		t.Errorf("after the script: %d", resp.StatusCode)
	}

	for _, tc := range []struct {
		method, path string
		status       int
		typ          string
	}{
		{"GET", "/v1/messages", 405, "invalid_request_error"},
		{"POST", "/v1/complete", 404, "not_found_error"},
		{"POST", "/messages", 404, "not_found_error"},
	} {
		req, _ := http.NewRequest(tc.method, s.URL()+tc.path, strings.NewReader(body("m", false)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e errorBody
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || e.Error.Type != tc.typ {
			t.Errorf("%s %s: %d %+v %v", tc.method, tc.path, resp.StatusCode, e, err)
		}
	}
}

func TestAbortStream(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: Abort, FaultAfter: 3})
	resp := send(t, s, body("m", true))
	var names []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			names = append(names, name)
		}
	}
	if !errors.Is(sc.Err(), io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want unexpected EOF", sc.Err())
	}
	if strings.Join(names, " ") != "message_start content_block_start ping" {
		t.Errorf("events before the abort: %v", names)
	}
	// The script is consumed: the next request succeeds.
	if resp := send(t, s, body("m", true)); resp.StatusCode != 200 || !bytes.Contains(readAll(t, resp), []byte("message_stop")) {
		t.Error("after the script the stream is not complete")
	}
}

func TestAbortNonStreamed(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: Abort}, Step{Fault: Abort, FaultAfter: 1})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i, wantHeaders := range []bool{false, true} {
		req, _ := http.NewRequest("POST", s.URL()+"/v1/messages", strings.NewReader(body("m", false)))
		req.Header.Set("x-api-key", "k")
		req.Header.Set("anthropic-version", version)
		resp, err := client.Do(req)
		if !wantHeaders {
			if err == nil {
				resp.Body.Close()
				t.Errorf("step %d: got a response, want a connection error", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("step %d: body error %v, want unexpected EOF", i, err)
		}
	}
}

func TestMidStreamError(t *testing.T) {
	s := newServer(t)
	s.Script("m",
		Step{Fault: MidStreamError, FaultAfter: 4},
		Step{Fault: MidStreamError, FaultAfter: 1, Type: "api_error", Message: "Internal server error"},
	)
	got := readAll(t, send(t, s, body("m", true)))
	events, err := parseSSE(t, bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if len(events) != 5 || last.name != "error" || last.data != `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}` {
		t.Errorf("events %v", events)
	}
	if !bytes.HasSuffix(got, []byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n")) {
		t.Errorf("stream does not end with the error event: %q", got)
	}

	events, _ = parseSSE(t, send(t, s, body("m", true)).Body)
	if len(events) != 2 || events[1].data != `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}` {
		t.Errorf("events %v", events)
	}
}

func TestHangStopsWhenClientLeaves(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: Hang, FaultAfter: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/v1/messages", strings.NewReader(body("m", true)))
	req.Header.Set("x-api-key", "k")
	req.Header.Set("anthropic-version", version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "event: message_start\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if s.ActiveStreams() != 1 {
		t.Fatalf("ActiveStreams = %d, want 1", s.ActiveStreams())
	}
	cancel()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := s.WaitIdle(wctx); err != nil {
		t.Fatal(err)
	}
}

func TestHangNonStreamedReleasedByClose(t *testing.T) {
	s := New()
	s.Script("m", Step{Fault: Hang})
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.URL()+"/v1/messages", strings.NewReader(body("m", false)))
		req.Header.Set("x-api-key", "k")
		req.Header.Set("anthropic-version", version)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	for s.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	s.Close()
	if err := <-errc; err == nil {
		t.Error("hanging request got a response")
	}
	if s.InFlight() != 0 {
		t.Error("Close left a handler running")
	}
}

func TestLatencyAndChunkInterval(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Latency: 50 * time.Millisecond}, Step{Chunks: 2, ChunkInterval: 10 * time.Millisecond}, Step{Latency: time.Hour})
	start := time.Now()
	send(t, s, body("m", false))
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, want >= 50ms", d)
	}
	start = time.Now()
	events, _ := parseSSE(t, send(t, s, body("m", true)).Body)
	if d := time.Since(start); len(events) != 8 || d < 70*time.Millisecond {
		t.Errorf("%d events in %v, want 8 events taking >= 7 intervals", len(events), d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/v1/messages", strings.NewReader(body("m", false)))
	req.Header.Set("x-api-key", "k")
	req.Header.Set("anthropic-version", version)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.InFlight() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s.InFlight() != 0 {
		t.Error("handler still waiting after the client left")
	}
}

func TestScriptsDefaultsCountsReset(t *testing.T) {
	s := newServer(t)
	reply := func(model string) string {
		t.Helper()
		var got struct {
			Content []struct{ Text string }
			Error   *struct{ Type string }
		}
		if err := json.Unmarshal(readAll(t, send(t, s, body(model, false))), &got); err != nil {
			t.Fatal(err)
		}
		if got.Error != nil {
			return "error " + got.Error.Type
		}
		return got.Content[0].Text
	}
	s.SetDefault(AnyModel, Step{Reply: "any"})
	s.SetDefault("a", Step{Reply: "a-default"})
	s.Script("a", Step{Reply: "a1"}, Step{Status: 529})
	s.Script(AnyModel, Step{Reply: "star1"})
	steps := []struct{ model, want string }{
		{"a", "a1"}, {"a", "error overloaded_error"}, {"a", "star1"}, {"a", "a-default"}, {"b", "any"},
	}
	for _, st := range steps {
		if got := reply(st.model); got != st.want {
			t.Errorf("%s: got %q, want %q", st.model, got, st.want)
		}
	}
	if s.Count("a") != 4 || s.Count("b") != 1 || s.Count(AnyModel) != 5 || len(s.Requests()) != 5 {
		t.Errorf("counts a=%d b=%d all=%d recorded=%d", s.Count("a"), s.Count("b"), s.Count(AnyModel), len(s.Requests()))
	}
	rec := s.Requests()[0]
	if rec.Model != "a" || rec.Stream || rec.Body["max_tokens"] != float64(256) || string(rec.Raw) != body("a", false) ||
		rec.Path != "/v1/messages" || rec.Method != "POST" {
		t.Errorf("recorded %+v", rec)
	}

	s.Reset()
	if s.Count("a") != 0 || len(s.Requests()) != 0 || reply("a") != "Hello from a" {
		t.Error("Reset did not restore the initial state")
	}

	s.Reset()
	s.SetRecording(false)
	reply("a")
	if len(s.Requests()) != 0 || s.Count("a") != 1 {
		t.Errorf("recording off: %d records, count %d", len(s.Requests()), s.Count("a"))
	}
}

func TestScriptRejectsBadArguments(t *testing.T) {
	s := newServer(t)
	for _, args := range []string{`[1]`, `{"a":`, `"x"`, `null`} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Script accepted arguments %s", args)
				}
			}()
			s.Script("m", Step{ToolCalls: []ToolCall{{Name: "f", Arguments: args}}})
		}()
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newServer(t)
	const workers, each = 8, 25
	s.Script("m", make([]Step, workers*each/2)...) // half the requests take a scripted zero Step
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				req, _ := http.NewRequest("POST", s.URL()+"/v1/messages", strings.NewReader(body("m", w%2 == 0)))
				req.Header.Set("x-api-key", "k")
				req.Header.Set("anthropic-version", version)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Contains(b, []byte("Hel")) {
					t.Errorf("status %d body %s", resp.StatusCode, b)
					return
				}
			}
		})
		s.SetDefault("other", Step{Reply: "x"})
	}
	wg.Wait()
	if s.Count("m") != workers*each || len(s.Requests()) != workers*each {
		t.Errorf("count %d, recorded %d", s.Count("m"), len(s.Requests()))
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want []string
	}{
		{"", 4, nil},
		{"ab", 4, []string{"a", "b"}},
		{"abcde", 2, []string{"abc", "de"}},
		{"äöü", 3, []string{"ä", "ö", "ü"}},
	} {
		got := split(tc.s, tc.n)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("split(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
