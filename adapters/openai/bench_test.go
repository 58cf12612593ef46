package openai

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

// benchStreamBody is a 200-chunk completion as OpenAI sends it, usage chunk included.
func benchStreamBody(chunks int) []byte {
	var b bytes.Buffer
	const head = `{"id":"chatcmpl-AyPNinnUqUDYo9SAdA52NobMflmj2","object":"chat.completion.chunk","created":1739000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[`
	fmt.Fprintf(&b, "data: %s{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", head)
	for i := 1; i < chunks-2; i++ {
		tok, _ := json.Marshal(fmt.Sprintf(" tok%d", i))
		fmt.Fprintf(&b, "data: %s{\"index\":0,\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", head, tok)
	}
	fmt.Fprintf(&b, "data: %s{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n", head)
	fmt.Fprintf(&b, "data: %s],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":197,\"total_tokens\":209,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n", head)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkStreamRecv measures the per-chunk cost of the SSE reader and chunk decoding,
// without the network: the part of a streamed request that runs once per token.
func BenchmarkStreamRecv(b *testing.B) {
	const chunks = 200
	body := benchStreamBody(chunks)
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
		s := newStream(ctx, p, io.NopCloser(rd))
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
		if n != chunks {
			b.Fatalf("%d chunks", n)
		}
		s.Close()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	total := float64(b.N * chunks)
	b.ReportMetric(float64(elapsed.Nanoseconds())/total, "ns/chunk")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/chunk")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/chunk")
}

// BenchmarkChat is a non-streamed round trip over loopback HTTP.
func BenchmarkChat(b *testing.B) {
	reply := readTestdata(b, "chat_response.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
	}))
	defer srv.Close()
	p, err := New(Config{Name: "bench", BaseURL: srv.URL, APIKey: "sk-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := canonicalRequest()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Chat(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatStream is a 200-chunk streamed round trip over loopback HTTP.
func BenchmarkChatStream(b *testing.B) {
	body := benchStreamBody(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	defer srv.Close()
	p, err := New(Config{Name: "bench", BaseURL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := canonicalRequest()
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
