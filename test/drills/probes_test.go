package drills

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// Auth and leak probes: requests without a valid key are refused 401 (in every form an
// attacker tries: none, wrong, another scheme, in the query, a key-shaped string of the
// wrong length) and reach no upstream, charge nothing; and when the upstream's error
// echoes the provider's credentials (its api_key and a configured header's value), they
// appear in nothing gavel shows: not the client's answer, /readyz, /v1/models, /metrics,
// nor gavel's log.
func TestDrillAuthAndLeakProbes(t *testing.T) {
	const (
		apiKey  = "sk-drill-apikey-7Hq2LmV9xR4t"
		hdrName = "X-Drill-Secret"
		hdrVal  = "hdr-drill-secret-K3pW8zN5"
	)
	w := newWorld(t)
	y := fmt.Sprintf(`policy: %q
ledger: {store: file, path: %q}
log_level: info
providers:
  - {name: a, type: openai, base_url: "http://%s/v1", api_key: %s, headers: {%s: %s}, max_retries: 0, breaker: {delay: 300ms}}
  - {name: b, type: openai, base_url: "http://%s/v1", api_key: k, max_retries: 0}
`, w.bundleDir, w.ledgerPath, w.pxA.Addr(), apiKey, hdrName, hdrVal, w.pxB.Addr())
	p := w.startGavel(y)
	r := begin(t, "auth and leak probes", p)
	c := httpClient(10 * time.Second)

	// Auth: every way of not holding a key is a 401 that reaches no upstream.
	probes := []func(*http.Request){
		func(*http.Request) {},
		func(q *http.Request) { q.Header.Set("Authorization", "Bearer sk-not-a-gavel-key") },
		func(q *http.Request) { q.Header.Set("Authorization", "Basic "+w.key) },
		func(q *http.Request) { q.Header.Set("Authorization", "Bearer "+w.key[:len(w.key)-1]) },
		func(q *http.Request) { q.Header.Set("Authorization", "Bearer "+w.key+"x") },
		func(q *http.Request) { q.URL.RawQuery = "api_key=" + w.key },
		func(q *http.Request) { q.Header.Set("Authorization", "Bearer "+strings.Repeat("A", 8<<10)) },
	}
	before := w.upA.Count(fakeupstream.AnyModel) + w.upB.Count(fakeupstream.AnyModel)
	n := scale(len(probes)*4, len(probes)*20)
	auth := load(n, 4, 2*time.Second, func(ctx context.Context, i int) outcome {
		q, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
		q.Header.Set("Content-Type", "application/json")
		probes[i%len(probes)](q)
		return send(c, q)
	})
	r.add(auth)
	for i, o := range auth.outcomes {
		if o.class != "401" || !strings.Contains(o.body, `"invalid_api_key"`) {
			t.Errorf("auth probe %d: %s %s; want 401 invalid_api_key", i%len(probes), o.class, o.body)
		}
	}
	if got := w.upA.Count(fakeupstream.AnyModel) + w.upB.Count(fakeupstream.AnyModel) - before; got != 0 {
		t.Errorf("%d unauthenticated requests reached an upstream", got)
	}

	// Leaks: the upstream answers 401 quoting the credentials it was sent.
	w.upA.SetDefault("m1", fakeupstream.Step{Status: 401, Code: "invalid_api_key",
		Message: "Incorrect API key provided: " + apiKey + ". Request headers: Authorization=Bearer " + apiKey + "; " + hdrName + "=" + hdrVal})
	leak := load(scale(12, 60), 4, 2*time.Second, func(ctx context.Context, i int) outcome {
		return chat(ctx, c, p.URL, w.key, "solo", i%2 == 0)
	})
	r.add(leak)
	if leak.ok != 0 {
		t.Errorf("%d requests succeeded against an upstream refusing the credentials", leak.ok)
	}
	seen := map[string]string{}
	for i, o := range leak.outcomes {
		seen[fmt.Sprintf("answer %d", i)] = o.body + fmt.Sprint(o.header)
	}
	for _, path := range []string{"/readyz", "/v1/models", "/metrics"} {
		q, _ := http.NewRequest(http.MethodGet, p.URL+path, nil)
		q.Header.Set("Authorization", "Bearer "+w.key)
		resp, err := c.Do(q)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen[path] = string(b)
	}
	r.done(p, c)
	log, _ := os.ReadFile(p.logPath)
	seen["gavel's log"] = string(log)
	if !strings.Contains(string(log), `"status":401`) && !strings.Contains(string(log), "status=401") {
		t.Errorf("gavel's log has no request lines to check (log_level info)")
	}
	for where, text := range seen {
		for _, secret := range []string{apiKey, hdrVal} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows a configured secret (%s…)", where, secret[:8])
			}
		}
	}
	if d := r.row.SpendAfter - r.row.SpendBefore; d != 0 {
		t.Errorf("refused requests charged %d µUSD", d)
	}
	requireGoroutinesBack(t, r)
}

// send does one request and classifies its end like chat does for a non-streamed one.
func send(c *http.Client, q *http.Request) outcome {
	start := time.Now()
	resp, err := c.Do(q)
	if err != nil {
		return outcome{class: "conn", took: time.Since(start), body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	o := outcome{class: strconv.Itoa(resp.StatusCode), took: time.Since(start), header: resp.Header, body: string(b)}
	if resp.StatusCode/100 == 2 {
		o.class = "ok"
	}
	return o
}
