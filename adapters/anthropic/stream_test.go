package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// transcript renders what a stream yields as JSON lines: one per chunk, then one line for
// how it ended, {"end":"eof"} or {"end":"error",…}.
func transcript(t *testing.T, s adapters.ChunkStream) [][]byte {
	t.Helper()
	chunks, err := drainStream(s)
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
			body := readTestdata(t, "streams/"+tt.sse)
			for _, size := range []int{1 << 20, 7, 1} {
				s := memStream(t, &chunkedReader{r: bytes.NewReader(body), n: size}, tt.includeUsage)
				lines := transcript(t, s)
				s.Close()
				goldenLines(t, "streams/"+tt.want, lines)
				if *update {
					break
				}
			}
			// CRLF line endings are as valid as LF.
			crlf := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
			s := memStream(t, bytes.NewReader(crlf), tt.includeUsage)
			if !*update {
				goldenLines(t, "streams/"+tt.want, transcript(t, s))
			}
			s.Close()
		})
	}
}

// TestStreamSemantics checks what a client reassembles, independently of the goldens.
func TestStreamSemantics(t *testing.T) {
	t.Run("tool_use", func(t *testing.T) {
		s := memStream(t, bytes.NewReader(readTestdata(t, "streams/tool_use.sse")), true)
		chunks, err := drainStream(s)
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
		s := memStream(t, bytes.NewReader(readTestdata(t, "streams/tool_use_parallel.sse")), true)
		chunks, err := drainStream(s)
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
		s := memStream(t, bytes.NewReader(readTestdata(t, "streams/tool_use.sse")), false)
		chunks, _ := drainStream(s)
		for _, c := range chunks {
			if c.Usage != nil || len(c.Choices) != 1 {
				t.Errorf("chunk = %+v", c)
			}
		}
	})
}

func TestStreamFailures(t *testing.T) {
	text := string(readTestdata(t, "streams/text.sse"))
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
		{name: "oversized event", body: start + `data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"` + strings.Repeat("a", maxEvent) + "\"}}\n\n",
			chunks: 1, kind: adapters.KindProtocol},
		{name: "oversized comment line", body: ":" + strings.Repeat("a", maxEvent+10) + "\n\n", kind: adapters.KindProtocol},
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
				s := memStream(t, &chunkedReader{r: strings.NewReader(tt.body), n: size}, false)
				chunks, err := drainStream(s)
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
				e := asError(t, err, tt.kind)
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
			chunks, err := drainStream(s)
			if len(chunks) != 1 {
				t.Errorf("%d chunks", len(chunks))
			}
			e := asError(t, err, tt.kind)
			if e.Code != tt.typ || e.Status != 0 || e.Message == "" || (tt.msg != "" && e.Message != tt.msg) {
				t.Errorf("error = %+v", e)
			}
		})
	}
}

// TestSSEParsing checks the event splitter against the WHATWG rules, at several read
// sizes so that terminators straddle buffer edges.
func TestSSEParsing(t *testing.T) {
	long := strings.Repeat("x", 3*readBufferSize)
	tests := []struct {
		name    string
		in      string
		events  []string
		partial string // data of an event cut off by EOF
	}{
		{name: "lf", in: "data: a\n\ndata: b\n\n", events: []string{"a", "b"}},
		{name: "crlf", in: "data: a\r\n\r\ndata: b\r\n\r\n", events: []string{"a", "b"}},
		{name: "cr", in: "data: a\r\rdata: b\r\r", events: []string{"a", "b"}},
		{name: "mixed", in: "data: a\r\n\ndata: b\r\rdata: c\n\r\n", events: []string{"a", "b", "c"}},
		{name: "no space after colon", in: "data:a\n\n", events: []string{"a"}},
		{name: "only one space stripped", in: "data:  a \n\n", events: []string{" a "}},
		{name: "multi-line data", in: "data: a\ndata: b\ndata:\ndata: c\n\n", events: []string{"a\nb\n\nc"}},
		{name: "comments ignored", in: ": hi\ndata: a\n: there\n\n:\n\n", events: []string{"a"}},
		{name: "event names tolerated", in: "event: message_start\nid: 7\nretry: 1000\ndata: a\nfoo: bar\n\n", events: []string{"a"}},
		{name: "blank lines without data", in: "\n\n\r\n\revent: ping\n\ndata: a\n\n\n", events: []string{"a"}},
		{name: "bom", in: "\xEF\xBB\xBFdata: a\n\n", events: []string{"a"}},
		{name: "long line", in: "data: " + long + "\n\ndata: b\n\n", events: []string{long, "b"}},
		{name: "cr at buffer edge", in: "data: " + strings.Repeat("y", readBufferSize-7) + "\r\n\r\ndata: b\r\n\r\n",
			events: []string{strings.Repeat("y", readBufferSize-7), "b"}},
		{name: "unterminated event", in: "data: a\n\ndata: b\n", events: []string{"a"}, partial: "b"},
		{name: "unterminated line", in: "data: a\n\ndata: b", events: []string{"a"}, partial: "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1 << 20, 3, 1} {
				r := getSSEReader(&chunkedReader{r: strings.NewReader(tt.in), n: size})
				var got []string
				var partial string
				for {
					data, err := r.next()
					if err != nil {
						if err != io.EOF {
							t.Fatalf("read size %d: %v", size, err)
						}
						partial = string(data)
						break
					}
					got = append(got, string(data))
				}
				putSSEReader(r)
				if strings.Join(got, "|") != strings.Join(tt.events, "|") || len(got) != len(tt.events) {
					t.Errorf("read size %d: events = %q, want %q", size, got, tt.events)
				}
				if partial != tt.partial {
					t.Errorf("read size %d: partial = %q, want %q", size, partial, tt.partial)
				}
			}
		})
	}
}

// blockingStream serves message_start and one text delta, then holds the response open
// until the client leaves.
func blockingStream(t *testing.T) (*httptest.Server, chan struct{}) {
	left := make(chan struct{}, 1)
	text := readTestdata(t, "streams/text.sse")
	first := text[:bytes.Index(text, []byte("event: ping"))]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(first)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			left <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	}))
	return srv, left
}

func TestStreamContextEndsRecv(t *testing.T) {
	tests := []struct {
		name string
		kind adapters.Kind
		ctx  func() (context.Context, context.CancelFunc)
		end  func(cancel context.CancelFunc)
	}{
		{name: "cancel", kind: adapters.KindCanceled,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			end: func(cancel context.CancelFunc) { time.AfterFunc(50*time.Millisecond, cancel) }},
		{name: "deadline", kind: adapters.KindTimeout,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			end: func(context.CancelFunc) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := checkNoLeak(t)
			srv, left := blockingStream(t)
			p, err := New(Config{Name: "test", BaseURL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			s, err := p.ChatStream(ctx, simpleRequest())
			if err != nil {
				t.Fatal(err)
			}
			if c, err := s.Recv(); err != nil || c.Choices[0].Delta.Role != "assistant" {
				t.Fatal(c, err)
			}
			tt.end(cancel)
			start := time.Now()
			_, err = s.Recv()
			asError(t, err, tt.kind)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Recv unblocked after %v", d)
			}
			if err := s.Close(); err != nil {
				t.Error(err)
			}
			s.Close() // idempotent
			select {
			case <-left:
			case <-time.After(2 * time.Second):
				t.Error("upstream did not see the client leave")
			}
			srv.Close()
			p.Close()
			done()
		})
	}
}

func TestStreamCloseAbortsRecv(t *testing.T) {
	done := checkNoLeak(t)
	srv, _ := blockingStream(t)
	p, err := New(Config{Name: "test", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.ChatStream(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	select {
	case err := <-errc:
		asError(t, err, adapters.KindCanceled)
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Recv")
	}
	if _, err := s.Recv(); err == nil {
		t.Error("Recv after Close returned no error")
	}
	s.Close()
	srv.Close()
	p.Close()
	done()
}

// TestStreamTruncatedOverHTTP cuts the connection mid-stream: the client must see
// KindConnection, not io.EOF, and nothing may leak.
func TestStreamTruncatedOverHTTP(t *testing.T) {
	done := checkNoLeak(t)
	text := readTestdata(t, "streams/tool_use.sse")
	cut := text[:len(text)/2]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(cut)
		w.(http.Flusher).Flush()
		// Drop the connection without ending the chunked body.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	p, err := New(Config{Name: "test", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.ChatStream(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := drainStream(s)
	if len(chunks) == 0 {
		t.Error("no chunks before the cut")
	}
	asError(t, err, adapters.KindConnection)
	s.Close()
	srv.Close()
	p.Close()
	done()
}

// TestStreamReusesConnection checks that a stream read to message_stop and closed hands
// its connection back: otherwise every streamed request would pay a new TCP and TLS setup.
func TestStreamReusesConnection(t *testing.T) {
	var conns atomic.Int32
	body := readTestdata(t, "streams/text.sse")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
		w.(http.Flusher).Flush()
		time.Sleep(5 * time.Millisecond)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := mustProvider(t, Config{BaseURL: srv.URL})
	for i := 0; i < 5; i++ {
		s, err := p.ChatStream(context.Background(), simpleRequest())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drainStream(s); err != io.EOF {
			t.Fatal(err)
		}
		s.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 sequential streams, want 1", n)
	}
}

func TestStreamReadErrorIsConnection(t *testing.T) {
	const start = `data: {"type":"message_start","message":{"id":"msg_1","model":"m"}}` + "\n\n"
	r := io.MultiReader(strings.NewReader(start), errReader{errors.New("connection reset by peer")})
	s := memStream(t, r, false)
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Recv()
	e := asError(t, err, adapters.KindConnection)
	if !strings.Contains(e.Error(), "connection reset") {
		t.Errorf("cause lost: %v", e)
	}
}
