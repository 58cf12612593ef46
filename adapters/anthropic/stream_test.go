package anthropic

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
)

// transcript renders what a stream yields as JSON lines: one per chunk, then one line for
// how it ended, {"end":"eof"} or {"end":"error",…}.
func transcript(t *testing.T, s adapters.ChunkStream) [][]byte {
	t.Helper()
	chunks, err := adaptertest.DrainStream(s)
	var lines [][]byte
	for _, c := range chunks {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, b)
	}
	end := map[string]any{"end": "eof"}
	if err != io.EOF {
		e := adapters.AsError(err)
		if e == nil {
			t.Fatalf("stream ended with %v (%T)", err, err)
		}
		end = map[string]any{"end": "error", "kind": e.Kind.String(), "code": e.Code, "message": e.Message, "status": e.Status}
	}
	b, _ := json.Marshal(end)
	return append(lines, b)
}

// TestStreamGolden translates every documented event stream in testdata/streams and
// compares the chunks with the golden JSON lines, at several read sizes so that events
// straddle reads.
func TestStreamGolden(t *testing.T) {
	tests := []struct {
		sse, want    string
		includeUsage bool
	}{
		{sse: "text.sse", want: "text.jsonl"},
		{sse: "text.sse", want: "text.usage.jsonl", includeUsage: true},
		{sse: "tool_use.sse", want: "tool_use.jsonl", includeUsage: true},
		{sse: "tool_use_parallel.sse", want: "tool_use_parallel.jsonl", includeUsage: true},
		{sse: "error.sse", want: "error.jsonl", includeUsage: true},
		{sse: "pings.sse", want: "pings.jsonl"},
		{sse: "thinking.sse", want: "thinking.jsonl", includeUsage: true},
		{sse: "server_tool.sse", want: "server_tool.jsonl", includeUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			body := adaptertest.ReadTestdata(t, "streams/"+tt.sse)
			for _, size := range []int{1 << 20, 7, 1} {
				s := memStream(t, adaptertest.ChunkedReader(bytes.NewReader(body), size), tt.includeUsage)
				lines := transcript(t, s)
				s.Close()
				adaptertest.GoldenLines(t, "streams/"+tt.want, lines)
				if adaptertest.Update() {
					break
				}
			}
			// CRLF line endings are as valid as LF.
			crlf := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
			s := memStream(t, bytes.NewReader(crlf), tt.includeUsage)
			if !adaptertest.Update() {
				adaptertest.GoldenLines(t, "streams/"+tt.want, transcript(t, s))
			}
			s.Close()
		})
	}
}

// TestStreamSemantics checks what a client reassembles, independently of the goldens.
func TestStreamSemantics(t *testing.T) {
	t.Run("tool_use", func(t *testing.T) {
		s := memStream(t, bytes.NewReader(adaptertest.ReadTestdata(t, "streams/tool_use.sse")), true)
		chunks, err := adaptertest.DrainStream(s)
		if err != io.EOF {
			t.Fatal(err)
		}
		first := chunks[0]
		if d := first.Choices[0].Delta; d.Role != "assistant" || d.Content == nil || *d.Content != "" {
			t.Errorf("first delta = %+v", d)
		}
		var text, args, id, name string
		var finish string
		for i, c := range chunks {
			if c.ID != "msg_014p7gG3wDgGV9EUtLvnow3U" || c.Model != "claude-opus-4-1-20250805" || c.Created != testCreated ||
				c.Object != "chat.completion.chunk" {
				t.Fatalf("chunk %d envelope = %+v", i, c)
			}
			if i > 0 && len(c.Choices) > 0 && c.Choices[0].Delta.Role != "" {
				t.Errorf("chunk %d repeats the role", i)
			}
			for _, ch := range c.Choices {
				if ch.Delta.Content != nil {
					text += *ch.Delta.Content
				}
				for _, tc := range ch.Delta.ToolCalls {
					if tc.Index == nil || *tc.Index != 0 {
						t.Fatalf("tool call delta without index 0: %+v", tc)
					}
					id += tc.ID
					name += tc.Function.Name
					args += tc.Function.Arguments
				}
				if ch.FinishReason != nil {
					finish = *ch.FinishReason
				}
			}
		}
		if text != "Okay, let's check the weather for San Francisco, CA:" {
			t.Errorf("text = %q", text)
		}
		if id != "toolu_01T1x1fJ34qAmk2tNTrN7Up6" || name != "get_weather" || finish != "tool_calls" {
			t.Errorf("tool call id %q name %q finish %q", id, name, finish)
		}
		var input map[string]string
		if err := json.Unmarshal([]byte(args), &input); err != nil || input["location"] != "San Francisco, CA" || input["unit"] != "fahrenheit" {
			t.Errorf("arguments %q: %v", args, err)
		}
		last := chunks[len(chunks)-1]
		if len(last.Choices) != 0 || last.Usage == nil || last.Usage.PromptTokens != 472 || last.Usage.CompletionTokens != 89 {
			t.Errorf("usage chunk = %+v", last)
		}
		if b, _ := json.Marshal(last); !bytes.Contains(b, []byte(`"choices":[]`)) {
			t.Errorf("usage chunk choices must be [] on the wire: %s", b)
		}
		for i := 0; i < 2; i++ {
			if _, err := s.Recv(); err != io.EOF {
				t.Errorf("Recv after end = %v, want io.EOF", err)
			}
		}
	})
	t.Run("parallel tool calls get ordinals", func(t *testing.T) {
		s := memStream(t, bytes.NewReader(adaptertest.ReadTestdata(t, "streams/tool_use_parallel.sse")), true)
		chunks, err := adaptertest.DrainStream(s)
		if err != io.EOF {
			t.Fatal(err)
		}
		args := map[int]string{}
		for _, c := range chunks {
			for _, ch := range c.Choices {
				for _, tc := range ch.Delta.ToolCalls {
					args[*tc.Index] += tc.Function.Arguments
				}
			}
		}
		if args[0] != `{"location": "Paris"}` || args[1] != `{"timezone": "Europe/Paris"}` || len(args) != 2 {
			t.Errorf("arguments = %v", args)
		}
		u := chunks[len(chunks)-1].Usage
		if u.PromptTokens != 849+100+2048 || u.PromptTokensDetails.CachedTokens != 2048 || u.CompletionTokens != 47 {
			t.Errorf("usage = %+v", u)
		}
	})
	t.Run("no usage chunk unless asked", func(t *testing.T) {
		s := memStream(t, bytes.NewReader(adaptertest.ReadTestdata(t, "streams/tool_use.sse")), false)
		chunks, _ := adaptertest.DrainStream(s)
		for _, c := range chunks {
			if c.Usage != nil || len(c.Choices) != 1 {
				t.Errorf("chunk = %+v", c)
			}
		}
	})
}

func TestStreamFailures(t *testing.T) {
	text := string(adaptertest.ReadTestdata(t, "streams/text.sse"))
	stop := strings.Index(text, "event: message_stop")
	const start = `data: {"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":1}}}` + "\n\n"
	tests := []struct {
		name   string
		body   string
		kind   adapters.Kind
		code   string
		chunks int
		eof    bool
	}{
		{name: "truncated before message_stop", body: text[:stop], kind: adapters.KindConnection, chunks: 4},
		{name: "truncated mid-event", body: text[:strings.Index(text, `"Hello"`)], kind: adapters.KindConnection, chunks: 1},
		{name: "empty body", body: "", kind: adapters.KindConnection},
		{name: "only pings and comments", body: ": hi\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n", kind: adapters.KindConnection},
		{name: "message_stop without final blank line", body: text[:stop] + "event: message_stop\ndata: {\"type\":\"message_stop\"}", chunks: 4, eof: true},
		{name: "unfinished event that is not message_stop", body: text[:stop] + `data: {"type":"ping","x":"message_stop"}`, chunks: 4, kind: adapters.KindConnection},
		{name: "oversized event", body: start + `data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"` + strings.Repeat("a", sse.MaxEvent) + "\"}}\n\n",
			chunks: 1, kind: adapters.KindProtocol},
		{name: "oversized comment line", body: ":" + strings.Repeat("a", sse.MaxEvent+10) + "\n\n", kind: adapters.KindProtocol},
		{name: "not json", body: "data: hello\n\n", kind: adapters.KindProtocol},
		{name: "delta before message_start", body: `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}` + "\n\n", kind: adapters.KindProtocol},
		{name: "second message_start", body: start + start, chunks: 1, kind: adapters.KindProtocol},
		{name: "unknown events are ignored", chunks: 2, eof: true,
			body: start + "data: {\"type\":\"future_event\",\"x\":1}\n\ndata: {}\n\ndata: {\"type\":\"message_stop\"}\n\n"},
		{name: "message_stop without message_delta still finishes", body: start + "data: {\"type\":\"message_stop\"}\n\n", chunks: 2, eof: true},
		{name: "events after message_stop are not read", body: start + "data: {\"type\":\"message_stop\"}\n\ndata: garbage\n\n", chunks: 2, eof: true},
		{name: "input_json_delta for an unknown block is dropped", chunks: 2, eof: true,
			body: start + `data: {"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"{}"}}` + "\n\ndata: {\"type\":\"message_stop\"}\n\n"},
		{name: "error before message_start", body: `data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}` + "\n\n",
			kind: adapters.KindOverloaded, code: "overloaded_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1 << 20, 7, 1} {
				s := memStream(t, adaptertest.ChunkedReader(strings.NewReader(tt.body), size), false)
				chunks, err := adaptertest.DrainStream(s)
				s.Close()
				if len(chunks) != tt.chunks {
					t.Errorf("read size %d: %d chunks, want %d", size, len(chunks), tt.chunks)
				}
				if tt.eof {
					if err != io.EOF {
						t.Errorf("read size %d: end = %v, want io.EOF", size, err)
					}
					continue
				}
				e := adaptertest.AsError(t, err, tt.kind)
				if tt.code != "" && e.Code != tt.code {
					t.Errorf("code = %q, want %q", e.Code, tt.code)
				}
				if _, again := s.Recv(); again != err {
					t.Errorf("error not sticky: %v then %v", err, again)
				}
			}
		})
	}
}

// TestStreamErrorEvents maps each documented error type sent mid-stream to its kind.
func TestStreamErrorEvents(t *testing.T) {
	const start = `data: {"type":"message_start","message":{"id":"msg_1","model":"m"}}` + "\n\n"
	tests := []struct {
		typ, msg string
		kind     adapters.Kind
	}{
		{"overloaded_error", "Overloaded", adapters.KindOverloaded},
		{"rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", adapters.KindRateLimited},
		{"api_error", "Internal server error", adapters.KindServer},
		{"invalid_request_error", "messages.1.content: Input should be a valid list", adapters.KindBadRequest},
		{"invalid_request_error", "prompt is too long: 200001 tokens > 200000 maximum", adapters.KindContextLength},
		{"authentication_error", "invalid x-api-key", adapters.KindAuth},
		{"permission_error", "not allowed", adapters.KindAuth},
		{"not_found_error", "model: x", adapters.KindNotFound},
		{"billing_error", "credit balance is too low", adapters.KindAuth},
		{"request_too_large", "too large", adapters.KindContextLength},
		{"timeout_error", "Request timed out", adapters.KindTimeout},
		{"brand_new_error", "something", adapters.KindServer},
		{"", "", adapters.KindServer},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.kind.String(), func(t *testing.T) {
			ev, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": tt.typ, "message": tt.msg}})
			s := memStream(t, strings.NewReader(start+"event: error\ndata: "+string(ev)+"\n\n"), true)
			chunks, err := adaptertest.DrainStream(s)
			if len(chunks) != 1 {
				t.Errorf("%d chunks", len(chunks))
			}
			e := adaptertest.AsError(t, err, tt.kind)
			if e.Code != tt.typ || e.Status != 0 || e.Message == "" || (tt.msg != "" && e.Message != tt.msg) {
				t.Errorf("error = %+v", e)
			}
		})
	}
}

// blockingStream serves message_start and one text delta, then holds the response open
// until the client leaves.
func blockingStream(t *testing.T) adaptertest.Blocking {
	text := adaptertest.ReadTestdata(t, "streams/text.sse")
	return adaptertest.Blocking{
		Adapter: testAdapter,
		First:   text[:bytes.Index(text, []byte("event: ping"))],
		ReadFirst: func(t *testing.T, s adapters.ChunkStream) {
			if c, err := s.Recv(); err != nil || c.Choices[0].Delta.Role != "assistant" {
				t.Fatal(c, err)
			}
		},
	}
}

func TestStreamContextEndsRecv(t *testing.T) { adaptertest.StreamContextEndsRecv(t, blockingStream(t)) }

func TestStreamCloseAbortsRecv(t *testing.T) { adaptertest.StreamCloseAbortsRecv(t, blockingStream(t)) }

// TestStreamTruncatedOverHTTP cuts the connection mid-stream: the client must see
// KindConnection, not io.EOF, and nothing may leak.
func TestStreamTruncatedOverHTTP(t *testing.T) {
	text := adaptertest.ReadTestdata(t, "streams/tool_use.sse")
	if chunks := adaptertest.StreamTruncatedOverHTTP(t, testAdapter, text[:len(text)/2]); len(chunks) == 0 {
		t.Error("no chunks before the cut")
	}
}

// TestStreamReusesConnection checks that a stream read to message_stop and closed hands
// its connection back: otherwise every streamed request would pay a new TCP and TLS setup.
func TestStreamReusesConnection(t *testing.T) {
	adaptertest.StreamReusesConnection(t, testAdapter, adaptertest.ReadTestdata(t, "streams/text.sse"))
}

func TestStreamReadErrorIsConnection(t *testing.T) {
	const start = `data: {"type":"message_start","message":{"id":"msg_1","model":"m"}}` + "\n\n"
	adaptertest.StreamReadErrorIsConnection(t, memStream(t, adaptertest.ResetAfter(start), false), 1)
}
