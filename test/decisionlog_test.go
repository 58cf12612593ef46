package test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// logCollector is a decision-log service speaking OPA's upload protocol.
type logCollector struct {
	mu     sync.Mutex
	events []map[string]any
	bad    []string
}

func (c *logCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path != "/logs" || r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Authorization") != "Bearer log-token" {
		c.bad = append(c.bad, fmt.Sprintf("%s %v", r.URL.Path, r.Header))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err == nil {
		var batch []map[string]any
		raw, _ := io.ReadAll(zr)
		if err = json.Unmarshal(raw, &batch); err == nil {
			c.events = append(c.events, batch...)
		}
	}
	if err != nil {
		c.bad = append(c.bad, err.Error())
		w.WriteHeader(http.StatusBadRequest)
	}
}

// Decisions logged to a file and a log service by a running gateway, masked as
// configured; replaying the file against a candidate bundle that moves one alias names
// exactly the decisions of that alias.
func TestDecisionLogSinksAndReplay(t *testing.T) {
	admin, adminHash, _ := auth.NewKey()
	user, userHash, _ := auth.NewKey()
	keys := map[string]any{
		adminHash: map[string]any{"key_id": "k-admin", "user": "ops", "admin": true},
		userHash:  map[string]any{"key_id": "k-user", "user": "ann-the-user", "team": "search"},
	}
	a, b := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	collector := &logCollector{}
	svc := httptest.NewServer(collector)
	t.Cleanup(svc.Close)
	logFile := filepath.Join(t.TempDir(), "logs", "decisions.jsonl")
	g := start(t, fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: %q, api_key: k}
  - {name: b, type: openai, base_url: %q, api_key: k}
decision_log:
  file: %s
  mask: [/input/caller/user]
  labels: {region: test}
  service: {url: %q, token: log-token, max_delay: 20ms}
`, bundle(t, "dl-1", twoProviders(keys)), a.URL(), b.URL(), logFile, svc.URL), nil)

	c := g.client(user)
	var soloIDs, all []string
	for i, model := range []string{"solo", "chat", "solo", "chat"} {
		var resp *http.Response
		if _, err := c.Chat.Completions.New(context.Background(), userParams(model, fmt.Sprintf("private prompt %d", i)), option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		id := resp.Header.Get("X-Gavel-Decision-Id")
		all = append(all, id)
		if model == "solo" {
			soloIDs = append(soloIDs, id)
		}
	}
	resp, _ := g.post(t, "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"private prompt x"}]}`,
		map[string]string{"Authorization": "Bearer " + user})
	if resp.StatusCode/100 != 4 {
		t.Fatalf("unknown model: status %d", resp.StatusCode)
	}
	all = append(all, resp.Header.Get("X-Gavel-Decision-Id"))

	// The admin lookup shows the same masked event the sinks get.
	deadline := time.Now().Add(3 * time.Second)
	var explained string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/decisions/"+all[4], nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		r, body := do(t, req)
		if r.StatusCode == 200 {
			raw, _ := json.Marshal(body)
			explained = string(raw)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(explained, `"erased":["/input/caller/user"]`) || strings.Contains(explained, "ann-the-user") || strings.Contains(explained, "private prompt") {
		t.Errorf("explanation not masked as configured: %s", explained)
	}
	for !strings.Contains(g.text(t, "/metrics"), `gavel_decision_log_events_total{outcome="ok",sink="file"} 5`) {
		if time.Now().After(deadline) {
			t.Fatalf("file sink events not counted:\n%s", grepLines(g.text(t, "/metrics"), "gavel_decision_log"))
		}
		time.Sleep(10 * time.Millisecond)
	}

	g.stop() // shutdown flushes the sinks
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var fileIDs []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct {
			DecisionID string            `json:"decision_id"`
			Labels     map[string]string `json:"labels"`
			Erased     []string          `json:"erased"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad line %s: %v", sc.Text(), err)
		}
		if ev.Labels["id"] == "" || ev.Labels["version"] == "" || ev.Labels["region"] != "test" || len(ev.Erased) != 1 {
			t.Errorf("event %s: labels %v erased %v", ev.DecisionID, ev.Labels, ev.Erased)
		}
		fileIDs = append(fileIDs, ev.DecisionID)
	}
	if !slices.Equal(fileIDs, all) {
		t.Errorf("file has %v, want %v", fileIDs, all)
	}
	if s := string(raw); strings.Contains(s, "ann-the-user") || strings.Contains(s, "private prompt") {
		t.Error("the file leaks the user or a prompt")
	}
	collector.mu.Lock()
	var svcIDs []string
	for _, ev := range collector.events {
		svcIDs = append(svcIDs, fmt.Sprint(ev["decision_id"]))
	}
	bad := collector.bad
	collector.mu.Unlock()
	if !slices.Equal(svcIDs, all) || len(bad) > 0 {
		t.Errorf("service got %v (bad uploads %v), want %v", svcIDs, bad, all)
	}

	// The candidate sends "solo" to b instead of a.
	data := twoProviders(keys)
	data["aliases"].(map[string]any)["solo"] = map[string]any{"strategy": "ordered", "candidates": []string{"b/m1"}}
	cb, err := policy.LoadPath(bundle(t, "dl-2", data))
	if err != nil {
		t.Fatal(err)
	}
	cand, err := policy.Prepare(context.Background(), cb, "candidate")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(logFile)
	defer f.Close()
	var changed []string
	sum, err := policy.Replay(context.Background(), cand, f, func(ch policy.Change) {
		changed = append(changed, ch.DecisionID)
		if ch.Old.String() != "allow a/m1" || ch.New.String() != "allow b/m1" {
			t.Errorf("%s: %s -> %s", ch.DecisionID, ch.Old, ch.New)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, soloIDs) || sum.Replayed != 5 || sum.Changed != 2 || sum.Unchanged != 3 {
		t.Errorf("replay changed %v %+v, want exactly %v", changed, sum, soloIDs)
	}
}
