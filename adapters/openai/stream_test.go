package openai

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
)

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
		srv := adaptertest.SSEServer(t, adaptertest.ReadTestdata(t, "stream_text.sse"))
		p := mustProvider(t, Config{BaseURL: srv.URL})
		s, err := p.ChatStream(context.Background(), canonicalRequest())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		chunks, err := adaptertest.DrainStream(s)
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
		srv := adaptertest.SSEServer(t, adaptertest.ReadTestdata(t, "stream_tool_call.sse"))
		p := mustProvider(t, Config{BaseURL: srv.URL})
		s, err := p.ChatStream(context.Background(), canonicalRequest())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		chunks, err := adaptertest.DrainStream(s)
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
		srv := adaptertest.SSEServer(t, adaptertest.ReadTestdata(t, "stream_error.sse"))
		p := mustProvider(t, Config{BaseURL: srv.URL})
		s, err := p.ChatStream(context.Background(), canonicalRequest())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		chunks, err := adaptertest.DrainStream(s)
		if len(chunks) != 3 {
			t.Errorf("%d chunks before the error, want 3", len(chunks))
		}
		e := adaptertest.AsError(t, err, adapters.KindServer)
		if e.Code != "server_error" || !strings.Contains(e.Message, "Sorry about that") || e.Status != 0 {
			t.Errorf("error = %+v", e)
		}
		if _, again := s.Recv(); again != err {
			t.Errorf("error not sticky: %v", again)
		}
	})
}

func TestStreamFailures(t *testing.T) {
	text := adaptertest.ReadTestdata(t, "stream_text.sse")
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
		{name: "oversized event", body: "data: {\"x\":\"" + strings.Repeat("a", sse.MaxEvent) + "\"}\n\n", kind: adapters.KindProtocol},
		{name: "oversized multi-line event", body: strings.Repeat("data: "+strings.Repeat("a", 1000)+"\n", 1100) + "\n", kind: adapters.KindProtocol},
		{name: "oversized comment line", body: ":" + strings.Repeat("a", sse.MaxEvent+10) + "\n\ndata: [DONE]\n\n", kind: adapters.KindProtocol},
		{name: "not json", body: "data: hello\n\n", kind: adapters.KindProtocol},
		{name: "rate limit error event", kind: adapters.KindRateLimited, code: "rate_limit_exceeded",
			body: `data: {"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}` + "\n\n"},
		{name: "vllm error event", kind: adapters.KindBadRequest, code: "400",
			body: `data: {"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}` + "\n\n"},
		{name: "content that mentions error", chunks: 1, eof: true,
			body: `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"error"},"finish_reason":null}]}` + "\n\ndata: [DONE]\n\n"},
		{name: "whitespace-only data is skipped", body: "data:  \n\ndata: [DONE]\n\n", eof: true},
		// A chunk of text in the layout of the ones before it skips the error check
		// unless its text ends in "error": these chunks carry a top-level "message",
		// which makes parseErrorBody call them errors whenever the check runs.
		{name: "laid-out chunk whose text ends in a quoted error", chunks: 2, kind: adapters.KindServer,
			body: messageChunk("a") + messageChunk("b") + messageChunk(`say \"error`) + messageChunk("c")},
		{name: "laid-out chunk whose text is error", chunks: 2, kind: adapters.KindServer,
			body: messageChunk("a") + messageChunk("b") + messageChunk("error")},
		{name: "laid-out chunk whose text mentions error", chunks: 4, eof: true,
			body: messageChunk("a") + messageChunk("b") + messageChunk(`an \"error\" here`) + messageChunk("errors") + "data: [DONE]\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1 << 20, 7, 1} {
				s := memStream(t, adaptertest.ChunkedReader(strings.NewReader(tt.body), size))
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
			}
		})
	}
}

// messageChunk is a chunk of text with a top-level "message" member, which
// parseErrorBody takes for an error when mayHoldError lets it look.
func messageChunk(text string) string {
	return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","message":"x","choices":[{"index":0,"delta":{"content":"` +
		text + `"},"finish_reason":null}]}` + "\n\n"
}

// blockingStream serves one chunk, then holds the response open until the client leaves.
func blockingStream(t *testing.T) adaptertest.Blocking {
	first := adaptertest.ReadTestdata(t, "stream_text.sse")
	return adaptertest.Blocking{Adapter: testAdapter, First: first[:bytes.Index(first, []byte("\n\n"))+2]}
}

func TestStreamContextEndsRecv(t *testing.T) { adaptertest.StreamContextEndsRecv(t, blockingStream(t)) }

func TestStreamCloseAbortsRecv(t *testing.T) { adaptertest.StreamCloseAbortsRecv(t, blockingStream(t)) }

// TestStreamReusesConnection checks that a stream read to [DONE] and closed hands its
// connection back: otherwise every streamed request would pay a new TCP and TLS setup.
func TestStreamReusesConnection(t *testing.T) {
	adaptertest.StreamReusesConnection(t, testAdapter, adaptertest.ReadTestdata(t, "stream_text.sse"))
}

func TestStreamErrorsAreAdapterErrors(t *testing.T) {
	// A reader failing mid-body (a reset connection) must surface as KindConnection.
	adaptertest.StreamReadErrorIsConnection(t, memStream(t, adaptertest.ResetAfter("data: {\"id\":\"x\",\"choices\":[]}\n\n")), 1)
}
