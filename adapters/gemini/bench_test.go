package gemini

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

// benchStreamBody is a completion of n events as Gemini streams it: every event repeats
// usageMetadata, modelVersion and responseId, and the last carries the finishReason.
func benchStreamBody(n int) []byte {
	var b bytes.Buffer
	const tail = `,"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 12,"totalTokenCount": 12,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 12}]},"modelVersion": "gemini-2.5-flash","responseId": "mN2gaLqWEoyJz7IPmf6QiAQ"}`
	for i := 0; i < n-1; i++ {
		tok, _ := json.Marshal(fmt.Sprintf(" token%d and a few more words", i))
		fmt.Fprintf(&b, "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": %s}]%s\r\n\r\n", tok, tail)
	}
	b.WriteString(`data: {"candidates": [{"content": {"parts": [{"text": ""}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 12,"candidatesTokenCount": 1400,"totalTokenCount": 1412},"modelVersion": "gemini-2.5-flash","responseId": "mN2gaLqWEoyJz7IPmf6QiAQ"}` + "\r\n\r\n")
	return b.Bytes()
}

// BenchmarkStream200Events measures the per-event cost of SSE parsing, event decoding
// and chunk building, without the network: the part of a streamed request that runs
// once per few tokens.
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
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rd.Reset(body)
		s := newStream(ctx, p, io.NopCloser(rd), "gemini-2.5-flash", true)
		n := 0
		for {
			_, err := s.Recv()
			if err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			n++
		}
		// role, 199 text chunks, finish, usage
		if n != events+2 {
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

// BenchmarkChatStream is a 200-event streamed round trip over loopback HTTP.
func BenchmarkChatStream(b *testing.B) {
	body := benchStreamBody(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	defer srv.Close()
	p, err := New(Config{Name: "bench", BaseURL: srv.URL, APIKey: "bench-key"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := chatRequest(true)
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

// BenchmarkChat is a non-streamed round trip over loopback HTTP, translation included.
func BenchmarkChat(b *testing.B) {
	reply := readTestdata(b, "responses/function_call.gemini.json")
	raw := readTestdata(b, "requests/tools_roundtrip.openai.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
	}))
	defer srv.Close()
	p, err := New(Config{Name: "bench", BaseURL: srv.URL, APIKey: "bench-key"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := chatRequest(false)
	if err := json.Unmarshal(raw, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Chat(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
