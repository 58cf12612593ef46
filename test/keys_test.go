package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/gavel-gw/gavel/engine/app"
)

// The keys API through the real server: keys created, changed, rotated and revoked at run
// time take effect without a restart, on this replica at once and on the others within a
// second; no secret ever appears in a log, a listing or the audit log.

// keysCall sends a keys API request with key and returns the status and the raw body.
func (g *gw) keysCall(t *testing.T, method, path, key, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, g.URL+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

type createdKey struct {
	ID         string     `json:"id"`
	Secret     string     `json:"secret"`
	Status     string     `json:"status"`
	Team       string     `json:"team"`
	Models     []string   `json:"models"`
	GraceUntil *time.Time `json:"grace_until"`
}

func (g *gw) createKey(t *testing.T, admin, body string) createdKey {
	t.Helper()
	st, raw := g.keysCall(t, http.MethodPost, "/v1/gavel/keys", admin, body)
	if st != http.StatusCreated {
		t.Fatalf("create key: %d %s", st, raw)
	}
	var k createdKey
	if err := json.Unmarshal(raw, &k); err != nil || k.ID == "" || !strings.HasPrefix(k.Secret, "gvl-") {
		t.Fatalf("create key answer %s: %v", raw, err)
	}
	return k
}

// chatStatus sends one chat request with key through the OpenAI SDK: 200, or the API
// error's status and message.
func (g *gw) chatStatus(t *testing.T, key, model string) (int, string) {
	t.Helper()
	p := userParams(model, "hi")
	p.MaxTokens = openai.Int(10)
	_, err := g.client(key).Chat.Completions.New(context.Background(), p)
	if err == nil {
		return 200, ""
	}
	e := sdkError(t, err)
	return e.StatusCode, e.Message
}

// within polls f until it holds or d passes, and says how long it took.
func within(d time.Duration, f func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if f() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestManagedKeysLifecycle(t *testing.T) {
	yaml, _, admin, _ := budgetSetup(t, 1_000_000, 0, "")
	var logs logBuffer
	g := startLogged(t, yaml(), nil, true, slog.New(slog.NewJSONHandler(&logs, nil)))
	var answers bytes.Buffer // every answer but the two that carry a secret
	call := func(method, path, key, body string) (int, []byte) {
		st, raw := g.keysCall(t, method, path, key, body)
		answers.Write(raw)
		return st, raw
	}

	// Created with the admin key, used through the OpenAI SDK; its team reaches the policy:
	// the bundle's team budget is charged for team search.
	k := g.createKey(t, admin, `{"name":"ana laptop","user":"ana","team":"search","project":"web","models":["solo"],"labels":{"env":"dev"}}`)
	if st, msg := g.chatStatus(t, k.Secret, "solo"); st != 200 {
		t.Fatalf("new key: %d %s", st, msg)
	}
	if spendOf(t, g, admin) == 0 {
		t.Error("the key's team budget (team-daily, team search) was not charged: its metadata did not reach the policy")
	}
	// Its models list is honoured by the default library.
	if st, msg := g.chatStatus(t, k.Secret, "a/m1"); st != 403 || !strings.Contains(msg, "may not use the model") {
		t.Errorf("model outside the key's list: %d %s", st, msg)
	}
	if st, raw := call(http.MethodPatch, "/v1/gavel/keys/"+k.ID, admin, `{"models":["solo","a/m1"],"rpm":2}`); st != 200 || !strings.Contains(string(raw), `"rpm":2`) {
		t.Fatalf("update: %d %s", st, raw)
	}
	if st, msg := g.chatStatus(t, k.Secret, "a/m1"); st != 200 {
		t.Errorf("after the update allowed a/m1: %d %s", st, msg)
	}
	// rpm 2: the second request above was the first of the minute under the new limit.
	g.chatStatus(t, k.Secret, "solo")
	if st, _ := g.chatStatus(t, k.Secret, "solo"); st != 429 {
		t.Errorf("third request with rpm 2: %d, want 429", st)
	}
	if st, raw := call(http.MethodPatch, "/v1/gavel/keys/"+k.ID, admin, `{"rpm":0}`); st != 200 {
		t.Fatalf("update: %d %s", st, raw)
	}

	// Strict bodies, clear errors.
	for _, bad := range []struct{ body, param string }{
		{`{"tema":"x"}`, "tema"},
		{`{"rpm":"ten"}`, "rpm"},
		{`{"expires_at":"tomorrow"}`, "expires_at"},
		{`{"expires_at":"2001-01-01T00:00:00Z"}`, "expires_at"},
		{`{"role":"root"}`, "role"},
		{`{"budget_musd":5}`, "budget_period"},
		{`{"rpm":-1}`, "rpm"},
		{`{} {}`, ""},
	} {
		st, raw := call(http.MethodPatch, "/v1/gavel/keys/"+k.ID, admin, bad.body)
		var e struct{ Error struct{ Param *string } }
		json.Unmarshal(raw, &e)
		if st != 400 || bad.param != "" && (e.Error.Param == nil || *e.Error.Param != bad.param) {
			t.Errorf("PATCH %s: %d %s, want 400 naming %q", bad.body, st, raw, bad.param)
		}
	}
	if st, raw := call(http.MethodGet, "/v1/gavel/keys/key_nope", admin, ""); st != 404 || !strings.Contains(string(raw), "key_not_found") {
		t.Errorf("unknown id: %d %s", st, raw)
	}

	// Roles: a viewer reads, cannot write; a key without a role reads nothing.
	viewer := g.createKey(t, admin, `{"name":"auditor","role":"viewer"}`)
	if st, raw := call(http.MethodGet, "/v1/gavel/keys", viewer.Secret, ""); st != 200 || !strings.Contains(string(raw), k.ID) {
		t.Errorf("viewer list: %d %s", st, raw)
	}
	for _, w := range [][3]string{{http.MethodPost, "/v1/gavel/keys", `{}`}, {http.MethodPatch, "/v1/gavel/keys/" + k.ID, `{"team":"x"}`},
		{http.MethodDelete, "/v1/gavel/keys/" + k.ID, ""}, {http.MethodPost, "/v1/gavel/keys/" + k.ID + "/rotate", ""}} {
		if st, raw := call(w[0], w[1], viewer.Secret, w[2]); st != 403 || !strings.Contains(string(raw), "viewer role") {
			t.Errorf("viewer %s %s: %d %s, want 403", w[0], w[1], st, raw)
		}
	}
	if st, _ := call(http.MethodGet, "/v1/gavel/keys", k.Secret, ""); st != 403 {
		t.Errorf("a key without a role listed the keys: %d", st)
	}

	// Rotation: the new secret works at once, the old one for the grace period, then 401.
	st, raw := g.keysCall(t, http.MethodPost, "/v1/gavel/keys/"+k.ID+"/rotate", admin, `{"grace_s":2}`)
	var rot createdKey
	if json.Unmarshal(raw, &rot); st != 200 || rot.Secret == "" || rot.Secret == k.Secret || rot.GraceUntil == nil {
		t.Fatalf("rotate: %d %s", st, raw)
	}
	if st, msg := g.chatStatus(t, rot.Secret, "solo"); st != 200 {
		t.Errorf("rotated key's new secret: %d %s", st, msg)
	}
	if st, msg := g.chatStatus(t, k.Secret, "solo"); st != 200 {
		t.Errorf("old secret within the grace period: %d %s", st, msg)
	}
	time.Sleep(time.Until(*rot.GraceUntil) + 50*time.Millisecond)
	if st, msg := g.chatStatus(t, k.Secret, "solo"); st != 401 || !strings.Contains(msg, "rotated") {
		t.Errorf("old secret after the grace period: %d %s, want 401 saying it was rotated", st, msg)
	}
	if st, msg := g.chatStatus(t, rot.Secret, "solo"); st != 200 {
		t.Errorf("new secret after the grace period: %d %s", st, msg)
	}

	// Revocation: 401 at once, in OpenAI's shape and, on /v1/messages, Anthropic's.
	if st, raw := call(http.MethodDelete, "/v1/gavel/keys/"+k.ID, admin, ""); st != 200 || !strings.Contains(string(raw), `"status":"revoked"`) {
		t.Fatalf("revoke: %d %s", st, raw)
	}
	if st, msg := g.chatStatus(t, rot.Secret, "solo"); st != 401 || !strings.Contains(msg, "revoked") {
		t.Errorf("revoked key: %d %s", st, msg)
	}
	r, body := g.post(t, "/v1/messages", `{"model":"solo","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"x-api-key": rot.Secret, "anthropic-version": "2023-06-01"})
	if e, _ := body["error"].(map[string]any); r.StatusCode != 401 || body["type"] != "error" || e["type"] != "authentication_error" {
		t.Errorf("revoked key on /v1/messages: %d %v", r.StatusCode, body)
	}
	if st, _ := call(http.MethodPatch, "/v1/gavel/keys/"+k.ID, admin, `{"team":"x"}`); st != 409 {
		t.Errorf("update of a revoked key: %d, want 409", st)
	}

	// Expiry is enforced on the request path, not by the poll.
	exp := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	short := g.createKey(t, admin, `{"name":"short","team":"search","expires_at":"`+exp+`"}`)
	if st, msg := g.chatStatus(t, short.Secret, "solo"); st != 200 {
		t.Errorf("key before its expiry: %d %s", st, msg)
	}
	time.Sleep(1600 * time.Millisecond)
	if st, msg := g.chatStatus(t, short.Secret, "solo"); st != 401 || !strings.Contains(msg, "expired") {
		t.Errorf("key after its expiry: %d %s", st, msg)
	}

	// The audit log: who did what to which key, newest first; read by the viewer.
	st, raw = call(http.MethodGet, "/v1/gavel/audit?limit=50", viewer.Secret, "")
	var audit struct {
		Data []struct{ Actor, Action, Target string }
	}
	if json.Unmarshal(raw, &audit); st != 200 || len(audit.Data) < 6 {
		t.Fatalf("audit: %d %s", st, raw)
	}
	if a := audit.Data[0]; a.Action != "key.create" || a.Target != short.ID || a.Actor != "k-admin" {
		t.Errorf("newest audit entry = %+v", a)
	}
	var actions []string
	for _, a := range audit.Data {
		if a.Target == k.ID {
			actions = append(actions, a.Action)
		}
	}
	if got := strings.Join(actions, ","); got != "key.revoke,key.rotate,key.update,key.update,key.create" {
		t.Errorf("audit of %s: %s", k.ID, got)
	}
	if st, _ := call(http.MethodGet, "/v1/gavel/audit?limit=0", admin, ""); st != 400 {
		t.Errorf("limit=0: %d", st)
	}
	if !strings.Contains(logs.String(), `"msg":"admin action"`) {
		t.Error("no admin action in the log")
	}

	// No secret anywhere but in the create and rotate answers; no hash in any answer.
	call(http.MethodGet, "/v1/gavel/keys", admin, "")
	call(http.MethodGet, "/v1/gavel/keys/"+k.ID, admin, "")
	for _, s := range []string{k.Secret, rot.Secret, viewer.Secret, short.Secret} {
		if strings.Contains(logs.String(), s) || strings.Contains(answers.String(), s) {
			t.Errorf("secret %s… leaked into the log or an answer", s[:8])
		}
	}
	if strings.Contains(answers.String(), "sha256") {
		t.Error("an answer shows a key's hash")
	}
}

func TestManagedKeysSurviveRestart(t *testing.T) {
	yaml, _, admin, _ := budgetSetup(t, 1_000_000, 0, "")
	y := yaml() + "ledger: {store: file, path: " + filepath.Join(t.TempDir(), "ledger.db") + "}\n"
	g := startWith(t, y, nil, false)
	k := g.createKey(t, admin, `{"name":"persist","team":"search"}`)
	gone := g.createKey(t, admin, `{"name":"gone"}`)
	if st, raw := g.keysCall(t, http.MethodDelete, "/v1/gavel/keys/"+gone.ID, admin, ""); st != 200 {
		t.Fatalf("revoke: %d %s", st, raw)
	}
	g.stop()
	g2 := startWith(t, y, nil, false)
	if st, msg := g2.chatStatus(t, k.Secret, "solo"); st != 200 {
		t.Errorf("managed key after a restart: %d %s", st, msg)
	}
	if st, msg := g2.chatStatus(t, gone.Secret, "solo"); st != 401 || !strings.Contains(msg, "revoked") {
		t.Errorf("revoked key after a restart: %d %s", st, msg)
	}
}

// The done-when of the keys API: two replicas sharing Redis, a key created or revoked on
// one is in force on the other within a second.
func TestManagedKeysPropagateAcrossReplicas(t *testing.T) {
	addr, _ := redisServerStoppable(t) // fails under CI=true without redis-server
	yaml, _, admin, _ := budgetSetup(t, 1_000_000, 0, "ledger: {store: redis, redis: {addr: "+addr+"}}\n")
	a, b := start(t, yaml(), nil), start(t, yaml(), nil)
	ok := func(g *gw, key string) func() bool {
		return func() bool { st, _ := g.chatStatus(t, key, "solo"); return st == 200 }
	}
	refused := func(g *gw, key string) func() bool {
		return func() bool { st, _ := g.chatStatus(t, key, "solo"); return st == 401 }
	}
	k := a.createKey(t, admin, `{"name":"shared","team":"search"}`)
	if took, held := within(time.Second, ok(b, k.Secret)); !held {
		t.Fatalf("key created on replica A not usable on B after %s", took)
	} else {
		t.Logf("created on A, in force on B after %s", took)
	}
	if st, raw := b.keysCall(t, http.MethodGet, "/v1/gavel/keys/"+k.ID, admin, ""); st != 200 || !strings.Contains(string(raw), `"team":"search"`) {
		t.Errorf("B's view of A's key: %d %s", st, raw)
	}
	if st, raw := a.keysCall(t, http.MethodDelete, "/v1/gavel/keys/"+k.ID, admin, ""); st != 200 {
		t.Fatalf("revoke on A: %d %s", st, raw)
	}
	if took, held := within(time.Second, refused(b, k.Secret)); !held {
		t.Fatalf("key revoked on A still usable on B after %s", took)
	} else {
		t.Logf("revoked on A, refused on B after %s", took)
	}
	// B's audit log holds A's actions: one shared log.
	st, raw := b.keysCall(t, http.MethodGet, "/v1/gavel/audit", admin, "")
	if st != 200 || !strings.Contains(string(raw), `"action":"key.revoke"`) {
		t.Errorf("audit on B: %d %s", st, raw)
	}
}

// gavel serve on loopback with no admin key makes one at first start and prints it with
// the console's URL; API requests stay open, admin endpoints need the key; the next start
// finds it and prints none.
func TestBootstrapAdminKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	y := "ledger: {store: file, path: " + path + "}\n"
	var out logBuffer
	g := startWith(t, y, nil, false, app.WithBootstrapAdmin(&out))
	printed := out.String()
	i := strings.Index(printed, "admin key (shown once")
	if i < 0 || !strings.Contains(printed, "/console") {
		t.Fatalf("printed: %q", printed)
	}
	secret := strings.TrimSpace(printed[strings.LastIndex(printed, ": ")+2:])
	if !strings.HasPrefix(secret, "gvl-") {
		t.Fatalf("no key in %q", printed)
	}
	if st, _ := g.chatStatus(t, "unused-in-open-mode", "smart"); st != 200 {
		t.Errorf("open mode ended by the bootstrap key: %d", st)
	}
	if st, raw := g.keysCall(t, http.MethodGet, "/v1/gavel/keys", "", ""); st != 401 {
		t.Errorf("keys API without a key: %d %s", st, raw)
	}
	st, raw := g.keysCall(t, http.MethodGet, "/v1/gavel/keys", secret, "")
	if st != 200 || !strings.Contains(string(raw), `"bootstrap":true`) || strings.Contains(string(raw), secret) {
		t.Fatalf("keys API with the bootstrap key: %d %s", st, raw)
	}
	g.stop()
	var again logBuffer
	g2 := startWith(t, y, nil, false, app.WithBootstrapAdmin(&again))
	if again.String() != "" {
		t.Errorf("second start printed %q", again.String())
	}
	if st, raw := g2.keysCall(t, http.MethodGet, "/v1/gavel/keys", secret, ""); st != 200 {
		t.Errorf("bootstrap key after a restart: %d %s", st, fmt.Sprint(string(raw)))
	}
}
