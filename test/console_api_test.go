package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/auth"
)

// consoleViewer is the viewer key consoleKeys wrote last.
var consoleViewer string

// consoleKeys writes a keys file with an admin key and a key each for teams search and
// ads, and returns their secrets.
func consoleKeys(t *testing.T) (path, admin, search, ads string) {
	t.Helper()
	admin, adminHash, _ := auth.NewKey()
	search, searchHash, _ := auth.NewKey()
	ads, adsHash, _ := auth.NewKey()
	var viewerHash string
	consoleViewer, viewerHash, _ = auth.NewKey()
	path = t.TempDir() + "/keys.yaml"
	writeFile(t, path, fmt.Sprintf(`keys:
  - {sha256: %s, key_id: k-admin, user: ops, admin: true}
  - {sha256: %s, key_id: k-search, user: ann, team: search}
  - {sha256: %s, key_id: k-ads, user: bob, team: ads}
  - {sha256: %s, key_id: k-viewer, user: val, role: viewer}
`, adminHash, searchHash, adsHash, viewerHash))
	return path, admin, search, ads
}

// getAs GETs path with a bearer key and decodes the JSON answer.
func (g *gw) getAs(t *testing.T, key, path string) (int, map[string]any, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("GET %s: bad JSON %q: %v", path, raw, err)
	}
	return resp.StatusCode, m, raw
}

// waitDecisions polls the list until it holds n decisions.
func (g *gw) waitDecisions(t *testing.T, admin string, n int) []any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, m, _ := g.getAs(t, admin, "/v1/gavel/decisions?limit=1000")
		data, _ := m["data"].([]any)
		if len(data) >= n || time.Now().After(deadline) {
			if len(data) != n {
				t.Fatalf("decisions: got %d, want %d", len(data), n)
			}
			return data
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(data []any) []string {
	out := make([]string, len(data))
	for i, e := range data {
		out[i], _ = e.(map[string]any)["decision_id"].(string)
	}
	return out
}

// GET /v1/gavel/decisions lists recent decisions newest first, each exactly as the
// lookup by id returns it, filtered by key, team, model, route, status, deny code and
// time, in pages linked by next_before; bad parameters are 400s naming them, and only
// admin keys may read it.
func TestDecisionsList(t *testing.T) {
	keys, admin, search, ads := consoleKeys(t)
	g := start(t, "keys_file: "+keys+"\n", nil)
	ctx := context.Background()
	var sent []string // decision ids, oldest first
	ask := func(key, model string) {
		t.Helper()
		var resp *http.Response
		if _, err := g.client(key).Chat.Completions.New(ctx, userParams(model, "hi"), option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, resp.Header.Get("X-Gavel-Decision-Id"))
	}
	before := time.Now().UTC()
	for range 3 {
		ask(search, "smart")
	}
	for range 2 {
		ask(ads, "fast")
	}
	// A model nothing serves: the policy denies it (404 model_not_found).
	if _, err := g.client(ads).Chat.Completions.New(ctx, userParams("no-such-model", "hi")); err == nil {
		t.Fatal("unknown model answered")
	}
	all := g.waitDecisions(t, admin, 6)

	// Newest first; each is the lookup's event, byte for byte.
	got := ids(all)
	for _, id := range got {
		_, _, one := g.getAs(t, admin, "/v1/gavel/decisions/"+id)
		var a, b any
		json.Unmarshal(one, &a)
		for _, e := range all {
			if e.(map[string]any)["decision_id"] == id {
				b = e
			}
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("listed event %s differs from its lookup", id)
		}
	}
	denied := all[0].(map[string]any)
	if denied["result"].(map[string]any)["allow"] != false {
		t.Fatalf("newest is not the denied request: %v", denied)
	}

	for _, c := range []struct {
		query string
		want  int
	}{
		{"team=search", 3},
		{"team=ads", 3},
		{"key=k-search", 3},
		{"team=ads&model=fast", 2},
		{"model=smart", 3},
		{"status=denied", 1},
		{"status=404", 1},
		{"status=4xx", 1},
		{"status=ok", 5},
		{"status=error", 1},
		{"status=2xx", 5},
		{"deny_code=model_not_found", 1},
		{"deny_code=model_not_found&team=search", 0},
		{"route=none", 1},
		{"since=" + url.QueryEscape(before.Add(-time.Minute).Format(time.RFC3339Nano)), 6},
		{"since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), 0},
		{"until=" + url.QueryEscape(before.Add(-time.Minute).Format(time.RFC3339)), 0},
	} {
		code, m, raw := g.getAs(t, admin, "/v1/gavel/decisions?"+c.query)
		data, _ := m["data"].([]any)
		if code != 200 || len(data) != c.want || m["object"] != "list" || m["next_before"] != "" {
			t.Errorf("%s: status %d, %d decisions (want %d): %.300s", c.query, code, len(data), c.want, raw)
		}
	}
	// A route filter matches what answered.
	route := all[1].(map[string]any)["custom"].(map[string]any)["route"].(string)
	_, m, _ := g.getAs(t, admin, "/v1/gavel/decisions?route="+url.QueryEscape(route))
	if n := len(m["data"].([]any)); n < 1 {
		t.Errorf("route=%s: none", route)
	}

	// Pages of two, linked by next_before, walk all six in order without overlap.
	var paged []string
	cursor := ""
	for range 4 {
		_, m, raw := g.getAs(t, admin, "/v1/gavel/decisions?limit=2&before="+cursor)
		paged = append(paged, ids(m["data"].([]any))...)
		cursor, _ = m["next_before"].(string)
		if cursor == "" {
			break
		}
		if len(m["data"].([]any)) != 2 {
			t.Fatalf("a page that has a next one is short: %s", raw)
		}
	}
	if strings.Join(paged, ",") != strings.Join(got, ",") {
		t.Errorf("pages %v, want %v", paged, got)
	}
	if len(sent) != 5 || got[1] != sent[4] || got[5] != sent[0] {
		t.Errorf("order: listed %v, sent %v", got, sent)
	}

	for _, c := range []struct{ query, param string }{
		{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=x", "limit"},
		{"status=teapot", "status"}, {"status=700", "status"},
		{"since=yesterday", "since"}, {"until=2026-13-01", "until"},
		{"before=nope", "before"},
	} {
		code, m, raw := g.getAs(t, admin, "/v1/gavel/decisions?"+c.query)
		e, _ := m["error"].(map[string]any)
		if code != 400 || e["param"] != c.param {
			t.Errorf("%s: status %d: %s", c.query, code, raw)
		}
	}
	if code, _, _ := g.getAs(t, "", "/v1/gavel/decisions"); code != 401 {
		t.Errorf("no key: %d", code)
	}
	if code, _, _ := g.getAs(t, search, "/v1/gavel/decisions"); code != 403 {
		t.Errorf("a key without a role: %d", code)
	}
	if code, m, _ := g.getAs(t, consoleViewer, "/v1/gavel/decisions?limit=1"); code != 200 || len(m["data"].([]any)) != 1 {
		t.Errorf("a viewer key: %d %v", code, m)
	}
}
