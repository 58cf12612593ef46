package openai

import (
	"bytes"
	"context"
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

// sseServer streams body as text/event-stream.
func sseServer(t *testing.T, body []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// memStream is a stream over an in-memory body, bypassing HTTP.
func memStream(t testing.TB, r io.Reader) *stream {
	p, err := New(Config{Name: "mem"})
	if err != nil {
		t.Fatal(err)
	}
	return newStream(context.Background(), p, io.NopCloser(r))
}

func TestStreamTranscripts(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		srv := sseServer(t, readTestdata(t, "stream_text.sse"))
		p := mustProvider(t, Config{BaseURL: srv.URL})
		s, err := p.ChatStream(context.Background(), canonicalRequest())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		chunks, err := drainStream(s)
		if err != io.EOF {
			t.Fatalf("end = %v, want io.EOF", err)
		}
		if len(chunks) != 11 {
			t.Fatalf("%d chunks, want 11", len(chunks))
		}
		var text strings.Builder
		for _, c := range chunks {
			if c.Object != adapters.ObjectChatCompletionChunk || c.ID != "chatcmpl-7QyqpwdfhqwajicIEznoc6Q47XAyW" ||
				c.Model != "gpt-4o-mini-2024-07-18" || c.SystemFingerprint != "fp_44709d6fcb" || c.Created != 1694268190 {
				t.Fatalf("chunk envelope = %+v", c)
			}
			if d := c.Choices[0].Delta.Content; d != nil {
				text.WriteString(*d)
			}
		}
		if chunks[0].Choices[0].Delta.Role != "assistant" {
			t.Errorf("first delta role = %q", chunks[0].Choices[0].Delta.Role)
		}
		if text.String() != "Hello! How can I assist you today?" {
			t.Errorf("text = %q", text.String())
		}
		last := chunks[len(chunks)-1].Choices[0]
		if last.FinishReason == nil || *last.FinishReason != adapters.FinishStop {
			t.Errorf("finish = %v", last.FinishReason)
		}
		for i := 0; i < 2; i++ {
			if _, err := s.Recv(); err != io.EOF {
				t.Errorf("Recv after end = %v, want io.EOF", err)
			}
		}
	})

	t.Run("tool call", func(t *testing.T) {
		srv := sseServer(t, readTestdata(t, "stream_tool_call.sse"))
		p := mustProvider(t, Config{BaseURL: srv.URL})
		s, err := p.ChatStream(context.Background(), canonicalRequest())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		chunks, err := drainStream(s)
		if err != io.EOF {
			t.Fatalf("end = %v", err)
		}
		var id, name, args string
		var finish string
		var deltas int
		for _, c := range chunks {
			for _, ch := range c.Choices {
				for _, tc := range ch.Delta.ToolCalls {
					if tc.Index == nil || *tc.Index != 0 {
						t.Fatalf("tool call delta without index 0: %+v", tc)
					}
					id += tc.ID
					name += tc.Function.Name
					args += tc.Function.Arguments
					deltas++
				}
				if ch.FinishReason != nil {
					finish = *ch.FinishReason
				}
			}
		}
		if id != "call_DdmO9pD3xa9XTPNJ32zg2hcA" || name != "get_weather" || args != `{"location":"Paris, France"}` || deltas != 8 {
			t.Errorf("tool call = id %q name %q args %q in %d deltas", id, name, args, deltas)
		}
		if finish != adapters.FinishToolCalls {
			t.Errorf("finish = %q", finish)
		}
		last := chunks[len(chunks)-1]
		if len(last.Choices) != 0 || last.Usage == nil || last.Usage.TotalTokens != 78 || last.Usage.PromptTokens != 62 {
			t.Errorf("usage chunk = %+v (usage %+v)", last, last.Usage)
		}
		for _, c := range chunks[:len(chunks)-1] {
			if c.Usage != nil {
				t.Errorf("usage on a content chunk: %+v", c.Usage)
			}
		}
	})

	t.Run("mid-stream error", func(t *testing.T) {
		srv := sseServer(t, readTestdata(t, "stream_error.sse"))
		p := mustProvider(t, Config{BaseURL: srv.URL})
		s, err := p.ChatStream(context.Background(), canonicalRequest())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		chunks, err := drainStream(s)
		if len(chunks) != 3 {
			t.Errorf("%d chunks before the error, want 3", len(chunks))
		}
		e := asError(t, err, adapters.KindServer)
		if e.Code != "server_error" || !strings.Contains(e.Message, "Sorry about that") || e.Status != 0 {
			t.Errorf("error = %+v", e)
		}
		if _, again := s.Recv(); again != err {
			t.Errorf("error not sticky: %v", again)
		}
	})
}

func TestStreamFailures(t *testing.T) {
	text := readTestdata(t, "stream_text.sse")
	truncated := text[:bytes.Index(text, []byte("data: [DONE]"))]
	tests := []struct {
		name   string
		body   string
		kind   adapters.Kind
		code   string
		chunks int
		eof    bool
	}{
		{name: "truncated before [DONE]", body: string(truncated), kind: adapters.KindConnection, chunks: 11},
		{name: "truncated mid-event", body: string(text[:len(text)/2]), kind: adapters.KindConnection, chunks: 5},
		{name: "empty body", body: "", kind: adapters.KindConnection},
		{name: "only comments", body: ": ping\n\n: ping\n\n", kind: adapters.KindConnection},
		{name: "[DONE] without final blank line", body: string(truncated) + "data: [DONE]", chunks: 11, eof: true},
		{name: "[DONE] with CRLF", body: "data: [DONE]\r\n\r\n", eof: true},
		{name: "oversized event", body: "data: {\"x\":\"" + strings.Repeat("a", maxEvent) + "\"}\n\n", kind: adapters.KindProtocol},
		{name: "oversized multi-line event", body: strings.Repeat("data: "+strings.Repeat("a", 1000)+"\n", 1100) + "\n", kind: adapters.KindProtocol},
		{name: "oversized comment line", body: ":" + strings.Repeat("a", maxEvent+10) + "\n\ndata: [DONE]\n\n", kind: adapters.KindProtocol},
		{name: "not json", body: "data: hello\n\n", kind: adapters.KindProtocol},
		{name: "rate limit error event", kind: adapters.KindRateLimited, code: "rate_limit_exceeded",
			body: `data: {"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}` + "\n\n"},
		{name: "vllm error event", kind: adapters.KindBadRequest, code: "400",
			body: `data: {"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}` + "\n\n"},
		{name: "content that mentions error", chunks: 1, eof: true,
			body: `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"error"},"finish_reason":null}]}` + "\n\ndata: [DONE]\n\n"},
		{name: "whitespace-only data is skipped", body: "data:  \n\ndata: [DONE]\n\n", eof: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1 << 20, 7, 1} {
				s := memStream(t, &chunkedReader{r: strings.NewReader(tt.body), n: size})
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
		{name: "other fields tolerated", in: "event: message\nid: 7\nretry: 1000\ndata: a\nfoo: bar\n\n", events: []string{"a"}},
		{name: "field without colon", in: "data\ndata\n\n", events: []string{"\n"}},
		{name: "blank lines without data", in: "\n\n\r\n\rdata: a\n\n\n", events: []string{"a"}},
		{name: "bom", in: "\xEF\xBB\xBFdata: a\n\n", events: []string{"a"}},
		{name: "colon in value", in: "data: {\"a\":\"b:c\"}\n\n", events: []string{`{"a":"b:c"}`}},
		{name: "long line", in: "data: " + long + "\n\ndata: b\n\n", events: []string{long, "b"}},
		{name: "cr at buffer edge", in: "data: " + strings.Repeat("y", readBufferSize-7) + "\r\n\r\ndata: b\r\n\r\n",
			events: []string{strings.Repeat("y", readBufferSize-7), "b"}},
		{name: "unterminated event", in: "data: a\n\ndata: b\n", events: []string{"a"}, partial: "b"},
		{name: "unterminated line", in: "data: a\n\ndata: b", events: []string{"a"}, partial: "b"},
		{name: "data field name is case sensitive", in: "Data: a\n\n", events: nil},
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

// blockingStream serves one chunk, then holds the response open until the client leaves.
func blockingStream(t *testing.T) (*httptest.Server, chan struct{}) {
	left := make(chan struct{}, 1)
	first := readTestdata(t, "stream_text.sse")
	first = first[:bytes.Index(first, []byte("\n\n"))+2]
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
			s, err := p.ChatStream(ctx, canonicalRequest())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
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
	s, err := p.ChatStream(context.Background(), canonicalRequest())
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
	srv.Close()
	p.Close()
	done()
}

// TestStreamReusesConnection checks that a stream read to [DONE] and closed hands its
// connection back: otherwise every streamed request would pay a new TCP and TLS setup.
func TestStreamReusesConnection(t *testing.T) {
	var conns atomic.Int32
	body := readTestdata(t, "stream_text.sse")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		// Flush [DONE] before the handler returns, as real servers do, so that the end of
		// the chunked body arrives separately and only draining can see it.
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
		s, err := p.ChatStream(context.Background(), canonicalRequest())
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

func TestStreamErrorsAreAdapterErrors(t *testing.T) {
	// A reader failing mid-body (a reset connection) must surface as KindConnection.
	r := io.MultiReader(strings.NewReader("data: {\"id\":\"x\",\"choices\":[]}\n\n"), errReader{errors.New("connection reset by peer")})
	s := memStream(t, r)
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Recv()
	e := asError(t, err, adapters.KindConnection)
	if !strings.Contains(e.Error(), "connection reset") {
		t.Errorf("cause lost: %v", e)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
