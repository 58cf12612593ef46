package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/tokens"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// bigAnswers starts one fake upstream and a gateway whose provider "a" bounds an answer
// to maxResponse bytes (the default when 0), under the default policy: a client asks for
// "a/m1".
func bigAnswers(t *testing.T, maxResponse int) (*gw, *fakeupstream.Server) {
	t.Helper()
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	bound := ""
	if maxResponse > 0 {
		bound = fmt.Sprintf(", max_response_bytes: %d", maxResponse)
	}
	g := start(t, fmt.Sprintf(`providers:
  - {name: a, type: openai, base_url: "%s", api_key: k, max_retries: 0%s}
`, up.URL(), bound), nil)
	return g, up
}

// lorem is n repetitions of " lorem": English-like text whose tokens are known without
// counting megabytes of it in the test.
func lorem(n int) string { return strings.Repeat(" lorem", n) }

// outputTokens is gavel_tokens_total for provider a's output.
func (g *gw) outputTokens(t *testing.T) float64 {
	return metric(g.text(t, "/metrics"), "gavel_tokens_total", `direction="output"`, `provider="a"`)
}

// waitLong is eventually with room for the race detector, under which the tokenizer
// counts a megabyte in seconds.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A non-streamed answer larger than the provider's max_response_bytes is not read
// whole: the client gets a 502 that names the bound, and one under it gets through.
func TestAnswerOverMaxResponseBytesIsAClearError(t *testing.T) {
	const bound = 1 << 20
	g, up := bigAnswers(t, bound)
	tests := []struct {
		name  string
		reply string
		err   string
	}{
		{"under the bound", lorem(bound / 2 / 6), ""},
		{"over the bound", lorem(4 * bound / 6), "response body exceeds max_response_bytes (1 MiB)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up.SetDefault("m1", fakeupstream.Step{Reply: tc.reply})
			resp, body := g.post(t, "/v1/chat/completions", `{"model":"a/m1","messages":[{"role":"user","content":"long"}]}`,
				map[string]string{"Authorization": "Bearer k"})
			if tc.err == "" {
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %v", resp.StatusCode, body)
				}
				return
			}
			e, _ := body["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if resp.StatusCode != 502 || !strings.Contains(msg, tc.err) {
				t.Fatalf("status %d, message %q; want 502 naming %q", resp.StatusCode, msg, tc.err)
			}
		})
	}
}

// A stream that goes past max_response_bytes ends with an SSE error event that names
// the bound, and the caller is charged for what was relayed before it.
func TestStreamOverMaxResponseBytesEndsWithAnErrorEvent(t *testing.T) {
	bound := 1 << 20
	if raceEnabled {
		bound = 256 << 10
	}
	g, up := bigAnswers(t, bound)
	up.SetDefault("m1", fakeupstream.Step{Reply: lorem(4 * bound / 6), Chunks: 256, IgnoreIncludeUsage: true})
	s := g.client("k").Chat.Completions.NewStreaming(context.Background(), userParams("a/m1", "long"))
	var relayed strings.Builder
	for s.Next() {
		for _, ch := range s.Current().Choices {
			relayed.WriteString(ch.Delta.Content)
		}
	}
	err := s.Err()
	if err == nil || !strings.Contains(err.Error(), "stream exceeds max_response_bytes") {
		t.Fatalf("stream error = %v, want one naming max_response_bytes", err)
	}
	if relayed.Len() == 0 || relayed.Len() > bound {
		t.Fatalf("relayed %d bytes before the error, want some and at most %d", relayed.Len(), bound)
	}
	var c tokens.Counter
	want, err := c.Count("m1", relayed.String())
	if err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the relayed tokens to be counted", func() bool { return g.outputTokens(t) == float64(want) })
}

// A stream of several megabytes without usage is counted token by token as it is
// relayed: the charge is the whole text's count (exact for text with word boundaries).
func TestLongStreamWithoutUsageIsCounted(t *testing.T) {
	size := 4 << 20
	if raceEnabled {
		size = 256 << 10
	}
	g, up := bigAnswers(t, 0)
	reply := lorem(size / 6)
	up.SetDefault("m1", fakeupstream.Step{Reply: reply, Chunks: 1024, IgnoreIncludeUsage: true})
	p := userParams("a/m1", "long")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	// The relay goes at the tokenizer's pace when the upstream sends faster than it counts
	// (this one sends as fast as loopback goes), slower still under the race detector.
	s := g.client("k", option.WithRequestTimeout(2*time.Minute)).Chat.Completions.NewStreaming(context.Background(), p)
	n := 0
	for s.Next() {
		for _, ch := range s.Current().Choices {
			n += len(ch.Delta.Content)
		}
	}
	if err := s.Err(); err != nil || n != len(reply) {
		t.Fatalf("relayed %d of %d bytes: %v", n, len(reply), err)
	}
	var c tokens.Counter
	unit, err := c.Count("m1", " lorem")
	if err != nil {
		t.Fatal(err)
	}
	want := float64(unit * (size / 6))
	waitLong(t, "the stream's tokens to be counted", func() bool { return g.outputTokens(t) == want })
}
