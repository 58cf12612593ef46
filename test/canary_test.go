package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/canary"
	"github.com/gavel-gw/gavel/test/fakeupstream"
	"github.com/gavel-gw/gavel/test/internal/policybundle"
)

// canaryStatus is the canary section of GET /v1/gavel/status.
func canaryStatus(t *testing.T, g *gw) map[string]any {
	t.Helper()
	_, st := g.get(t, "/v1/gavel/status")
	c, ok := st["canary"].(map[string]any)
	if !ok {
		t.Fatalf("status has no canary: %v", st)
	}
	return c
}

// canaryUpstreams returns the providers section for fake upstreams a and b.
func canaryUpstreams(t *testing.T) (string, *fakeupstream.Server, *fakeupstream.Server) {
	t.Helper()
	a, b := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	return fmt.Sprintf("providers:\n  - {name: a, type: openai, base_url: %q, api_key: k, max_retries: 0}\n"+
		"  - {name: b, type: openai, base_url: %q, api_key: k, max_retries: 0}\n", a.URL(), b.URL()), a, b
}

// send asks for model through the OpenAI SDK and returns the decision id, checking the
// route: the candidate never decides where a request goes.
func send(t *testing.T, g *gw, model, wantRoute string) string {
	t.Helper()
	var resp *http.Response
	if _, err := g.client("k").Chat.Completions.New(context.Background(), userParams(model, "hello canary"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if r := resp.Header.Get("X-Gavel-Route"); r != wantRoute {
		t.Errorf("%s answered by %s, want %s (the active bundle's route)", model, r, wantRoute)
	}
	return resp.Header.Get("X-Gavel-Decision-Id")
}

// TestCanaryCountsOneAliasMove runs a candidate that moves alias "solo" from a/m1 to b/m1
// beside the active bundle on every request: exactly the solo requests disagree, by
// their targets, each with a canary event carrying both results; the chat requests
// agree; every request is still answered as the active bundle says.
func TestCanaryCountsOneAliasMove(t *testing.T) {
	provs, _, b := canaryUpstreams(t)
	active, cand := bundle(t, "active-1", soloTo("a")), bundle(t, "cand-1", soloTo("b"))
	g := start(t, fmt.Sprintf("policy: %s\nbundle:\n  canary: {path: %s, sample: 1}\n%s", active, cand, provs), nil)

	if st := canaryStatus(t, g); st["revision"] != "cand-1" || st["sample"] != 1.0 || st["evaluated"] != 0.0 || st["agreement_rate"] != nil {
		t.Fatalf("canary status at start = %v", st)
	}
	var solo, chat []string
	for i := range 12 {
		if i%3 == 0 {
			solo = append(solo, send(t, g, "solo", "a/m1"))
		} else {
			chat = append(chat, send(t, g, "chat", "a/m1"))
		}
	}
	eventually(t, "the canary to evaluate every request", func() bool { return canaryStatus(t, g)["evaluated"] == 12.0 })
	st := canaryStatus(t, g)
	if st["agreed"] != 8.0 || st["disagreed"] != 4.0 || st["agreement_rate"] != 8.0/12 || st["dropped"] != 0.0 ||
		fmt.Sprint(st["disagreements"]) != "map[targets:4]" || st["last_error"] != nil {
		t.Errorf("canary status = %v, want 8 of 12 agreed, 4 targets disagreements", st)
	}
	m := g.text(t, "/metrics")
	for _, kind := range canary.Kinds() {
		want := 0.0
		if kind == "targets" {
			want = 4
		}
		line := fmt.Sprintf("gavel_policy_canary_disagreements_total{kind=%q}", kind)
		if got := metric(m, "gavel_policy_canary_disagreements_total", fmt.Sprintf("kind=%q", kind)); got != want || !strings.Contains(m, line) {
			t.Errorf("%s = %v, want %v (series present from startup)", line, got, want)
		}
	}
	if metric(m, "gavel_policy_canary_evaluations_total") != 12 || metric(m, "gavel_policy_canary_agreements_total") != 8 {
		t.Errorf("canary counters:\n%s", grepLines(m, "gavel_policy_canary_"))
	}
	if n := b.Count("m1"); n != 0 {
		t.Errorf("upstream b got %d requests: the candidate's decisions were executed", n)
	}

	// The decision log: a canary event beside each solo request's own event, none for chat.
	for _, id := range solo {
		resp, ev := g.get(t, "/v1/gavel/decisions/"+id+"-canary")
		if resp.StatusCode != 200 {
			t.Fatalf("no canary event for solo request %s: %d %v", id, resp.StatusCode, ev)
		}
		custom, _ := ev["custom"].(map[string]any)
		if ev["path"] != "gavel/canary" || custom["kind"] != "canary" || custom["decision_id"] != id ||
			fmt.Sprint(custom["disagreements"]) != "[targets]" || custom["active_revision"] != "active-1" ||
			ev["bundles"].(map[string]any)["gavel"].(map[string]any)["revision"] != "cand-1" ||
			!strings.Contains(fmt.Sprint(ev["result"]), "provider:b") || !strings.Contains(fmt.Sprint(custom["active_result"]), "provider:a") {
			t.Errorf("canary event for %s = %v", id, ev)
		}
		if resp, _ := g.get(t, "/v1/gavel/decisions/"+id); resp.StatusCode != 200 {
			t.Errorf("the request's own event %s is gone: %d", id, resp.StatusCode)
		}
	}
	for _, id := range chat {
		if resp, _ := g.get(t, "/v1/gavel/decisions/"+id+"-canary"); resp.StatusCode != 404 {
			t.Errorf("chat request %s has a canary event: %d", id, resp.StatusCode)
		}
	}
}

// TestCanaryThatDoesNotLoad: a candidate path that is not a bundle is reported in the
// status and never touches serving.
func TestCanaryThatDoesNotLoad(t *testing.T) {
	provs, _, _ := canaryUpstreams(t)
	missing := t.TempDir() + "/no-such-bundle.tar.gz"
	g := start(t, fmt.Sprintf("policy: %s\nbundle:\n  canary: {path: %s, sample: 1}\n%s", bundle(t, "active-1", soloTo("a")), missing, provs), nil)
	send(t, g, "solo", "a/m1")
	st := canaryStatus(t, g)
	if st["revision"] != nil || !strings.Contains(fmt.Sprint(st["last_error"]), "no-such-bundle") || st["evaluated"] != 0.0 {
		t.Errorf("canary status = %v, want the load error and no revision", st)
	}
}

// bundleHost serves one bundle tarball with an ETag, as a bundle server does; 404 until
// the first Publish.
type bundleHost struct {
	mu  sync.Mutex
	raw []byte
}

func (h *bundleHost) Publish(raw []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.raw = raw
}

func (h *bundleHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	raw := h.raw
	h.mu.Unlock()
	if raw == nil {
		http.NotFound(w, r)
		return
	}
	etag := fmt.Sprintf(`"%x"`, sha256.Sum256(raw))
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	http.ServeContent(w, r, "candidate.tar.gz", time.Time{}, bytes.NewReader(raw))
}

// TestCanaryHotReload polls the candidate from a bundle server, signed as the main bundle
// would be: no candidate yet is reported and harmless; a published one is evaluated; the
// next replaces it (counts start afresh); a tampered one is refused, reported, and the
// last good candidate keeps running.
func TestCanaryHotReload(t *testing.T) {
	provs, _, _ := canaryUpstreams(t)
	priv, pubFile := policybundle.ESKeys(t)
	host := &bundleHost{}
	srv := httptest.NewServer(host)
	t.Cleanup(srv.Close)
	g := start(t, fmt.Sprintf("policy: %s\nbundle:\n  canary:\n    url: %s/candidate.tar.gz\n    sample: 1\n"+
		"    polling: {min_delay: 50ms, max_delay: 100ms}\n    signing: {public_key_file: %s, algorithm: ES256}\n%s",
		bundle(t, "active-1", soloTo("a")), srv.URL, pubFile, provs), nil)

	eventually(t, "the missing candidate to be reported", func() bool {
		return strings.Contains(fmt.Sprint(canaryStatus(t, g)["last_error"]), "Not Found")
	})
	send(t, g, "solo", "a/m1")
	if st := canaryStatus(t, g); st["revision"] != nil || st["evaluated"] != 0.0 {
		t.Errorf("before any candidate: %v", st)
	}

	host.Publish(policybundle.Signed(t, "cand-1", soloTo("b"), priv, nil))
	eventually(t, "candidate cand-1", func() bool { return canaryStatus(t, g)["revision"] == "cand-1" })
	for range 3 {
		send(t, g, "solo", "a/m1")
	}
	eventually(t, "cand-1 to decide 3 requests", func() bool { return canaryStatus(t, g)["evaluated"] == 3.0 })
	if st := canaryStatus(t, g); fmt.Sprint(st["disagreements"]) != "map[targets:3]" || st["last_error"] != nil {
		t.Errorf("cand-1: %v", st)
	}

	host.Publish(policybundle.Signed(t, "cand-2", soloTo("a"), priv, nil))
	eventually(t, "candidate cand-2", func() bool { return canaryStatus(t, g)["revision"] == "cand-2" })
	for range 2 {
		send(t, g, "solo", "a/m1")
	}
	eventually(t, "cand-2 to decide 2 requests", func() bool { return canaryStatus(t, g)["evaluated"] == 2.0 })
	if st := canaryStatus(t, g); st["agreed"] != 2.0 || st["agreement_rate"] != 1.0 {
		t.Errorf("cand-2: %v", st)
	}

	host.Publish(policybundle.Signed(t, "cand-3", soloTo("b"), priv, func(d map[string]any) { d["tampered"] = true }))
	eventually(t, "the tampered candidate to be refused", func() bool {
		return strings.Contains(fmt.Sprint(canaryStatus(t, g)["last_error"]), "digest mismatch")
	})
	send(t, g, "solo", "a/m1")
	eventually(t, "cand-2 to decide on", func() bool { return canaryStatus(t, g)["evaluated"] == 3.0 })
	if st := canaryStatus(t, g); st["revision"] != "cand-2" || st["agreed"] != 3.0 {
		t.Errorf("after a tampered candidate: %v", st)
	}
	// The serving bundle's metrics speak of the serving bundle only.
	if m := g.text(t, "/metrics"); metric(m, "gavel_bundle_activations_total") != 0 || metric(m, "gavel_bundle_download_errors_total") != 0 {
		t.Errorf("the candidate's refusal was counted as the serving bundle's:\n%s", grepLines(m, "gavel_bundle_"))
	}
}
