package test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// drillData is twoProviders with chaos drills: every request for alias "chat" gets an
// injected 503 at its first attempt, every request for "solo" has its stream cut after
// two chunks.
func drillData() map[string]any {
	data := twoProviders(nil)
	data["faults"] = []any{
		map[string]any{"alias": "chat", "kind": "error", "status": 503},
		map[string]any{"alias": "solo", "kind": "cut_stream", "after_chunks": 2},
	}
	return data
}

func drillConfig(dir, a, b string, enabled bool, extra string) string {
	return fmt.Sprintf(`policy: %s
faults: {enabled: %v}
`+extra+`
providers:
  - {name: a, type: openai, base_url: %q, api_key: k, max_retries: 0}
  - {name: b, type: openai, base_url: %q, api_key: k, max_retries: 0}
`, dir, enabled, a, b)
}

func TestChaosDrillInjectsFaultsAndTagsThem(t *testing.T) {
	a, b := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	a.SetDefault("m1", fakeupstream.Step{Reply: "one two three four five six", Chunks: 6})
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	g := start(t, drillConfig(bundle(t, "drill-1", drillData()), a.URL(), b.URL(), true, "decision_log: {file: "+logFile+"}"), nil)
	c := g.client("k")

	// error: the first attempt (a/m1) fails as an upstream 503 without a being called;
	// the fallback b/m1 answers.
	var resp *http.Response
	r, err := c.Chat.Completions.New(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if r.Choices[0].Message.Content != "Hello from m1" || resp.Header.Get("X-Gavel-Route") != "b/m1" {
		t.Errorf("answer %q from %q, want the fallback b/m1's", r.Choices[0].Message.Content, resp.Header.Get("X-Gavel-Route"))
	}
	if f := resp.Header.Get("X-Gavel-Fault"); f != "error" {
		t.Errorf("X-Gavel-Fault = %q, want error", f)
	}
	if a.Count("m1") != 0 || b.Count("m1") != 1 {
		t.Errorf("a got %d requests, b %d; the injected error should stand in for a's call", a.Count("m1"), b.Count("m1"))
	}

	// The decision log's event for it says which fault the drill injected.
	id := resp.Header.Get("X-Gavel-Decision-Id")
	eventually(t, "the faulted request's decision-log event with custom.fault", func() bool {
		raw, _ := os.ReadFile(logFile)
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.Contains(line, `"decision_id":"`+id+`"`) {
				return strings.Contains(line, `"fault":"error"`)
			}
		}
		return false
	})

	// cut_stream: two chunks reach the client, then the stream ends with an error event.
	s := c.Chat.Completions.NewStreaming(context.Background(), userParams("solo", "hi"), option.WithResponseInto(&resp))
	var text strings.Builder
	n := 0
	for s.Next() {
		n++
		if ch := s.Current(); len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if s.Err() == nil {
		t.Fatalf("cut stream ended cleanly after %d chunks (%q)", n, text.String())
	}
	if n != 2 || text.String() == "one two three four five six" {
		t.Errorf("cut stream relayed %d chunks (%q), want 2 and a partial answer", n, text.String())
	}
	if f := resp.Header.Get("X-Gavel-Fault"); f != "cut_stream" {
		t.Errorf("X-Gavel-Fault = %q, want cut_stream", f)
	}

	m := g.text(t, "/metrics")
	for kind, want := range map[string]float64{"error": 1, "cut_stream": 1, "latency": 0, "timeout": 0} {
		if got := metric(m, "gavel_faults_injected_total", fmt.Sprintf(`kind=%q`, kind)); got != want ||
			!strings.Contains(m, fmt.Sprintf(`gavel_faults_injected_total{kind=%q}`, kind)) {
			t.Errorf("gavel_faults_injected_total{kind=%q} = %v, want %v (series present from startup)\n%s", kind, got, want, grepLines(m, "gavel_faults_injected_total"))
		}
	}
	// An injected failure is a drill, not evidence about a: its breaker and error count stay clean.
	if metric(m, "gavel_circuit_breaker_state", `provider="a"`) != 0 || metric(m, "gavel_upstream_attempts_total", `provider="a"`, `outcome="overloaded"`) != 0 {
		t.Errorf("the injected error counted against a:\n%s", grepLines(m, `provider="a"`))
	}
}

func TestChaosDrillRefusedWhenFaultsDisabled(t *testing.T) {
	a, b := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	_, err := gatewayNew(t, drillConfig(bundle(t, "drill-off", drillData()), a.URL(), b.URL(), false, ""))
	if err == nil || !strings.Contains(err.Error(), "faults are disabled") || !strings.Contains(err.Error(), "faults.enabled") {
		t.Fatalf("a drilling bundle with faults disabled: err = %v, want activation refused naming faults.enabled", err)
	}
}
