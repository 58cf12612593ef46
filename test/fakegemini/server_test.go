package fakegemini

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const hi = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`

func newServer(t *testing.T) *Server {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	return s
}

// call posts body to /v1beta/models/{model}:{action}{query} with an x-goog-api-key header;
// edit may change the request.
func call(t *testing.T, s *Server, model, action, query, body string, edit ...func(*http.Request)) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/v1beta/models/"+model+":"+action+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", "k")
	for _, e := range edit {
		e(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func generate(t *testing.T, s *Server, model string) *http.Response {
	t.Helper()
	return call(t, s, model, ActionGenerate, "", hi)
}

func stream(t *testing.T, s *Server, model string) *http.Response {
	t.Helper()
	return call(t, s, model, ActionStream, "?alt=sse", hi)
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return buf.String()
}

// parseSSE returns the data of each event of a stream, parsed the way the WHATWG
// EventSource algorithm does (CRLF, LF or CR line endings; dispatch on a blank line).
// Gemini's events are a single data line each, and a stream must end with a complete event.
func parseSSE(t *testing.T, r io.Reader) ([]string, error) {
	t.Helper()
	b, err := io.ReadAll(r)
	text := strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\r", "\n")
	if text == "" {
		return nil, err
	}
	if !strings.HasSuffix(text, "\n\n") {
		t.Errorf("stream ends inside an event: %q", b)
	}
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(text, "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Errorf("malformed event %q", ev)
		}
		out = append(out, data)
	}
	return out, err
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

func TestGenerateJSON(t *testing.T) {
	s := newServer(t)
	resp := generate(t, s, "gemini-x")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=UTF-8" {
		t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := readAll(t, resp)
	if !bytes.HasPrefix(got, []byte("{\n  \"candidates\": [\n")) {
		t.Errorf("not indented like Google's JSON: %s", got)
	}
	want := `{"candidates":[{"content":{"parts":[{"text":"Hello from gemini-x"}],"role":"model"},"finishReason":"STOP","index":0}],` +
		`"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":3,"totalTokenCount":15},` +
		`"modelVersion":"gemini-x","responseId":"fakeresp0000000000000001"}`
	if c := compact(t, got); c != want {
		t.Errorf("body\n got %s\nwant %s", c, want)
	}
}

func TestFunctionCallJSON(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{
		Reply: "Let me check.",
		ToolCalls: []ToolCall{
			{Name: "get_weather", Arguments: `{ "city": "Zürich" }`, ThoughtSignature: "sig"},
			{Name: "noop", ID: "call-2"},
		},
		Usage: &UsageMetadata{PromptTokenCount: 100, CandidatesTokenCount: 7, TotalTokenCount: 120, ThoughtsTokenCount: 13},
	})
	got := compact(t, readAll(t, generate(t, s, "m")))
	want := `{"candidates":[{"content":{"parts":[{"text":"Let me check."},` +
		`{"functionCall":{"name":"get_weather","args":{"city":"Zürich"}},"thoughtSignature":"sig"},` +
		`{"functionCall":{"id":"call-2","name":"noop","args":{}}}],"role":"model"},"finishReason":"STOP","index":0}],` +
		`"usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":7,"totalTokenCount":120,"thoughtsTokenCount":13},` +
		`"modelVersion":"m","responseId":"fakeresp0000000000000001"}`
	if got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

// TestStreamGolden pins the exact bytes of short streams, CRLF framing included.
func TestStreamGolden(t *testing.T) {
	s := newServer(t)
	s.SetDefault("gemini-text", Step{Reply: "Hi there", Chunks: 2})
	s.SetDefault("gemini-tool", Step{
		Reply: "Checking.", Chunks: 1,
		ToolCalls: []ToolCall{{Name: "get_weather", Arguments: `{"city":"Paris"}`}, {Name: "get_time", Arguments: `{"tz":"CET"}`}},
	})
	for _, model := range []string{"gemini-text", "gemini-tool"} {
		resp := stream(t, s, model)
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("content-type %q", ct)
		}
		golden(t, "stream_"+strings.TrimPrefix(model, "gemini-")+".golden", readAll(t, resp))
	}

	// SetEventTerminator changes only the framing.
	s.Reset()
	s.SetDefault("gemini-text", Step{Reply: "Hi there", Chunks: 2})
	s.SetEventTerminator(TerminatorLF)
	want, _ := os.ReadFile(filepath.Join("testdata", "stream_text.golden"))
	want = bytes.ReplaceAll(want, []byte("\r\n\r\n"), []byte("\n\n"))
	want = bytes.ReplaceAll(want, []byte("fakeresp0000000000000001"), []byte("fakeresp0000000000000003"))
	if got := readAll(t, stream(t, s, "gemini-text")); !bytes.Equal(got, want) {
		t.Errorf("LF stream:\n got %q\nwant %q", got, want)
	}
}

func TestStreamEvents(t *testing.T) {
	s := newServer(t)
	s.SetDefault("m", Step{
		Reply: "héllo wörld, streamed", Chunks: 5,
		ToolCalls: []ToolCall{{Name: "a", Arguments: `{"x":[1,2]}`}, {Name: "b"}},
	})
	events, err := parseSSE(t, stream(t, s, "m").Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 6 { // 5 text pieces, 1 with both function calls
		t.Fatalf("%d events: %q", len(events), events)
	}
	var text strings.Builder
	var id string
	for i, data := range events {
		if data == "[DONE]" {
			t.Fatal("Gemini streams have no [DONE]")
		}
		e := decode(t, data)
		if i == 0 {
			id = e["responseId"].(string)
		}
		if e["responseId"] != id || e["modelVersion"] != "m" {
			t.Errorf("event %d envelope %v", i, e)
		}
		c := e["candidates"].([]any)[0].(map[string]any)
		content := c["content"].(map[string]any)
		if content["role"] != "model" || c["index"] != float64(0) {
			t.Errorf("event %d candidate %v", i, c)
		}
		_, hasFinish := c["finishReason"]
		_, hasUsage := e["usageMetadata"]
		if last := i == len(events)-1; hasFinish != last || hasUsage != last {
			t.Errorf("event %d: finishReason %v usageMetadata %v", i, hasFinish, hasUsage)
		}
		parts := content["parts"].([]any)
		if i < 5 {
			text.WriteString(parts[0].(map[string]any)["text"].(string))
			continue
		}
		if len(parts) != 2 || compact(t, []byte(events[i])) == "" {
			t.Fatalf("function call event %s", data)
		}
		fc := parts[0].(map[string]any)["functionCall"].(map[string]any)
		if fc["name"] != "a" || !reflect.DeepEqual(fc["args"], map[string]any{"x": []any{1.0, 2.0}}) {
			t.Errorf("function call %v", fc)
		}
		if c["finishReason"] != "STOP" || e["usageMetadata"].(map[string]any)["candidatesTokenCount"] != float64(3+20) {
			t.Errorf("last event %s", data)
		}
	}
	if text.String() != "héllo wörld, streamed" {
		t.Errorf("text %q", text.String())
	}
	if rec := s.Requests()[0]; !rec.Stream || rec.Query.Get("alt") != "sse" || rec.Action != ActionStream || rec.Model != "m" {
		t.Errorf("recorded %+v", rec)
	}
}

func TestUsageEveryEvent(t *testing.T) {
	s := newServer(t)
	s.SetDefault("m", Step{Reply: "one two three four", Chunks: 2, UsageEveryEvent: true})
	events, _ := parseSSE(t, stream(t, s, "m").Body)
	var counts []float64
	for _, data := range events {
		u := decode(t, data)["usageMetadata"].(map[string]any)
		counts = append(counts, u["candidatesTokenCount"].(float64))
		if u["promptTokenCount"] != float64(DefaultPromptTokens) {
			t.Errorf("usage %v", u)
		}
	}
	if !reflect.DeepEqual(counts, []float64{3, 4}) { // "one two th", then all four words
		t.Errorf("cumulative counts %v", counts)
	}
}

func TestStreamWithoutAltIsJSONArray(t *testing.T) {
	s := newServer(t)
	s.SetDefault("m", Step{Reply: "one two", Chunks: 2})
	resp := call(t, s, "m", ActionStream, "", hi)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("content-type %q", ct)
	}
	var arr []map[string]any
	if err := json.Unmarshal(readAll(t, resp), &arr); err != nil {
		t.Fatal(err)
	}
	if len(arr) != 2 || arr[1]["candidates"].([]any)[0].(map[string]any)["finishReason"] != "STOP" {
		t.Errorf("array %v", arr)
	}
}

func TestBlockedAndFinishReasons(t *testing.T) {
	s := newServer(t)
	s.Script("m",
		Step{Blocked: true},
		Step{Blocked: true, BlockReason: "PROHIBITED_CONTENT"},
		Step{FinishReason: FinishSafety},
		Step{FinishReason: FinishMaxTokens},
		Step{Reply: "partial answer", FinishReason: FinishSafety, Chunks: 2},
	)
	got := compact(t, readAll(t, generate(t, s, "m")))
	want := `{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":12,"totalTokenCount":12},` +
		`"modelVersion":"m","responseId":"fakeresp0000000000000001"}`
	if got != want {
		t.Errorf("blocked\n got %s\nwant %s", got, want)
	}
	events, _ := parseSSE(t, stream(t, s, "m").Body)
	if len(events) != 1 || decode(t, events[0])["promptFeedback"].(map[string]any)["blockReason"] != "PROHIBITED_CONTENT" ||
		decode(t, events[0])["candidates"] != nil {
		t.Errorf("blocked stream %q", events)
	}

	got = compact(t, readAll(t, generate(t, s, "m")))
	want = `{"candidates":[{"finishReason":"SAFETY","index":0}],"usageMetadata":{"promptTokenCount":12,"totalTokenCount":12},` +
		`"modelVersion":"m","responseId":"fakeresp0000000000000003"}`
	if got != want {
		t.Errorf("SAFETY\n got %s\nwant %s", got, want)
	}
	if got := compact(t, readAll(t, generate(t, s, "m"))); !strings.Contains(got, `"text":"Hello from m"}],"role":"model"},"finishReason":"MAX_TOKENS"`) {
		t.Errorf("MAX_TOKENS %s", got)
	}
	events, _ = parseSSE(t, stream(t, s, "m").Body)
	if len(events) != 2 || !strings.Contains(events[1], `"finishReason":"SAFETY"`) {
		t.Errorf("partial SAFETY stream %q", events)
	}
}

func TestAPIKey(t *testing.T) {
	s := newServer(t)
	noHeader := func(r *http.Request) { r.Header.Del("x-goog-api-key") }
	for _, tc := range []struct {
		name    string
		query   string
		edit    func(*http.Request)
		status  int
		keyFrom string
	}{
		{"header", "", nil, 200, KeyHeader},
		{"query", "?key=q", noHeader, 200, KeyQuery},
		{"both", "?key=q", nil, 200, KeyBoth},
		{"none", "", noHeader, 403, KeyNone},
		{"bearer is not a key", "", func(r *http.Request) { noHeader(r); r.Header.Set("Authorization", "Bearer k") }, 403, KeyNone},
	} {
		edits := []func(*http.Request){}
		if tc.edit != nil {
			edits = append(edits, tc.edit)
		}
		resp := call(t, s, "m", ActionGenerate, tc.query, hi, edits...)
		body := readAll(t, resp)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
		if rec := s.Requests(); rec[len(rec)-1].KeyFrom != tc.keyFrom {
			t.Errorf("%s: KeyFrom %q", tc.name, rec[len(rec)-1].KeyFrom)
		}
		if tc.status == 403 {
			var e errorBody
			_ = json.Unmarshal(body, &e)
			if e.Error.Code != 403 || e.Error.Status != "PERMISSION_DENIED" || !strings.Contains(e.Error.Message, "unregistered callers") {
				t.Errorf("%s: %s", tc.name, body)
			}
		}
	}

	s.RequireAPIKey("AIza-right")
	resp := generate(t, s, "m")
	got := compact(t, readAll(t, resp))
	want := `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",` +
		`"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"googleapis.com",` +
		`"metadata":{"service":"generativelanguage.googleapis.com"},"reason":"API_KEY_INVALID"}]}}`
	if resp.StatusCode != 400 || got != want {
		t.Errorf("wrong key: %d\n got %s\nwant %s", resp.StatusCode, got, want)
	}
	right := func(r *http.Request) { r.Header.Set("x-goog-api-key", "AIza-right") }
	if resp := call(t, s, "m", ActionGenerate, "", hi, right); resp.StatusCode != 200 {
		t.Errorf("right key: %d", resp.StatusCode)
	}
	if resp := call(t, s, "m", ActionGenerate, "?key=AIza-right", hi, noHeader); resp.StatusCode != 200 {
		t.Errorf("right key in the query: %d", resp.StatusCode)
	}
	if rec := s.Requests(); rec[len(rec)-1].APIKey != "AIza-right" {
		t.Errorf("APIKey %q", rec[len(rec)-1].APIKey)
	}
}

func TestValidation(t *testing.T) {
	s := newServer(t)
	contents := func(c ...string) string { return `{"contents":[` + strings.Join(c, ",") + `]}` }
	for _, tc := range []struct {
		name, body, want string // want "" means accepted
	}{
		{"minimal", hi, ""},
		{"no role", contents(`{"parts":[{"text":"hi"}]}`), ""},
		{"conversation", contents(`{"role":"user","parts":[{"text":"hi"}]}`, `{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]}`,
			`{"role":"user","parts":[{"functionResponse":{"name":"f","response":{"x":1}}}]}`), ""},
		{"empty text is set", contents(`{"role":"user","parts":[{"text":""}]}`), ""},
		{"everything", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"systemInstruction":{"parts":[{"text":"be brief"}]},` +
			`"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}},` +
			`"generationConfig":{"maxOutputTokens":10},"safetySettings":[],"generation_config":{}}`, ""},
		{"not json", `{"contents":`, "Invalid JSON payload"},
		{"no contents", `{}`, "* GenerateContentRequest.contents: contents is not specified"},
		{"empty contents", contents(), "contents is not specified"},
		{"openai body", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, `Unknown name "messages": Cannot find field.`},
		{"unknown field", `{"contents":[{"parts":[{"text":"hi"}]}],"maxTokens":5}`, `Unknown name "maxTokens"`},
		{"assistant role", contents(`{"role":"assistant","parts":[{"text":"hi"}]}`), "Please use a valid role: user, model."},
		{"system role", contents(`{"role":"system","parts":[{"text":"hi"}]}`), "Please use a valid role: user, model."},
		{"no parts", contents(`{"role":"user"}`), "contents[0].parts: contents.parts must not be empty."},
		{"empty parts", contents(`{"role":"user","parts":[]}`), "contents.parts must not be empty"},
		{"empty part", contents(`{"role":"user","parts":[{}]}`), "contents[0].parts[0].data: required oneof field 'data' must have one initialized field"},
		{"two data fields", contents(`{"role":"model","parts":[{"text":"x","functionCall":{"name":"f"}}]}`), "oneof field 'data' is already set"},
		{"empty system instruction", `{"contents":[{"parts":[{"text":"hi"}]}],"systemInstruction":{"parts":[]}}`, "system_instruction.parts"},
	} {
		for _, action := range []string{ActionGenerate, ActionStream} {
			resp := call(t, s, "m", action, "?alt=sse", tc.body)
			got := readAll(t, resp)
			if tc.want == "" {
				if resp.StatusCode != 200 {
					t.Errorf("%s %s: %d %s", tc.name, action, resp.StatusCode, got)
				}
				continue
			}
			var e errorBody
			if err := json.Unmarshal(got, &e); err != nil || resp.StatusCode != 400 || e.Error.Code != 400 ||
				e.Error.Status != "INVALID_ARGUMENT" || !strings.Contains(e.Error.Message, tc.want) {
				t.Errorf("%s %s: %d %s, want 400 containing %q", tc.name, action, resp.StatusCode, got, tc.want)
			}
		}
	}
	if s.Count(AnyModel) != 10 {
		t.Errorf("Count = %d: rejected requests must not count", s.Count(AnyModel))
	}
}

func TestErrors(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct {
		step Step
		want string // the compacted body
	}{
		{Step{Status: 400, Message: "bad"}, `{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}`},
		{Step{Status: 403}, `{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`},
		{Step{Status: 404}, `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}`},
		{Step{Status: 429}, `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[` +
			`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier",` +
			`"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaValue":"10"}]},` +
			`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]}}`},
		{Step{Status: 429, RetryDelay: "0.5s", Message: "quota"}, `"retryDelay":"0.5s"`},
		{Step{Status: 429, Details: []map[string]any{}}, `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`},
		{Step{Status: 500}, `{"error":{"code":500,"message":"An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}}`},
		{Step{Status: 503, RetryAfter: "3"}, `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`},
		{Step{Status: 504}, `"status":"DEADLINE_EXCEEDED"`},
		{Step{Status: 400, StatusName: "FAILED_PRECONDITION", Message: "User location is not supported for the API use."}, `"status":"FAILED_PRECONDITION"`},
	} {
		for _, action := range []string{ActionGenerate, ActionStream} {
			s.Script("m", tc.step)
			resp := call(t, s, "m", action, "?alt=sse", hi)
			got := compact(t, readAll(t, resp))
			if resp.StatusCode != tc.step.Status || resp.Header.Get("Content-Type") != "application/json; charset=UTF-8" || !strings.Contains(got, tc.want) {
				t.Errorf("%d %s: %d %s\nwant %s", tc.step.Status, action, resp.StatusCode, got, tc.want)
			}
			if resp.Header.Get("Retry-After") != tc.step.RetryAfter {
				t.Errorf("retry-after %q", resp.Header.Get("Retry-After"))
			}
		}
	}

	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1beta/models/m:generateContent"},
		{"POST", "/v1beta/models/m:countTokens"},
		{"POST", "/v1beta/models/m"},
		{"POST", "/v1/chat/completions"},
	} {
		req, _ := http.NewRequest(tc.method, s.URL()+tc.path, strings.NewReader(hi))
		req.Header.Set("x-goog-api-key", "k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e errorBody
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 404 || e.Error.Status != "NOT_FOUND" {
			t.Errorf("%s %s: %d %+v %v", tc.method, tc.path, resp.StatusCode, e, err)
		}
	}
	// The v1 surface works too.
	req, _ := http.NewRequest("POST", s.URL()+"/v1/models/m:generateContent", strings.NewReader(hi))
	req.Header.Set("x-goog-api-key", "k")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("v1: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestEmbeddings(t *testing.T) {
	s := newServer(t)
	body := `{"requests":[` +
		`{"model":"models/text-embedding-004","content":{"parts":[{"text":"hello"}]}},` +
		`{"model":"models/text-embedding-004","content":{"parts":[{"text":"wor"},{"text":"ld"}]},"outputDimensionality":8,"taskType":"RETRIEVAL_QUERY"}]}`
	resp := call(t, s, "text-embedding-004", ActionBatchEmbed, "", body)
	var got struct {
		Embeddings []struct{ Values []float32 }
	}
	if err := json.Unmarshal(readAll(t, resp), &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if len(got.Embeddings) != 2 || !reflect.DeepEqual(got.Embeddings[0].Values, Embedding("hello", DefaultEmbeddingDims)) ||
		!reflect.DeepEqual(got.Embeddings[1].Values, Embedding("world", 8)) {
		t.Errorf("embeddings %d: %v", len(got.Embeddings), got.Embeddings)
	}

	resp = call(t, s, "text-embedding-004", ActionEmbed, "", `{"content":{"parts":[{"text":"hello"}]},"output_dimensionality":4}`)
	var one struct{ Embedding struct{ Values []float32 } }
	if err := json.Unmarshal(readAll(t, resp), &one); err != nil || !reflect.DeepEqual(one.Embedding.Values, Embedding("hello", 4)) {
		t.Errorf("embedContent: %v %v", one, err)
	}

	for _, tc := range []struct{ body, want string }{
		{`{}`, "requests is not specified"},
		{`{"input":["x"]}`, `Unknown name \"input\"`},
		{`{"requests":[{"content":{"parts":[{"text":"x"}]}}]}`, "requests[0].model: model is required"},
		{`{"requests":[{"model":"models/other","content":{"parts":[{"text":"x"}]}}]}`, "does not match the model of the URL"},
		{`{"requests":[{"model":"text-embedding-004","content":{"parts":[{"text":"x"}]}}]}`, "does not match"},
		{`{"requests":[{"model":"models/text-embedding-004","content":{"parts":[]}}]}`, "parts must not be empty"},
		{`{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"x"}]},"outputDimensionality":0}]}`, "output_dimensionality"},
		{`{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"x"}]},"outputDimensionality":1.5}]}`, "TYPE_INT32"},
	} {
		resp := call(t, s, "text-embedding-004", ActionBatchEmbed, "", tc.body)
		got := readAll(t, resp)
		if resp.StatusCode != 400 || !strings.Contains(string(got), tc.want) {
			t.Errorf("%s: %d %s, want %q", tc.body, resp.StatusCode, got, tc.want)
		}
	}

	s.Script("text-embedding-004", Step{Status: 429, RetryDelay: "1s"})
	resp = call(t, s, "text-embedding-004", ActionBatchEmbed, "", body)
	if b := readAll(t, resp); resp.StatusCode != 429 || !strings.Contains(string(b), `"retryDelay": "1s"`) {
		t.Errorf("scripted embed error: %d %s", resp.StatusCode, b)
	}
	if s.Count("text-embedding-004") != 3 {
		t.Errorf("count %d", s.Count("text-embedding-004"))
	}
	if rec := s.Requests()[0]; rec.Action != ActionBatchEmbed || rec.Model != "text-embedding-004" || rec.Stream || len(rec.Body["requests"].([]any)) != 2 {
		t.Errorf("recorded %+v", rec)
	}
}

func TestEmbeddingValues(t *testing.T) {
	a, b := Embedding("hello", 768), Embedding("hello", 768)
	if !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, Embedding("hellp", 768)) {
		t.Error("embeddings are not a deterministic function of the text")
	}
	for _, dims := range []int{1, 8, 768, 3072} {
		var norm float64
		for _, v := range Embedding("x", dims) {
			norm += float64(v) * float64(v)
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Errorf("dims %d: norm² %v", dims, norm)
		}
	}
}

func TestAbortStream(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: Abort, FaultAfter: 2})
	resp := stream(t, s, "m")
	var n int
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			n++
		}
	}
	if !errors.Is(sc.Err(), io.ErrUnexpectedEOF) || n != 2 {
		t.Errorf("%d events, err = %v; want 2 and unexpected EOF", n, sc.Err())
	}
	if events, err := parseSSE(t, stream(t, s, "m").Body); err != nil || len(events) != DefaultChunks {
		t.Errorf("after the script: %d events, %v", len(events), err)
	}
}

func TestAbortNonStreamed(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: Abort}, Step{Fault: Abort, FaultAfter: 1})
	s.Script("e", Step{Fault: Abort, FaultAfter: 1})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i, tc := range []struct {
		model, action, body string
		wantHeaders         bool
	}{
		{"m", ActionGenerate, hi, false},
		{"m", ActionGenerate, hi, true},
		{"e", ActionEmbed, `{"content":{"parts":[{"text":"x"}]}}`, true},
	} {
		req, _ := http.NewRequest("POST", s.URL()+"/v1beta/models/"+tc.model+":"+tc.action, strings.NewReader(tc.body))
		req.Header.Set("x-goog-api-key", "k")
		resp, err := client.Do(req)
		if !tc.wantHeaders {
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
		Step{Fault: MidStreamError, FaultAfter: 2},
		Step{Fault: MidStreamError, FaultAfter: 0, StatusName: "INTERNAL", Message: "boom"},
	)
	got := readAll(t, stream(t, s, "m"))
	want := "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded. Please try again later.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n"
	events, _ := parseSSE(t, bytes.NewReader(got))
	if len(events) != 3 || !bytes.HasSuffix(got, []byte(want)) {
		t.Errorf("stream %q", got)
	}
	events, _ = parseSSE(t, stream(t, s, "m").Body)
	if len(events) != 1 || events[0] != `{"error":{"code":500,"message":"boom","status":"INTERNAL"}}` {
		t.Errorf("events %q", events)
	}
}

func TestHangStopsWhenClientLeaves(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: Hang, FaultAfter: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/v1beta/models/m:streamGenerateContent?alt=sse", strings.NewReader(hi))
	req.Header.Set("x-goog-api-key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") || !strings.HasSuffix(line, "\r\n") {
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

func TestLatencyAndChunkInterval(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Latency: 50 * time.Millisecond}, Step{Chunks: 4, ChunkInterval: 20 * time.Millisecond, Reply: "a b c d"})
	start := time.Now()
	generate(t, s, "m")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, want >= 50ms", d)
	}
	start = time.Now()
	events, _ := parseSSE(t, stream(t, s, "m").Body)
	if d := time.Since(start); len(events) != 4 || d < 60*time.Millisecond {
		t.Errorf("%d events in %v, want 4 taking >= 3 intervals", len(events), d)
	}
}

func TestScriptsDefaultsCountsReset(t *testing.T) {
	s := newServer(t)
	reply := func(model string) string {
		t.Helper()
		var got struct {
			Candidates []struct {
				Content struct{ Parts []struct{ Text string } }
			}
			Error *struct{ Status string }
		}
		if err := json.Unmarshal(readAll(t, generate(t, s, model)), &got); err != nil {
			t.Fatal(err)
		}
		if got.Error != nil {
			return "error " + got.Error.Status
		}
		return got.Candidates[0].Content.Parts[0].Text
	}
	s.SetDefault(AnyModel, Step{Reply: "any"})
	s.SetDefault("a", Step{Reply: "a-default"})
	s.Script("a", Step{Reply: "a1"}, Step{Status: 503})
	s.Script(AnyModel, Step{Reply: "star1"})
	steps := []struct{ model, want string }{
		{"a", "a1"}, {"a", "error UNAVAILABLE"}, {"a", "star1"}, {"a", "a-default"}, {"b", "any"},
	}
	for _, st := range steps {
		if got := reply(st.model); got != st.want {
			t.Errorf("%s: got %q, want %q", st.model, got, st.want)
		}
	}
	if s.Count("a") != 4 || s.Count("b") != 1 || s.Count(AnyModel) != 5 || len(s.Requests()) != 5 {
		t.Errorf("counts a=%d b=%d all=%d recorded=%d", s.Count("a"), s.Count("b"), s.Count(AnyModel), len(s.Requests()))
	}
	if rec := s.Requests()[0]; string(rec.Raw) != hi || rec.Body["contents"] == nil || rec.Action != ActionGenerate || rec.KeyFrom != KeyHeader {
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

func TestBadConfigurationPanics(t *testing.T) {
	s := newServer(t)
	for name, f := range map[string]func(){
		"array args":      func() { s.Script("m", Step{ToolCalls: []ToolCall{{Name: "f", Arguments: `[1]`}}}) },
		"broken args":     func() { s.SetDefault("m", Step{ToolCalls: []ToolCall{{Name: "f", Arguments: `{"a":`}}}) },
		"bad terminator":  func() { s.SetEventTerminator("\n") },
		"text terminator": func() { s.SetEventTerminator("END") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
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
			action, query := ActionGenerate, ""
			if w%2 == 0 {
				action, query = ActionStream, "?alt=sse"
			}
			for range each {
				req, _ := http.NewRequest("POST", s.URL()+"/v1beta/models/m:"+action+query, strings.NewReader(hi))
				req.Header.Set("x-goog-api-key", "k")
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
