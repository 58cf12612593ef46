package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// A chunk is flushed to the client when the next one is not already at hand: a client
// reading a slow stream gets each chunk as the upstream sends it, not with the next one.
func TestStreamChunksAreNotHeld(t *testing.T) {
	g, a, _ := twoFakes(t, "")
	const interval = 250 * time.Millisecond
	a.SetDefault("m1", fakeupstream.Step{Reply: "one two three four", Chunks: 4, ChunkInterval: interval})
	s := g.client("k").Chat.Completions.NewStreaming(context.Background(), userParams("chat", "slow"))
	var at []time.Time
	for s.Next() {
		if c := s.Current(); len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			at = append(at, time.Now())
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(at) != 4 {
		t.Fatalf("%d content chunks, want 4", len(at))
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < interval/2 {
			t.Errorf("content chunk %d arrived %v after the one before: it was held back", i, gap)
		}
	}
}

// An upstream that sends its whole stream at once is relayed in one flush, not one per
// chunk: the events after the first are already read when the first is written.
func TestStreamBatchIsFlushedOnce(t *testing.T) {
	var events strings.Builder
	events.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&events, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m1","choices":[{"index":0,"delta":{"content":"w%d "},"finish_reason":null}]}`+"\n\n", i)
	}
	events.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	events.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":8,"total_tokens":13}}` + "\n\ndata: [DONE]\n\n")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, events.String()) // one write: the whole stream arrives together
	}))
	defer up.Close()
	b := fakeupstream.New()
	defer b.Close()
	dir := bundle(t, "e2e-1", twoProviders(nil))
	g := start(t, fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: "%s"}
  - {name: b, type: openai, base_url: "%s"}
`, dir, up.URL, b.URL()), nil)

	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gavel\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.TransferEncoding == nil {
		t.Fatalf("status %d, transfer encoding %v", resp.StatusCode, resp.TransferEncoding)
	}
	// Each flush of a chunked response is one HTTP chunk: count them on the wire.
	var chunks int
	var got strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading chunk size: %v (after %d chunks: %s)", err, chunks, got.String())
		}
		n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
		if err != nil {
			t.Fatalf("chunk size %q: %v", line, err)
		}
		if n == 0 {
			break
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(br, data); err != nil {
			t.Fatal(err)
		}
		got.Write(data[:n])
		chunks++
	}
	if !strings.HasSuffix(got.String(), "data: [DONE]\n\n") || strings.Count(got.String(), "data: ") != 11 {
		t.Fatalf("stream relayed as:\n%s", got.String())
	}
	if chunks > 2 {
		t.Errorf("the stream was written in %d flushes; its events all arrived together", chunks)
	}
}
