package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

func chatRequest(includeUsage bool) *adapters.ChatRequest {
	req := &adapters.ChatRequest{Model: "gemini-requested", Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent("hi")}}}
	if includeUsage {
		req.StreamOptions = &adapters.StreamOptions{IncludeUsage: true}
	}
	return req
}

// memStream is a stream over an in-memory body, bypassing HTTP.
func memStream(t testing.TB, r io.Reader, includeUsage bool) *stream {
	p, err := New(Config{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return fixedNow }
	return newStream(context.Background(), p, io.NopCloser(r), "gemini-requested", includeUsage)
}

// transcript renders a stream's chunks and its end as JSON lines.
func transcript(chunks []*adapters.ChatChunk, end error) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		j, _ := json.Marshal(c)
		b.Write(j)
		b.WriteByte('\n')
	}
	b.Write(errorJSON(end))
	b.WriteByte('\n')
	return b.Bytes()
}

// TestStreamGolden streams every testdata/streams/*.sse over HTTP, with include_usage,
// and compares the chunks and the end with NAME.openai.jsonl. The same body read in
// tiny pieces and with LF line ends must give the same transcript.
func TestStreamGolden(t *testing.T) {
	names, _ := filepath.Glob(filepath.Join("testdata", "streams", "*.sse"))
	if len(names) == 0 {
		t.Fatal("no stream fixtures")
	}
	for _, n := range names {
		name := strings.TrimSuffix(filepath.Base(n), ".sse")
		t.Run(name, func(t *testing.T) {
			body := readTestdata(t, filepath.Join("streams", name+".sse"))
			srv := sseServer(t, body)
			p := mustProvider(t, Config{BaseURL: srv.URL})
			s, err := p.ChatStream(context.Background(), chatRequest(true))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, end := drainStream(s)
			got := transcript(chunks, end)
			golden(t, filepath.Join("streams", name+".openai.jsonl"), got)
			if _, again := s.Recv(); again != end {
				t.Errorf("end not sticky: %v then %v", end, again)
			}

			for _, variant := range []struct {
				body []byte
				size int
			}{
				{body, 1}, {body, 7},
				{bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")), 3},
			} {
				ms := memStream(t, &chunkedReader{r: bytes.NewReader(variant.body), n: variant.size}, true)
				c2, e2 := drainStream(ms)
				ms.Close()
				if other := transcript(c2, e2); !bytes.Equal(other, got) {
					t.Errorf("read size %d: transcript differs:\n%s\nvs\n%s", variant.size, other, got)
				}
			}
		})
	}
}

func TestStreamUsageOnlyWhenAsked(t *testing.T) {
	body := readTestdata(t, "streams/text.sse")
	for _, include := range []bool{false, true} {
		s := memStream(t, bytes.NewReader(body), include)
		chunks, err := drainStream(s)
		if err != io.EOF {
			t.Fatal(err)
		}
		var usage int
		for _, c := range chunks {
			if c.Usage != nil {
				usage++
				if len(c.Choices) != 0 || c.Choices == nil {
					t.Errorf("usage chunk choices = %#v, want empty non-nil", c.Choices)
				}
			}
		}
		if want := map[bool]int{false: 0, true: 1}[include]; usage != want {
			t.Errorf("include_usage=%v: %d usage chunks", include, usage)
		}
	}
}

func TestStreamFailures(t *testing.T) {
	text := readTestdata(t, "streams/text.sse")
	lastEvent := bytes.LastIndex(text[:len(text)-4], []byte("\r\n\r\n")) + 4
	tests := []struct {
		name   string
		body   string
		kind   adapters.Kind
		code   string
		chunks int
		eof    bool
	}{
		{name: "ends before finish reason", body: string(text[:lastEvent]), kind: adapters.KindConnection, chunks: 4},
		{name: "cut mid-event", body: string(text[:lastEvent+40]), kind: adapters.KindConnection, chunks: 4},
		{name: "last event without blank line", body: strings.TrimRight(string(text), "\r\n"), eof: true, chunks: 5},
		{name: "empty body", body: "", kind: adapters.KindConnection},
		{name: "only comments", body: ": ping\n\n: ping\n\n", kind: adapters.KindConnection},
		{name: "oversized event", body: "data: {\"x\":\"" + strings.Repeat("a", maxEvent) + "\"}\n\n", kind: adapters.KindProtocol},
		{name: "oversized multi-line event", body: strings.Repeat("data: "+strings.Repeat("a", 1000)+"\n", 1100) + "\n", kind: adapters.KindProtocol},
		{name: "not json", body: "data: hello\n\n", kind: adapters.KindProtocol},
		{name: "[DONE] is not Gemini's", body: "data: [DONE]\n\n", kind: adapters.KindProtocol},
		{name: "rate limit error event", kind: adapters.KindRateLimited, code: "RESOURCE_EXHAUSTED",
			body: `data: {"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}` + "\n\n"},
		{name: "error event without status", kind: adapters.KindServer, code: "500",
			body: `data: {"error":{"code":500,"message":"boom"}}` + "\n\n"},
		{name: "string error event", kind: adapters.KindServer, body: `data: {"error":"upstream reset"}` + "\n\n"},
		{name: "text that mentions error", chunks: 3, eof: true,
			body: `data: {"candidates":[{"content":{"parts":[{"text":"{\"error\": 1}"}]},"finishReason":"STOP"}]}` + "\n\n"},
		{name: "usage-only events are fine", chunks: 2, eof: true,
			body: `data: {"usageMetadata":{"promptTokenCount":1}}` + "\n\n" + `data: {"candidates":[{"finishReason":"STOP"}]}` + "\n\n"},
		{name: "candidate index out of range", kind: adapters.KindProtocol,
			body: `data: {"candidates":[{"index":100000000,"content":{"parts":[{"text":"x"}]}}]}` + "\n\n"},
		{name: "negative candidate index", kind: adapters.KindProtocol,
			body: `data: {"candidates":[{"index":-1}]}` + "\n\n"},
		{name: "content after finish is ignored", chunks: 3, eof: true,
			body: `data: {"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}]}` + "\n\n" +
				`data: {"candidates":[{"content":{"parts":[{"text":"late"}]}}]}` + "\n\n"},
		{name: "prompt blocked", kind: adapters.KindContentFilter, code: "OTHER",
			body: `data: {"promptFeedback":{"blockReason":"OTHER"}}` + "\n\n"},
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
				if e.Provider != "test" {
					t.Errorf("provider = %q", e.Provider)
				}
			}
		})
	}
}

func TestStreamMultipleCandidates(t *testing.T) {
	body := `data: {"candidates":[{"content":{"parts":[{"text":"A"}]}},{"content":{"parts":[{"functionCall":{"name":"f","args":{"x":1}}}]},"index":1}],"responseId":"r1"}` + "\n\n" +
		`data: {"candidates":[{"content":{"parts":[{"text":"B"}]},"finishReason":"STOP"},{"finishReason":"STOP","index":1}]}` + "\n\n"
	s := memStream(t, strings.NewReader(body), false)
	chunks, err := drainStream(s)
	if err != io.EOF {
		t.Fatal(err)
	}
	type key struct {
		choice int
		what   string
	}
	seen := map[key]string{}
	for _, c := range chunks {
		if c.ID != "chatcmpl-r1" {
			t.Errorf("id = %q", c.ID)
		}
		ch := c.Choices[0]
		switch {
		case ch.Delta.Role != "":
			seen[key{ch.Index, "role"}] += ch.Delta.Role
		case ch.Delta.Content != nil:
			seen[key{ch.Index, "text"}] += *ch.Delta.Content
		case len(ch.Delta.ToolCalls) > 0:
			tc := ch.Delta.ToolCalls[0]
			seen[key{ch.Index, "call"}] += tc.ID + " " + tc.Function.Name + " " + tc.Function.Arguments
		case ch.FinishReason != nil:
			seen[key{ch.Index, "finish"}] += *ch.FinishReason
		}
	}
	want := map[key]string{
		{0, "role"}: "assistant", {0, "text"}: "AB", {0, "finish"}: "stop",
		{1, "role"}: "assistant", {1, "call"}: `call_0 f {"x":1}`, {1, "finish"}: "tool_calls",
	}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("%v = %q, want %q", k, seen[k], v)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("seen = %v", seen)
	}
}

func TestStreamGeneratedID(t *testing.T) {
	body := `data: {"candidates":[{"content":{"parts":[{"text":"A"}]}}]}` + "\n\n" +
		`data: {"candidates":[{"finishReason":"STOP"}],"responseId":"late"}` + "\n\n"
	chunks, err := drainStream(memStream(t, strings.NewReader(body), false))
	if err != io.EOF {
		t.Fatal(err)
	}
	id := chunks[0].ID
	if !generatedID.MatchString(id+`"`) || chunks[0].Model != "gemini-requested" {
		t.Errorf("id %q model %q", id, chunks[0].Model)
	}
	for _, c := range chunks {
		if c.ID != id {
			t.Errorf("ids differ: %q vs %q", c.ID, id)
		}
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
		partial string
	}{
		{name: "crlf", in: "data: a\r\n\r\ndata: b\r\n\r\n", events: []string{"a", "b"}},
		{name: "lf", in: "data: a\n\ndata: b\n\n", events: []string{"a", "b"}},
		{name: "cr", in: "data: a\r\rdata: b\r\r", events: []string{"a", "b"}},
		{name: "multi-line data", in: "data: a\ndata: b\n\n", events: []string{"a\nb"}},
		{name: "comments and other fields", in: ": hi\nevent: message\nid: 7\ndata: a\n\n", events: []string{"a"}},
		{name: "bom", in: "\xEF\xBB\xBFdata: a\n\n", events: []string{"a"}},
		{name: "long line", in: "data: " + long + "\r\n\r\ndata: b\r\n\r\n", events: []string{long, "b"}},
		{name: "cr at buffer edge", in: "data: " + strings.Repeat("y", readBufferSize-7) + "\r\n\r\ndata: b\r\n\r\n",
			events: []string{strings.Repeat("y", readBufferSize-7), "b"}},
		{name: "unterminated event", in: "data: a\r\n\r\ndata: b\r\n", events: []string{"a"}, partial: "b"},
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

// blockingStream serves one event, then holds the response open until the client leaves.
func blockingStream(t *testing.T) (*httptest.Server, chan struct{}) {
	left := make(chan struct{}, 1)
	first := readTestdata(t, "streams/text.sse")
	first = first[:bytes.Index(first, []byte("\r\n\r\n"))+4]
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
			s, err := p.ChatStream(ctx, chatRequest(false))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ { // the role chunk and the first text
				if _, err := s.Recv(); err != nil {
					t.Fatal(err)
				}
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
	s, err := p.ChatStream(context.Background(), chatRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
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
	srv.Close()
	p.Close()
	done()
}

// TestStreamTruncatedOverHTTP cuts the connection after two events: the client must see
// KindConnection, not a clean end, and nothing may leak.
func TestStreamTruncatedOverHTTP(t *testing.T) {
	done := checkNoLeak(t)
	body := readTestdata(t, "streams/text.sse")
	first := bytes.Index(body, []byte("\r\n\r\n")) + 4
	cut := first + bytes.Index(body[first:], []byte("\r\n\r\n")) + 4
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body[:cut+20])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // no terminating chunk: the body ends abruptly
		}
	}))
	p, err := New(Config{Name: "test", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.ChatStream(context.Background(), chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := drainStream(s)
	asError(t, err, adapters.KindConnection)
	if len(chunks) != 3 {
		t.Errorf("%d chunks before the cut, want 3", len(chunks))
	}
	for _, c := range chunks {
		if c.Usage != nil {
			t.Error("usage chunk on a truncated stream")
		}
	}
	s.Close()
	srv.Close()
	p.Close()
	done()
}

// TestStreamReusesConnection checks that a stream read to its end and closed hands its
// connection back: otherwise every streamed request would pay a new TCP and TLS setup.
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
		s, err := p.ChatStream(context.Background(), chatRequest(true))
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
	r := io.MultiReader(strings.NewReader("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}\n\n"),
		errReader{errors.New("connection reset by peer")})
	s := memStream(t, r, false)
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Recv()
	e := asError(t, err, adapters.KindConnection)
	if !strings.Contains(e.Error(), "connection reset") {
		t.Errorf("cause lost: %v", e)
	}
}
