package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// benchStreamBody is an Anthropic stream of exactly events events, as the API sends them
// (named events, spaces after colons): message_start, a ping, one text block of
// events-6 deltas, message_delta and message_stop. It yields events-4 chunks: the role
// chunk, one per delta, and the finish chunk.
func benchStreamBody(events int) []byte {
	var b bytes.Buffer
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	b.WriteString("event: ping\ndata: {\"type\": \"ping\"}\n\n")
	for i := 0; i < events-6; i++ {
		tok, _ := json.Marshal(fmt.Sprintf(" tok%d", i))
		fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}\n\n", tok)
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":195}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return b.Bytes()
}

// BenchmarkStream200Events measures the per-event cost of reading and translating an
// Anthropic stream from memory: the part of a streamed request that runs once per token.
func BenchmarkStream200Events(b *testing.B) {
	const events = 200
	body := benchStreamBody(events)
	p, err := New(Config{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rd := bytes.NewReader(body)
	opts := streamOptions{model: "claude-sonnet-4-5", includeUsage: true, created: 1}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rd.Reset(body)
		s := newStream(ctx, p, io.NopCloser(rd), opts)
		n := 0
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			n++
		}
		if n != events-4+1 { // + the usage chunk
			b.Fatalf("%d chunks", n)
		}
		s.Close()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	total := float64(b.N * events)
	b.ReportMetric(float64(elapsed.Nanoseconds())/total, "ns/event")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/event")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/event")
}

// BenchmarkTranslateRequest measures translating a multi-turn tool conversation.
func BenchmarkTranslateRequest(b *testing.B) {
	req := readRequest(b, "requests/tool_round_trip.openai.json")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out, err := translateRequest(req, DefaultMaxTokens, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatStream is a 200-event streamed round trip over loopback HTTP.
func BenchmarkChatStream(b *testing.B) {
	body := benchStreamBody(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	defer srv.Close()
	p, err := New(Config{Name: "bench", BaseURL: srv.URL, APIKey: "sk-ant-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := simpleRequest()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := p.ChatStream(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
		s.Close()
	}
}
