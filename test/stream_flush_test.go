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

// An upstream that sends its whole stream at once is relayed in one write, not one per
// chunk: the events after the first are already read when the first is written, and the
// end of the stream goes with them (net/http then frames a short stream with
// Content-Length, a longer one as one chunk followed by the chunked body's end).
func TestStreamBatchIsFlushedOnce(t *testing.T) {
	for _, n := range []int{8, 60} { // about 1.6 KB and 10 KB of events
		t.Run(strconv.Itoa(n), func(t *testing.T) { streamBatch(t, n) })
	}
}

func streamBatch(t *testing.T, n int) {
	var events strings.Builder
	events.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
	for i := 0; i < n; i++ {
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
	for round := 0; round < 2; round++ { // the second on the same kept-alive connection
		fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gavel\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if n == 8 && resp.TransferEncoding != nil {
			// net/http frames a body with Content-Length when the handler returned with all
			// of it unwritten: the stream's end went in the same write as its events.
			t.Errorf("a short stream that arrived whole was sent chunked: its end was written on its own")
		}
		// Each flush of a chunked response is one HTTP chunk: count them on the wire.
		var chunks int
		var got strings.Builder
		if resp.TransferEncoding == nil {
			// The whole stream was in hand when the handler returned: one write.
			if resp.ContentLength < 0 {
				t.Fatalf("neither chunked nor Content-Length")
			}
			data := make([]byte, resp.ContentLength)
			if _, err := io.ReadFull(br, data); err != nil {
				t.Fatal(err)
			}
			got.Write(data)
			chunks = 1
		} else {
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
					br.ReadString('\n') // the chunked body's last CRLF
					break
				}
				data := make([]byte, n+2)
				if _, err := io.ReadFull(br, data); err != nil {
					t.Fatal(err)
				}
				got.Write(data[:n])
				chunks++
			}
		}
		if !strings.HasSuffix(got.String(), "data: [DONE]\n\n") || strings.Count(got.String(), "data: ") != n+3 {
			t.Fatalf("stream relayed as:\n%s", got.String())
		}
		// gavel reads an upstream 4 KiB at a time: what one read brought is one write.
		if want := (events.Len() + 4095) / 4096; chunks > want {
			t.Errorf("the stream (%d bytes) was written in %d flushes, want at most %d; its events all arrived together", events.Len(), chunks, want)
		}
		if br.Buffered() > 0 {
			t.Fatalf("%d bytes after the stream", br.Buffered())
		}
	}
}

// A stream leaves the deadline of its last write for net/http's final flush; the
// connection must not keep it: a later request on the kept-alive connection, answered
// after that deadline passed, still gets its answer.
func TestStreamDeadlineIsNotInherited(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	dir := bundle(t, "e2e-1", twoProviders(nil))
	g := start(t, fmt.Sprintf(`policy: %s
write_stall_timeout: 300ms
providers:
  - {name: a, type: openai, base_url: "%s"}
  - {name: b, type: openai, base_url: "%s"}
`, dir, up.URL(), up.URL()), nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	body := `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gavel\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !strings.HasSuffix(string(got), "data: [DONE]\n\n") {
		t.Fatalf("stream: status %d, err %v:\n%s", resp.StatusCode, err, got)
	}
	time.Sleep(600 * time.Millisecond) // past the stall bound of the stream's last write
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: gavel\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the next request on the connection: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the next request on the connection: status %d, %v", resp.StatusCode, err)
	}
}
