package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
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
			body := adaptertest.ReadTestdata(t, filepath.Join("streams", name+".sse"))
			srv := adaptertest.SSEServer(t, body)
			p := mustProvider(t, Config{BaseURL: srv.URL})
			s, err := p.ChatStream(context.Background(), chatRequest(true))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks, end := adaptertest.DrainStream(s)
			got := transcript(chunks, end)
			adaptertest.Golden(t, filepath.Join("streams", name+".openai.jsonl"), got)
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
				ms := memStream(t, adaptertest.ChunkedReader(bytes.NewReader(variant.body), variant.size), true)
				c2, e2 := adaptertest.DrainStream(ms)
				ms.Close()
				if other := transcript(c2, e2); !bytes.Equal(other, got) {
					t.Errorf("read size %d: transcript differs:\n%s\nvs\n%s", variant.size, other, got)
				}
			}
		})
	}
}

func TestStreamUsageOnlyWhenAsked(t *testing.T) {
	body := adaptertest.ReadTestdata(t, "streams/text.sse")
	for _, include := range []bool{false, true} {
		s := memStream(t, bytes.NewReader(body), include)
		chunks, err := adaptertest.DrainStream(s)
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
	text := adaptertest.ReadTestdata(t, "streams/text.sse")
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
		{name: "oversized event", body: "data: {\"x\":\"" + strings.Repeat("a", sse.MaxEvent) + "\"}\n\n", kind: adapters.KindProtocol},
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
	chunks, err := adaptertest.DrainStream(s)
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
	chunks, err := adaptertest.DrainStream(memStream(t, strings.NewReader(body), false))
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

// blockingStream serves one event, then holds the response open until the client leaves.
func blockingStream(t *testing.T) adaptertest.Blocking {
	first := adaptertest.ReadTestdata(t, "streams/text.sse")
	return adaptertest.Blocking{
		Adapter: testAdapter(false),
		First:   first[:bytes.Index(first, []byte("\r\n\r\n"))+4],
		ReadFirst: func(t *testing.T, s adapters.ChunkStream) {
			for i := 0; i < 2; i++ { // the role chunk and the first text
				if _, err := s.Recv(); err != nil {
					t.Fatal(err)
				}
			}
		},
	}
}

func TestStreamContextEndsRecv(t *testing.T) { adaptertest.StreamContextEndsRecv(t, blockingStream(t)) }

func TestStreamCloseAbortsRecv(t *testing.T) { adaptertest.StreamCloseAbortsRecv(t, blockingStream(t)) }

// TestStreamTruncatedOverHTTP cuts the connection after two events: the client must see
// KindConnection, not a clean end, and nothing may leak.
func TestStreamTruncatedOverHTTP(t *testing.T) {
	body := adaptertest.ReadTestdata(t, "streams/text.sse")
	first := bytes.Index(body, []byte("\r\n\r\n")) + 4
	cut := first + bytes.Index(body[first:], []byte("\r\n\r\n")) + 4
	chunks := adaptertest.StreamTruncatedOverHTTP(t, testAdapter(true), body[:cut+20])
	if len(chunks) != 3 {
		t.Errorf("%d chunks before the cut, want 3", len(chunks))
	}
	for _, c := range chunks {
		if c.Usage != nil {
			t.Error("usage chunk on a truncated stream")
		}
	}
}

// TestStreamReusesConnection checks that a stream read to its end and closed hands its
// connection back: otherwise every streamed request would pay a new TCP and TLS setup.
func TestStreamReusesConnection(t *testing.T) {
	adaptertest.StreamReusesConnection(t, testAdapter(true), adaptertest.ReadTestdata(t, "streams/text.sse"))
}

func TestStreamReadErrorIsConnection(t *testing.T) {
	r := adaptertest.ResetAfter("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}\n\n")
	adaptertest.StreamReadErrorIsConnection(t, memStream(t, r, false), 2) // the role chunk and the text
}
