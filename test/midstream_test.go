package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/test/fakeanthropic"
	"github.com/gavel-gw/gavel/test/fakeupstream"
	"github.com/gavel-gw/gavel/test/faultproxy"
)

// Mid-stream continuation end to end: the primary a/m1 streams through a fault proxy that
// cuts its response at a random byte — in the text, inside a tool call's arguments, or
// inside a UTF-8 sequence — and the fallback b/m1 continues the answer (the fake continues
// from the assistant text gavel sends it). Every client (Chat Completions, Messages,
// Responses, each through its official SDK) must read one coherent answer in valid SSE:
// the whole text exactly once, the tool call whole, one usage summing both attempts.

// midAnswer is the answer both fakes give: text with multi-byte runes in many chunks, then
// a tool call whose arguments arrive in pieces.
var midAnswer = fakeupstream.Step{
	Reply: "Grüße aus Köln! Das Wetter in Zürich: 東京より暖かい, about 21 °C — und morgen? 🌤️ Sonnig, " +
		"mit einer Brise aus Südwest; ich prüfe die Vorhersage für die nächsten drei Tage.",
	Chunks:    30,
	ToolCalls: []fakeupstream.ToolCall{{ID: "call_w1", Name: "get_weather", Arguments: `{"city":"Zürich","unit":"celsius","days":3,"note":"naïve café"}`, Pieces: 6}},
}

type midstreamRig struct {
	g      *gw
	a, b   *fakeupstream.Server
	claude *fakeanthropic.Server // b, when the continuation target speaks Anthropic (prefill)
	px     *faultproxy.Proxy
	log    string
	stream []byte // a's whole streamed answer on the wire, headers included
}

// newMidstreamRig routes alias "chat" (midstream: continue) to a/m1 behind the fault proxy,
// then b/m1: an OpenAI-compatible fake, or with prefill a fake Anthropic API.
func newMidstreamRig(t *testing.T, prefill bool) *midstreamRig {
	t.Helper()
	r := &midstreamRig{a: fakeupstream.New(), b: fakeupstream.New()}
	t.Cleanup(r.a.Close)
	t.Cleanup(r.b.Close)
	r.a.SetDefault("m1", midAnswer)
	cont := midAnswer
	cont.Continue = true
	r.b.SetDefault("m1", cont)
	bType, bURL := "openai", r.b.URL()
	if prefill {
		r.claude = fakeanthropic.New()
		t.Cleanup(r.claude.Close)
		r.claude.SetDefault("m1", fakeanthropic.Step{Reply: midAnswer.Reply, Chunks: 17, Continue: true, ToolCalls: []fakeanthropic.ToolCall{{
			ID: "toolu_w1", Name: "get_weather", Arguments: midAnswer.ToolCalls[0].Arguments, Pieces: 4}}})
		bType, bURL = "anthropic", r.claude.URL()
	}
	var err error
	if r.px, err = faultproxy.New(hostOf(r.a.URL())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.px.Close() })
	data := twoProviders(nil)
	data["aliases"].(map[string]any)["chat"].(map[string]any)["midstream"] = "continue"
	r.log = filepath.Join(t.TempDir(), "decisions.jsonl")
	r.g = start(t, fmt.Sprintf(`policy: %s
decision_log: {file: %s}
providers:
  - {name: a, type: openai, base_url: "http://%s/v1", api_key: k, max_retries: 0, breaker: {failure_threshold: 1000}}
  - {name: b, type: %s, base_url: %q, api_key: k, max_retries: 0}
`, bundle(t, "midstream-1", data), r.log, r.px.Addr(), bType, bURL), nil)
	r.stream = rawStream(t, hostOf(r.a.URL()))
	return r
}

func hostOf(baseURL string) string {
	return strings.TrimSuffix(strings.TrimPrefix(baseURL, "http://"), "/v1")
}

// rawStream is the bytes a's fake sends for gavel's streamed request (the same for every
// request but for fixed-width ids), as the proxy counts them.
func rawStream(t *testing.T, host string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"model":"m1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", host, len(body), body)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(out, []byte("\r\n0\r\n\r\n")) {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			t.Fatalf("reading the fake's stream: %v (%d bytes)", err, len(out))
		}
	}
	return out
}

// cutPoints are the offsets of a's stream where a cut of kind lands: inside a text
// delta's content (not the first), inside a tool call's argument piece, or between the
// bytes of a multi-byte rune of the text.
func cutPoints(raw []byte, kind string) []int {
	var out []int
	field := `"content":"`
	if kind == "args" {
		field = `"arguments":"`
	}
	for off := 0; ; {
		i := bytes.Index(raw[off:], []byte(field))
		if i < 0 {
			break
		}
		start := off + i + len(field)
		end := start + bytes.IndexByte(raw[start:], '"')
		off = end
		if end <= start+1 {
			continue // empty: the role chunk, a call's header
		}
		for p := start + 1; p < end; p++ {
			if kind != "utf8" || !utf8.RuneStart(raw[p]) {
				out = append(out, p)
			}
		}
	}
	return out
}

func TestMidStreamContinuation(t *testing.T) {
	t.Run("instruction", func(t *testing.T) { testMidStreamContinuation(t, false) })
	t.Run("prefill", func(t *testing.T) { testMidStreamContinuation(t, true) })
}

func testMidStreamContinuation(t *testing.T, prefill bool) {
	r := newMidstreamRig(t, prefill)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MIDSTREAM_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	wantArgs := midAnswer.ToolCalls[0].Arguments
	n := 0
	for _, client := range []string{"chat", "messages", "responses"} {
		for _, kind := range []string{"text", "args", "utf8"} {
			for rep := range 2 {
				points := cutPoints(r.stream, kind)
				if len(points) == 0 {
					t.Fatalf("no %s cut point in a's stream", kind)
				}
				at := points[rng.IntN(len(points))]
				repeat := []int{0, 8 + rng.IntN(24)}[rep]
				if prefill {
					repeat = 0 // the Messages API continues a prefill exactly
				}
				n++
				t.Run(fmt.Sprintf("%s/%s/%d", client, kind, rep), func(t *testing.T) {
					t.Logf("seed %d (MIDSTREAM_SEED=%d to replay): cut at byte %d of %d, continuation repeats %d bytes", seed, seed, at, len(r.stream), repeat)
					cont := midAnswer
					cont.Continue, cont.Repeat = true, repeat
					r.b.SetDefault("m1", cont)
					r.cutAt(t, at)
					before := r.bCount()
					var got answer
					switch client {
					case "chat":
						got = r.chat(t)
					case "messages":
						got = r.messages(t)
					case "responses":
						got = r.responses(t)
					}
					if got.text != midAnswer.Reply {
						t.Errorf("text:\n got %q\nwant %q", got.text, midAnswer.Reply)
					}
					if len(got.calls) != 1 || got.calls[0] != "get_weather "+wantArgs {
						t.Errorf("tool calls %q, want one get_weather %s", got.calls, wantArgs)
					}
					if !json.Valid([]byte(strings.TrimPrefix(got.calls[0], "get_weather "))) {
						t.Errorf("broken arguments %q", got.calls[0])
					}
					if r.bCount() != before+1 {
						t.Errorf("b got %d requests, want 1 continuation", r.bCount()-before)
					}
					// One usage, summing both attempts: b alone reports 12 prompt tokens.
					if got.in <= fakeupstream.DefaultPromptTokens || got.out <= 0 {
						t.Errorf("usage in=%d out=%d: not the sum of both attempts", got.in, got.out)
					}
					r.checkSSE(t, got.raw, client)
					r.checkContinuationRequest(t)
				})
			}
		}
	}

	// Every continuation was logged with both routes and counted.
	lines := waitDecisionLines(t, r.log, n)
	for _, l := range lines {
		if !strings.Contains(l, `"route":"b/m1"`) || !strings.Contains(l, `"continued_from":["a/m1"]`) || !strings.Contains(l, `"usage":{`) {
			t.Errorf("decision log line without both routes and usage: %s", l)
		}
	}
	if m := r.g.text(t, "/metrics"); !strings.Contains(m, fmt.Sprintf(`gavel_stream_continuations_total{outcome="ok"} %d`, n)) {
		t.Errorf("metrics:\n%s", grepLines(m, "gavel_stream_continuations_total"))
	}
}

// cutAt makes the proxy cut a's next response after at bytes, on a fresh connection.
func (r *midstreamRig) cutAt(t *testing.T, at int) {
	r.px.Set(faultproxy.Faults{Cut: true, CutAfter: int64(at)})
	r.px.CloseConns() // a kept-alive connection would count its earlier bytes
	eventually(t, "the proxy's connections closed", func() bool { return r.px.Open() == 0 })
	time.Sleep(20 * time.Millisecond) // gavel's transport drops the closed idle connection
}

func (r *midstreamRig) bCount() int {
	if r.claude != nil {
		return r.claude.Count("m1")
	}
	return r.b.Count("m1")
}

// checkContinuationRequest checks the last request b got: the conversation, then the text
// a relayed as an assistant turn and the continuation instruction (OpenAI), or as a
// prefill without trailing whitespace (Anthropic).
func (r *midstreamRig) checkContinuationRequest(t *testing.T) {
	if r.claude != nil {
		reqs := r.claude.Requests()
		msgs, _ := reqs[len(reqs)-1].Body["messages"].([]any)
		last, _ := msgs[len(msgs)-1].(map[string]any)
		if last["role"] == "assistant" {
			b, _ := json.Marshal(last["content"])
			var blocks []struct{ Text string }
			json.Unmarshal(b, &blocks)
			if len(blocks) != 1 || !strings.HasPrefix(midAnswer.Reply, blocks[0].Text) || strings.TrimSpace(blocks[0].Text) != blocks[0].Text {
				t.Errorf("prefill %s", b)
			}
		}
		return
	}
	reqs := r.b.Requests()
	msgs := reqs[len(reqs)-1].Body.Messages
	n := len(msgs)
	if n == 0 {
		t.Fatal("continuation request without messages")
	}
	last, prev := msgs[n-1], adapters.Message{}
	if n >= 2 {
		prev = msgs[n-2]
	}
	if prev.Role == "assistant" {
		if last.Role != "user" || last.Content.String() != executor.ContinueInstruction ||
			!strings.HasPrefix(midAnswer.Reply, prev.Content.String()) {
			t.Errorf("continuation turns %+v, %+v", prev, last)
		}
	} else if last.Role != "user" { // the cut came before any text: the question again
		t.Errorf("continuation request ends with %+v", last)
	}
}

// checkSSE reads the raw stream the client received: valid UTF-8, every event well formed
// with JSON data, and the protocol's end.
func (r *midstreamRig) checkSSE(t *testing.T, raw []byte, client string) {
	t.Helper()
	if !utf8.Valid(raw) {
		t.Fatalf("the stream is not valid UTF-8")
	}
	events := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	last := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
		case strings.HasPrefix(line, "event: "):
		case strings.HasPrefix(line, "data: "):
			d := strings.TrimPrefix(line, "data: ")
			if d != "[DONE]" && !json.Valid([]byte(d)) {
				t.Errorf("event data is not JSON: %s", d)
			}
			if strings.Contains(d, `"error"`) && !strings.Contains(d, `"error":null`) {
				t.Errorf("error event: %s", d)
			}
			events++
			last = d
		default:
			t.Errorf("not an SSE line: %q", line)
		}
	}
	if !bytes.HasSuffix(raw, []byte("\n\n")) || events == 0 {
		t.Errorf("stream does not end with a whole event")
	}
	end := map[string]string{"chat": "[DONE]", "messages": `"type":"message_stop"`, "responses": `"type":"response.completed"`}[client]
	if !strings.Contains(last, end) {
		t.Errorf("last event %s, want %s", last, end)
	}
}

// answer is what a client assembled from its stream.
type answer struct {
	text    string
	calls   []string // "name arguments"
	in, out int64
	raw     []byte // the stream as received
}

// tee keeps a copy of every response body the client reads.
type tee struct {
	buf bytes.Buffer
}

func (c *tee) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(resp.Body, &c.buf), resp.Body}
	}
	return resp, err
}

func (r *midstreamRig) chat(t *testing.T) answer {
	t.Helper()
	rec := &tee{}
	c := r.g.client("k", option.WithHTTPClient(&http.Client{Transport: rec}))
	p := userParams("chat", "weather in Zürich?")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_weather"})}
	s := c.Chat.Completions.NewStreaming(context.Background(), p)
	var acc openai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	var a answer
	if len(acc.Choices) != 1 {
		t.Fatalf("choices %+v", acc.Choices)
	}
	m := acc.Choices[0].Message
	a.text = m.Content
	for _, tc := range m.ToolCalls {
		a.calls = append(a.calls, tc.Function.Name+" "+tc.Function.Arguments)
	}
	if acc.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("finish_reason %q", acc.Choices[0].FinishReason)
	}
	a.in, a.out = acc.Usage.PromptTokens, acc.Usage.CompletionTokens
	a.raw = rec.buf.Bytes()
	return a
}

func (r *midstreamRig) messages(t *testing.T) answer {
	t.Helper()
	rec := &tee{}
	c := anthropic.NewClient(aoption.WithBaseURL(r.g.URL), aoption.WithAPIKey("k"), aoption.WithMaxRetries(0),
		aoption.WithRequestTimeout(20*time.Second), aoption.WithHTTPClient(&http.Client{Transport: rec}))
	msg, _ := streamMessage(t, &c, anthropic.MessageNewParams{Model: "chat", MaxTokens: 500, Messages: userTurn("weather in Zürich?"),
		Tools: weatherToolParam()})
	var a answer
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			a.text += b.Text
		case "tool_use":
			a.calls = append(a.calls, b.Name+" "+string(b.Input))
		}
	}
	if msg.StopReason != anthropic.StopReasonToolUse {
		t.Errorf("stop_reason %q", msg.StopReason)
	}
	a.in, a.out = msg.Usage.InputTokens, msg.Usage.OutputTokens
	a.raw = rec.buf.Bytes()
	return a
}

func (r *midstreamRig) responses(t *testing.T) answer {
	t.Helper()
	rec := &tee{}
	c := r.g.client("k", option.WithHTTPClient(&http.Client{Transport: rec}))
	p := responses.ResponseNewParams{Model: "chat", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("weather in Zürich?")},
		Tools: []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{Name: "get_weather", Parameters: map[string]any{"type": "object"}}}}}
	st := readResponsesStream(t, c.Responses.NewStreaming(context.Background(), p))
	var a answer
	a.text = st.text
	for _, item := range st.final.Output {
		if item.Type == "function_call" {
			a.calls = append(a.calls, item.Name+" "+item.Arguments.OfString)
		}
	}
	if st.finalType != "response.completed" {
		t.Errorf("final event %s", st.finalType)
	}
	a.in, a.out = st.final.Usage.InputTokens, st.final.Usage.OutputTokens
	a.raw = rec.buf.Bytes()
	return a
}
