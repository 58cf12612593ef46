package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// stallingClient sends a streamed chat request on a raw connection with a small receive
// buffer and reads nothing, so gavel's writes block once the kernel queues are full.
func stallingClient(t *testing.T, g *gw, model string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"model":%q,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, model)
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: gavel\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return conn
}

// TestStalledClientEndsAtTheRequestDeadline: a client that stops reading a stream does
// not keep its handler past the request's deadline, is recorded as a client timeout, and
// counts nothing against the upstream that was streaming to it.
func TestStalledClientEndsAtTheRequestDeadline(t *testing.T) {
	stalledClient(t, "request_timeout: 3s", 3*time.Second)
}

// TestStalledClientEndsAtTheWriteStallBound: with a long request_timeout, a client that
// stops reading ends its request once a write has made no progress for
// write_stall_timeout, the same way (408 client_timeout, nothing against the upstream).
func TestStalledClientEndsAtTheWriteStallBound(t *testing.T) {
	stalledClient(t, "request_timeout: 10m\nwrite_stall_timeout: 1s", time.Second)
}

// stalledClient runs a stalling client against a gateway configured with cfg and checks
// its request ends within bound (plus the time the kernel queues take to fill).
func stalledClient(t *testing.T, cfg string, timeout time.Duration) {
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	// 16 MB of events: far more than the kernel queues for a client that reads nothing
	// (its socket buffers, gavel's send buffer of up to 4 MB). Rendered once here, so the
	// stream starts at once when gavel asks for it (streamed, with usage).
	up.SetDefault("m1", fakeupstream.Step{Reply: strings.Repeat("stall ", 2700000), Chunks: 1000})
	warm, err := http.Post(up.URL()+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"m1","stream":true,"stream_options":{"include_usage":true},"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, warm.Body)
	warm.Body.Close()
	dir := bundle(t, "stall-1", twoProviders(nil))
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	g := startLogged(t, fmt.Sprintf(`policy: %s
%s
providers:
  - {name: a, type: openai, base_url: %q, max_retries: 0, breaker: {failure_threshold: 1, delay: 1h}}
`, dir, cfg, up.URL()), nil, true, log)

	conn := stallingClient(t, g, "solo")
	sent := time.Now()
	// The request must end on its own, while the client still reads nothing. The slack is
	// the time to fill the kernel queues with megabytes of events, which under the race
	// detector on a loaded 2-core machine took over 5 s; the status (408 client_timeout,
	// not the 499 of a client that left) says which bound ended it.
	var rec map[string]any
	deadline := sent.Add(timeout + 15*time.Second)
	for rec == nil && time.Now().Before(deadline) {
		if rs := logs.records("request"); len(rs) > 0 {
			rec = rs[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rec == nil {
		t.Errorf("a stalled client held its request for %s (%s)", time.Since(sent).Round(time.Millisecond), cfg)
	} else if rec["status"] != float64(http.StatusRequestTimeout) || rec["error_code"] != "client_timeout" {
		t.Errorf("stalled client recorded as status %v, error_code %v after %v ms", rec["status"], rec["error_code"], rec["duration_ms"])
	}
	// The client leaves; nothing it did may count against upstream a.
	conn.Close()
	eventually(t, "the stalled request's log line", func() bool { return len(logs.records("request")) > 0 })

	up.Script("m1", fakeupstream.Step{}) // a short answer for the next request
	resp, body := g.post(t, "/v1/chat/completions", `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after a stalled client, upstream a answers %d %v: its breaker counted the client's stall", resp.StatusCode, body)
	}
	metrics := g.text(t, "/metrics")
	if !strings.Contains(metrics, `gavel_circuit_breaker_state{model="m1",provider="a"} 0`) {
		t.Errorf("breaker of a is not closed:\n%s", grepLines(metrics, "circuit_breaker_state"))
	}
	if strings.Contains(metrics, `gavel_stream_errors_total{model="m1",provider="a"}`) {
		t.Errorf("the client's stall was counted as an upstream stream error:\n%s", grepLines(metrics, "stream_errors"))
	}
	if s := grepLines(metrics, `gavel_requests_total{`); !strings.Contains(s, `status="408"`) {
		t.Errorf("requests metric lacks the client timeout:\n%s", s)
	}
}

// TestClientLeavingMidStreamIsRecorded499: a client that closes its connection mid-stream
// is recorded as client_closed_request, not as a 200.
func TestClientLeavingMidStreamIsRecorded499(t *testing.T) {
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	up.SetDefault("m1", fakeupstream.Step{Reply: strings.Repeat("w ", 200), Chunks: 200, ChunkInterval: 20 * time.Millisecond})
	dir := bundle(t, "leave-1", twoProviders(nil))
	logs := &logBuffer{}
	g := startLogged(t, fmt.Sprintf("policy: %s\nproviders:\n  - {name: a, type: openai, base_url: %q, max_retries: 0}\n", dir, up.URL()),
		nil, true, slog.New(slog.NewJSONHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for i := 0; i < 3 && sc.Scan(); i++ {
	}
	cancel()
	resp.Body.Close()
	eventually(t, "the request's log line", func() bool { return len(logs.records("request")) > 0 })
	rec := logs.records("request")[0]
	if rec["status"] != float64(499) || rec["error_code"] != "client_closed_request" {
		t.Fatalf("client that left recorded as status %v, error_code %v", rec["status"], rec["error_code"])
	}
}
