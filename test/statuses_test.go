package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// statusGateway routes alias "chat" to a/m1 then b/m1 and "solo" to a/m1 alone, with each
// provider's resilience settings given inline (aOpts, bOpts: ", timeout: 200ms"; fastRetry
// unless they set the backoff), gavel's log in logs, and a caller key and an admin key
// (for explanations).
func statusGateway(t *testing.T, aURL, aOpts, bURL, bOpts string) (g *gw, logs *logBuffer, user, admin string) {
	t.Helper()
	user, userHash, _ := auth.NewKey()
	admin, adminHash, _ := auth.NewKey()
	dir := bundle(t, "statuses-1", twoProviders(map[string]any{
		userHash:  map[string]any{"key_id": "k-user", "team": "search"},
		adminHash: map[string]any{"key_id": "k-admin", "team": "platform", "admin": true},
	}))
	yaml := fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: "%s", api_key: k%s}
  - {name: b, type: openai, base_url: "%s", api_key: k%s}
`, dir, aURL, withBackoff(aOpts), bURL, withBackoff(bOpts))
	logs = &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return startLogged(t, yaml, nil, true, log), logs, user, admin
}

// withBackoff adds millisecond backoffs to provider options that set none, so retries do
// not slow the tests down.
func withBackoff(opts string) string {
	if strings.Contains(opts, "backoff:") {
		return opts
	}
	return ", backoff: 1ms, max_backoff: 2ms" + opts
}

func twoUpstreams(t *testing.T) (a, b *fakeupstream.Server) {
	t.Helper()
	a, b = fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	return a, b
}

// metricValue returns the value of the sample whose line starts with series (name and
// labels in Prometheus's sorted order), or -1 when /metrics has no such sample.
func metricValue(t *testing.T, g *gw, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(g.text(t, "/metrics"), "\n") {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("sample %q: %v", l, err)
			}
			return v
		}
	}
	return -1
}

// apiError sends a chat request for alias (streamed or not) that must fail, and returns
// the error the SDK saw.
func apiError(t *testing.T, g *gw, key, alias string, stream bool) *openai.Error {
	t.Helper()
	c := g.client(key)
	var err error
	if stream {
		s := c.Chat.Completions.NewStreaming(context.Background(), userParams(alias, "hi"))
		for s.Next() {
		}
		err = s.Err()
	} else {
		_, err = c.Chat.Completions.New(context.Background(), userParams(alias, "hi"))
	}
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want an API error", err)
	}
	return apiErr
}

// targetErrorRate reads input.providers.<provider>.models.<model>.error_rate_bp from the
// explanation of decision id: what the policy saw when it decided.
func targetErrorRate(t *testing.T, g *gw, admin, id, provider, model string) int {
	t.Helper()
	var ev struct {
		Input struct {
			Providers map[string]struct {
				Models map[string]struct {
					ErrorRateBP int `json:"error_rate_bp"`
				} `json:"models"`
			} `json:"providers"`
		} `json:"input"`
	}
	raw := explanation(t, g, admin, id)
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatalf("explanation %s: %v", raw, err)
	}
	return ev.Input.Providers[provider].Models[model].ErrorRateBP
}

// An attempt that outlasts the provider's timeout is the upstream's failure: the client
// gets 504 upstream_timeout, the attempt is counted as a timeout, and the policy sees it
// in the target's error rate.
func TestAttemptTimeoutIs504AndCountsAgainstTheTarget(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			a, b := twoUpstreams(t)
			g, _, user, admin := statusGateway(t, a.URL(), ", timeout: 200ms, max_retries: 0", b.URL(), "")
			a.Script("m1", fakeupstream.Step{Latency: 5 * time.Second})

			apiErr := apiError(t, g, user, "solo", stream)
			if apiErr.StatusCode != http.StatusGatewayTimeout || apiErr.Code != "upstream_timeout" {
				t.Fatalf("got %d %q (%s), want 504 upstream_timeout", apiErr.StatusCode, apiErr.Code, apiErr.Message)
			}
			const series = `gavel_upstream_attempts_total{model="m1",outcome="%s",provider="a"}`
			if v := metricValue(t, g, fmt.Sprintf(series, "timeout")); v != 1 {
				t.Errorf("timeout attempts = %v, want 1\n%s", v, grepLines(g.text(t, "/metrics"), "upstream_attempts"))
			}
			if v := metricValue(t, g, fmt.Sprintf(series, "canceled")); v != -1 {
				t.Errorf("the timeout was also counted as canceled (%v)", v)
			}

			// The signals reach the policy within the planner's refresh; each decision's
			// explanation shows the input.providers it was made with.
			deadline := time.Now().Add(5 * time.Second)
			for {
				var resp *http.Response
				if _, err := g.client(user).Chat.Completions.New(context.Background(), userParams("solo", "hi"), option.WithResponseInto(&resp)); err != nil {
					t.Fatal(err)
				}
				if targetErrorRate(t, g, admin, resp.Header.Get("X-Gavel-Decision-Id"), "a", "m1") > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the policy never saw an error rate for a/m1 after its attempt timed out")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// A client that goes away is logged and counted as 499, its attempt as canceled, and it
// is not held against the upstream: a breaker that opens on the first failure stays
// closed and the policy sees no error rate.
func TestClientGoneIs499AndNotAnUpstreamFailure(t *testing.T) {
	a, b := twoUpstreams(t)
	g, logs, user, admin := statusGateway(t, a.URL(), ", max_retries: 0, breaker: {failure_threshold: 1, delay: 1h}", b.URL(), "")
	a.Script("m1", fakeupstream.Step{Latency: 10 * time.Second})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := g.client(user).Chat.Completions.New(ctx, userParams("solo", "hi"))
		done <- err
	}()
	eventually(t, "the upstream to receive the request", func() bool { return a.InFlight() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client err = %v", err)
	}

	var line map[string]any
	eventually(t, "the request's log line", func() bool {
		recs := logs.records("request")
		if len(recs) == 0 {
			return false
		}
		line = recs[0]
		return true
	})
	if line["status"] != float64(499) || line["error_code"] != "client_closed_request" {
		t.Errorf("logged status %v code %v, want 499 client_closed_request", line["status"], line["error_code"])
	}
	if v := metricValue(t, g, `gavel_requests_total{arm="",endpoint="chat",route="none",status="499"}`); v != 1 {
		t.Errorf("requests with status 499 = %v, want 1\n%s", v, grepLines(g.text(t, "/metrics"), "gavel_requests_total"))
	}
	if v := metricValue(t, g, `gavel_upstream_attempts_total{model="m1",outcome="canceled",provider="a"}`); v != 1 {
		t.Errorf("canceled attempts = %v, want 1", v)
	}
	if v := metricValue(t, g, `gavel_circuit_breaker_state{model="m1",provider="a"}`); v != 0 {
		t.Errorf("breaker state = %v: a client going away opened it", v)
	}

	// The next request goes through (the breaker is closed) and the policy sees no errors.
	var resp *http.Response
	if _, err := g.client(user).Chat.Completions.New(context.Background(), userParams("solo", "hi"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if rate := targetErrorRate(t, g, admin, resp.Header.Get("X-Gavel-Decision-Id"), "a", "m1"); rate != 0 {
		t.Errorf("error_rate_bp = %d after a client went away, want 0", rate)
	}
}

// An upstream 429 with nowhere else to go reaches the client as 429 with the upstream's
// Retry-After, in OpenAI's shape.
func TestUpstream429PassedOnWithRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		step fakeupstream.Step
		want string
	}{
		{"Retry-After seconds", fakeupstream.Step{Status: 429, RetryAfter: "7", Message: "slow down"}, "7"},
		{"retry-after-ms rounds up", fakeupstream.Step{Status: 429, RetryAfterMs: "2500", Message: "slow down"}, "3"},
		{"none given, none invented", fakeupstream.Step{Status: 429, Message: "slow down"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := twoUpstreams(t)
			g, _, user, _ := statusGateway(t, a.URL(), ", max_retries: 0", b.URL(), "")
			a.SetDefault("m1", tc.step)
			resp, body := g.post(t, "/v1/chat/completions", `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`,
				map[string]string{"Authorization": "Bearer " + user})
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("status = %d %v, want 429", resp.StatusCode, body)
			}
			e, _ := body["error"].(map[string]any)
			if e["code"] != "rate_limit_exceeded" || e["type"] != "rate_limit_error" || !strings.Contains(fmt.Sprint(e["message"]), "slow down") {
				t.Errorf("error = %v", e)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.want {
				t.Errorf("Retry-After = %q, want %q", got, tc.want)
			}
			if a.Count("m1") != 1 {
				t.Errorf("a called %d times", a.Count("m1"))
			}
		})
	}
}

// A 200 whose body does not decode was most likely billed: it is not retried at the same
// target, it fails over to the next one.
func TestMalformed200NotRetriedAtTheSameTarget(t *testing.T) {
	var calls atomic.Int32
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":`))
	}))
	t.Cleanup(broken.Close)
	b := fakeupstream.New()
	t.Cleanup(b.Close)
	g, _, user, _ := statusGateway(t, broken.URL+"/v1", ", max_retries: 2", b.URL(), ", max_retries: 2")

	var resp *http.Response
	if _, err := g.client(user).Chat.Completions.New(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("X-Gavel-Route"); got != "b/m1" {
		t.Errorf("route = %s, want the fallback b/m1", got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the malformed target was called %d times, want 1", n)
	}

	// With nowhere to fail over to: one call, and a 502 saying why.
	calls.Store(0)
	if e := apiError(t, g, user, "solo", false); e.StatusCode != http.StatusBadGateway {
		t.Errorf("solo: %d %s, want 502", e.StatusCode, e.Message)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("solo: the malformed target was called %d times, want 1", n)
	}
	if v := metricValue(t, g, `gavel_upstream_attempts_total{model="m1",outcome="protocol",provider="a"}`); v != 2 {
		t.Errorf("protocol attempts = %v, want 2", v)
	}
}

// An attempt whose failure opens its target's breaker is not retried: the walk moves on
// at once instead of waiting out backoffs before retries the breaker would reject.
func TestBreakerOpenedMidWalkIsNotRetried(t *testing.T) {
	a, b := twoUpstreams(t)
	opts := ", max_retries: 2, backoff: 2s, max_backoff: 2s, breaker: {failure_threshold: 1, delay: 1h}"
	g, _, user, _ := statusGateway(t, a.URL(), opts, b.URL(), opts)
	a.SetDefault("m1", fakeupstream.Step{Status: 500, Message: "a is down"})
	b.SetDefault("m1", fakeupstream.Step{Status: 500, Message: "b is down"})

	start := time.Now()
	e := apiError(t, g, user, "chat", false)
	elapsed := time.Since(start)
	if e.StatusCode != http.StatusBadGateway || !strings.Contains(e.Message, "b is down") {
		t.Errorf("got %d %q, want 502 with b's reason", e.StatusCode, e.Message)
	}
	// Two backoffs of 2 s (±20 % jitter) would take at least 3.2 s.
	if elapsed > 1500*time.Millisecond {
		t.Errorf("answered after %v: backoffs were waited before retries an open breaker rejects", elapsed)
	}
	if a.Count("m1") != 1 || b.Count("m1") != 1 {
		t.Errorf("calls a=%d b=%d, want 1 each", a.Count("m1"), b.Count("m1"))
	}
}

// A stream that fails after its first chunk is one stream error, whoever notices it.
func TestStreamFailureCountedOnce(t *testing.T) {
	for name, fault := range map[string]fakeupstream.Fault{"connection dropped": fakeupstream.Abort, "error event": fakeupstream.MidStreamError} {
		t.Run(name, func(t *testing.T) {
			a, b := twoUpstreams(t)
			g, _, user, _ := statusGateway(t, a.URL(), "", b.URL(), "")
			a.SetDefault("m1", fakeupstream.Step{Reply: "a b c d e f", Chunks: 6, Fault: fault, FaultAfter: 3})
			s := g.client(user).Chat.Completions.NewStreaming(context.Background(), userParams("solo", "hi"))
			for s.Next() {
			}
			if s.Err() == nil {
				t.Fatal("stream ended without an error")
			}
			const series = `gavel_stream_errors_total{model="m1",provider="a"}`
			eventually(t, "the stream error to be counted", func() bool { return metricValue(t, g, series) >= 1 })
			if v := metricValue(t, g, series); v != 1 {
				t.Errorf("%s = %v, want 1", series, v)
			}
		})
	}
}
