package fakeupstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

func newServer(t *testing.T) *Server {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	return s
}

func sdk(s *Server, opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(s.URL()), option.WithAPIKey("k"), option.WithMaxRetries(0),
	}, opts...)...)
	return &c
}

func userParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}
}

func post(t *testing.T, s *Server, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// sseData returns the data payloads of an SSE body, checking the framing on the way.
func sseData(t *testing.T, body []byte) []string {
	t.Helper()
	if !bytes.HasSuffix(body, []byte("\n\n")) {
		t.Fatalf("stream does not end with a blank line: %q", body)
	}
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("malformed event %q", ev)
		}
		out = append(out, data)
	}
	return out
}

func TestJSONWireFormat(t *testing.T) {
	s := newServer(t)
	resp := post(t, s, chatBody)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no x-request-id")
	}
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["object"] != "chat.completion" || got["model"] != "gpt-4o-mini" || got["system_fingerprint"] != SystemFingerprint {
		t.Errorf("bad envelope: %v", got)
	}
	if id, _ := got["id"].(string); !strings.HasPrefix(id, "chatcmpl-") {
		t.Errorf("id %q", got["id"])
	}
	choice := got["choices"].([]any)[0].(map[string]any)
	if v, ok := choice["logprobs"]; !ok || v != nil {
		t.Errorf("logprobs must be present and null: %v", choice)
	}
	msg := choice["message"].(map[string]any)
	if msg["role"] != "assistant" || msg["content"] != "Hello from gpt-4o-mini" || choice["finish_reason"] != "stop" {
		t.Errorf("choice %v", choice)
	}
	usage := got["usage"].(map[string]any)
	if usage["prompt_tokens"].(float64) != DefaultPromptTokens || usage["completion_tokens"].(float64) != 3 || usage["total_tokens"].(float64) != DefaultPromptTokens+3 {
		t.Errorf("usage %v", usage)
	}
}

func TestIDsAreUniqueAcrossCachedResponses(t *testing.T) {
	s := newServer(t)
	ids := map[string]bool{}
	for range 3 {
		var got struct{ ID string }
		if err := json.NewDecoder(post(t, s, chatBody).Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		ids[got.ID] = true
	}
	if len(ids) != 3 {
		t.Errorf("ids not unique: %v", ids)
	}
}

func TestStreamWireFormat(t *testing.T) {
	s := newServer(t)
	s.SetDefault("m", Step{Reply: "one two three four five", Chunks: 3})
	resp := post(t, s, `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content-type %q", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	events := sseData(t, body)
	// role, 3 content, finish, usage, [DONE]
	if len(events) != 7 || events[6] != "[DONE]" {
		t.Fatalf("events %q", events)
	}
	var text strings.Builder
	var id string
	for i, ev := range events[:6] {
		var c map[string]any
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		if c["object"] != "chat.completion.chunk" || c["model"] != "m" || c["system_fingerprint"] != SystemFingerprint || c["created"] == nil {
			t.Errorf("chunk %d envelope: %v", i, c)
		}
		if i == 0 {
			id = c["id"].(string)
		} else if c["id"] != id {
			t.Errorf("chunk %d id %v, want %s", i, c["id"], id)
		}
		choices := c["choices"].([]any)
		if i == 5 {
			if len(choices) != 0 || c["usage"] == nil {
				t.Errorf("usage chunk: %v", c)
			}
			continue
		}
		ch := choices[0].(map[string]any)
		if v, ok := ch["logprobs"]; !ok || v != nil {
			t.Errorf("chunk %d logprobs: %v", i, ch)
		}
		fr, ok := ch["finish_reason"]
		if !ok || (i < 4 && fr != nil) || (i == 4 && fr != "stop") {
			t.Errorf("chunk %d finish_reason %v", i, fr)
		}
		delta := ch["delta"].(map[string]any)
		if i == 0 && delta["role"] != "assistant" {
			t.Errorf("first delta %v", delta)
		}
		if s, ok := delta["content"].(string); ok {
			text.WriteString(s)
		}
	}
	if text.String() != "one two three four five" {
		t.Errorf("content %q", text.String())
	}

	// Without include_usage there is no usage chunk.
	body, _ = io.ReadAll(post(t, s, `{"model":"m","messages":[],"stream":true}`).Body)
	if n := len(sseData(t, body)); n != 6 {
		t.Errorf("got %d events without include_usage, want 6", n)
	}
}

func TestSDKChat(t *testing.T) {
	s := newServer(t)
	c := sdk(s)
	got, err := c.Chat.Completions.New(context.Background(), userParams("gpt-4o-mini"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Choices[0].Message.Content != "Hello from gpt-4o-mini" || got.Usage.TotalTokens != DefaultPromptTokens+3 {
		t.Errorf("got %s", got.RawJSON())
	}
	rec := s.Requests()
	if len(rec) != 1 || rec[0].Model != "gpt-4o-mini" || rec[0].Header.Get("Authorization") != "Bearer k" ||
		len(rec[0].Body.Messages) != 1 || rec[0].Body.Messages[0].Content.String() != "hi" {
		t.Errorf("recorded %+v", rec)
	}
}

func TestSDKStream(t *testing.T) {
	s := newServer(t)
	s.SetDefault(AnyModel, Step{Reply: "héllo wörld, streamed", Chunks: 5})
	params := userParams("gpt-4o")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := sdk(s).Chat.Completions.NewStreaming(context.Background(), params)
	acc := openai.ChatCompletionAccumulator{}
	n := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		n++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 8 { // role, 5 content, finish, usage
		t.Errorf("got %d chunks", n)
	}
	if got := acc.Choices[0].Message.Content; got != "héllo wörld, streamed" {
		t.Errorf("content %q", got)
	}
	if acc.Choices[0].FinishReason != "stop" || acc.Usage.CompletionTokens != 3 {
		t.Errorf("finish %q usage %+v", acc.Choices[0].FinishReason, acc.Usage)
	}
	if !s.Requests()[0].Stream || s.Count("gpt-4o") != 1 {
		t.Error("stream request not recorded")
	}
}

func TestSDKToolCallStream(t *testing.T) {
	s := newServer(t)
	args := `{"city":"Zürich","unit":"celsius"}`
	s.Script("gpt-4o", Step{ToolCalls: []ToolCall{{Name: "get_weather", Arguments: args, Pieces: 4}}})
	stream := sdk(s).Chat.Completions.NewStreaming(context.Background(), userParams("gpt-4o"))
	acc := openai.ChatCompletionAccumulator{}
	var finished []openai.FinishedChatCompletionToolCall
	for stream.Next() {
		ch := stream.Current()
		acc.AddChunk(ch)
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
		for _, c := range ch.Choices {
			for _, tc := range c.Delta.ToolCalls {
				if tc.Index != 0 {
					t.Errorf("tool call index %d", tc.Index)
				}
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	msg := acc.Choices[0].Message
	if acc.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 {
		t.Fatalf("accumulated %s", acc.RawJSON())
	}
	tc := msg.ToolCalls[0]
	if tc.ID != "call_fake0" || tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != args {
		t.Errorf("tool call %+v", tc)
	}
	if len(finished) != 1 || finished[0].Arguments != args || finished[0].Name != "get_weather" {
		t.Errorf("JustFinishedToolCall: %+v", finished)
	}
}

func TestToolCallWireFormat(t *testing.T) {
	s := newServer(t)
	s.SetDefault("m", Step{ToolCalls: []ToolCall{{ID: "call_1", Name: "f", Arguments: `{"a":1}`, Pieces: 2}}})
	body, _ := io.ReadAll(post(t, s, `{"model":"m","messages":[],"stream":true}`).Body)
	events := sseData(t, body)
	want := []string{
		`{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}`,
		`{}`,
	}
	if len(events) != len(want)+1 {
		t.Fatalf("events %q", events)
	}
	for i, w := range want {
		var c struct {
			Choices []struct {
				Delta json.RawMessage
			}
		}
		if err := json.Unmarshal([]byte(events[i]), &c); err != nil {
			t.Fatal(err)
		}
		if string(c.Choices[0].Delta) != w {
			t.Errorf("delta %d = %s, want %s", i, c.Choices[0].Delta, w)
		}
	}

	// The non-streamed form carries the whole call.
	got, err := sdk(s).Chat.Completions.New(context.Background(), userParams("m"))
	if err != nil {
		t.Fatal(err)
	}
	if tc := got.Choices[0].Message.ToolCalls; len(tc) != 1 || tc[0].Function.Arguments != `{"a":1}` || got.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("got %s", got.RawJSON())
	}
}

func TestSDKAbortIsAnError(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: Abort, FaultAfter: 2})
	stream := sdk(s).Chat.Completions.NewStreaming(context.Background(), userParams("m"))
	n := 0
	for stream.Next() {
		n++
	}
	if n != 2 {
		t.Errorf("got %d chunks before the abort, want 2", n)
	}
	if err := stream.Err(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want unexpected EOF", err)
	}
	// The script is consumed: the next request succeeds.
	if _, err := sdk(s).Chat.Completions.New(context.Background(), userParams("m")); err != nil {
		t.Errorf("after script: %v", err)
	}
}

func TestAbortNonStreamed(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: Abort}, Step{Fault: Abort, FaultAfter: 1})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i, wantHeaders := range []bool{false, true} {
		resp, err := client.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
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

func TestSDKErrorsAndRetryHeaders(t *testing.T) {
	s := newServer(t)
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	s.Script("m",
		Step{Status: 429, Code: "rate_limit_exceeded", Message: "slow down", RetryAfter: "1", RetryAfterMs: "250"},
		Step{Status: 503, RetryAfter: date},
	)
	_, err := sdk(s).Chat.Completions.New(context.Background(), userParams("m"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v", err)
	}
	if apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || apiErr.Message != "slow down" || apiErr.Type != "requests" {
		t.Errorf("error %+v", apiErr)
	}
	if h := apiErr.Response.Header; h.Get("Retry-After") != "1" || h.Get("Retry-After-Ms") != "250" {
		t.Errorf("headers %v", h)
	}

	resp := post(t, s, `{"model":"m","stream":true}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != date || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	body, _ := io.ReadAll(resp.Body)
	want := `{"error":{"message":"fake upstream: service unavailable","type":"server_error","param":null,"code":null}}`
	if string(body) != want {
		t.Errorf("body %s\nwant %s", body, want)
	}
}

func TestSDKRetriesHonourScript(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Status: 500}, Step{Status: 429, RetryAfterMs: "1"})
	got, err := sdk(s, option.WithMaxRetries(2)).Chat.Completions.New(context.Background(), userParams("m"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Choices[0].Message.Content != "Hello from m" || s.Count("m") != 3 {
		t.Errorf("content %q after %d requests", got.Choices[0].Message.Content, s.Count("m"))
	}
}

func TestSDKMidStreamError(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: MidStreamError, FaultAfter: 3, Message: "upstream exploded"})
	stream := sdk(s).Chat.Completions.NewStreaming(context.Background(), userParams("m"))
	n := 0
	for stream.Next() {
		n++
	}
	if n != 3 || stream.Err() == nil || !strings.Contains(stream.Err().Error(), "upstream exploded") {
		t.Errorf("after %d chunks err = %v", n, stream.Err())
	}
}

func TestHangStopsWhenClientLeaves(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Fault: Hang, FaultAfter: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
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

func TestLatencyAndCancellation(t *testing.T) {
	s := newServer(t)
	s.Script("m", Step{Latency: 50 * time.Millisecond}, Step{Latency: time.Hour})
	start := time.Now()
	post(t, s, `{"model":"m"}`)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, want >= 50ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := sdk(s).Chat.Completions.New(ctx, userParams("m"))
	if !errors.Is(err, context.DeadlineExceeded) {
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

func TestChunkInterval(t *testing.T) {
	s := newServer(t)
	s.SetDefault("m", Step{Chunks: 2, ChunkInterval: 20 * time.Millisecond})
	start := time.Now()
	body, _ := io.ReadAll(post(t, s, `{"model":"m","stream":true}`).Body)
	if n := len(sseData(t, body)); n != 5 { // role, 2 content, finish, [DONE]
		t.Errorf("%d events", n)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("stream took %v, want >= 4 intervals", d)
	}
}

func TestScriptsDefaultsCountsReset(t *testing.T) {
	s := newServer(t)
	reply := func(model string) string {
		t.Helper()
		var got struct {
			Choices []struct{ Message struct{ Content string } }
			Error   *struct{ Code string }
		}
		if err := json.NewDecoder(post(t, s, `{"model":"`+model+`"}`).Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.Error != nil {
			return "error " + got.Error.Code
		}
		return got.Choices[0].Message.Content
	}
	s.SetDefault(AnyModel, Step{Reply: "any"})
	s.SetDefault("a", Step{Reply: "a-default"})
	s.Script("a", Step{Reply: "a1"}, Step{Status: 400, Code: "bad"})
	s.Script(AnyModel, Step{Reply: "star1"})
	steps := []struct{ model, want string }{
		{"a", "a1"}, {"a", "error bad"}, {"a", "star1"}, {"a", "a-default"}, {"b", "any"},
	}
	for _, st := range steps {
		if got := reply(st.model); got != st.want {
			t.Errorf("%s: got %q, want %q", st.model, got, st.want)
		}
	}
	if s.Count("a") != 4 || s.Count("b") != 1 || s.Count(AnyModel) != 5 || len(s.Requests()) != 5 {
		t.Errorf("counts a=%d b=%d all=%d recorded=%d", s.Count("a"), s.Count("b"), s.Count(AnyModel), len(s.Requests()))
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

func TestModelsAndErrors(t *testing.T) {
	s := newServer(t)
	s.SetDefault("my-model", Step{})
	page, err := sdk(s).Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if !strings.Contains(strings.Join(ids, ","), "gpt-4o-mini") || !strings.Contains(strings.Join(ids, ","), "my-model") {
		t.Errorf("models %v", ids)
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/chat/completions", "{", 400},
		{"POST", "/v1/chat/completions", `{"messages":[]}`, 400},
		{"GET", "/v1/chat/completions", "", 405},
		{"POST", "/v1/nope", "", 404},
	} {
		req, _ := http.NewRequest(tc.method, strings.TrimSuffix(s.URL(), "/v1")+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e errorBody
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.status || err != nil || e.Error.Message == "" || e.Error.Type != "invalid_request_error" {
			t.Errorf("%s %s: %d %+v %v", tc.method, tc.path, resp.StatusCode, e, err)
		}
	}

	s.RequireAPIKey("sk-right")
	_, err = sdk(s).Chat.Completions.New(context.Background(), userParams("m"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := sdk(s, option.WithAPIKey("sk-right")).Chat.Completions.New(context.Background(), userParams("m")); err != nil {
		t.Errorf("right key: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newServer(t)
	s.SetRecording(false)
	const workers, each = 8, 50
	s.Script("m", make([]Step, workers*each/2)...) // half the requests take a scripted zero Step
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			stream := w%2 == 0
			body := `{"model":"m","stream":` + map[bool]string{true: "true", false: "false"}[stream] + `}`
			for range each {
				resp, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(body))
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
		s.SetDefault("other", Step{Reply: "x"}) // swaps the config under load
	}
	wg.Wait()
	if s.Count("m") != workers*each {
		t.Errorf("count %d", s.Count("m"))
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

// BenchmarkDefault measures the fake's cost per request over loopback, the figure that
// matters when it is the load benchmark's upstream.
func BenchmarkDefault(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "json", true: "stream"}[stream]
		b.Run(name, func(b *testing.B) {
			s := New()
			defer s.Close()
			s.SetRecording(false)
			body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":` +
				map[bool]string{true: "true", false: "false"}[stream] + `,"stream_options":{"include_usage":true}}`)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
			b.SetParallelism(16) // keep the server busy: one request at a time mostly measures wake-up latency
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(s.URL()+"/chat/completions", "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
