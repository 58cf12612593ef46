package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/bundles"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/test/internal/policybundle"
)

// defaultData is the default bundle's data.gavel, for tests that change a part of it.
func defaultData(t testing.TB) map[string]any {
	t.Helper()
	raw, err := fs.ReadFile(bundles.FS, "gavel/data.json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// candidateTarball builds an unsigned bundle tarball of the default policies with data.
func candidateTarball(t testing.TB, revision string, data map[string]any) []byte {
	t.Helper()
	b, err := policy.Build(context.Background(), []string{policybundle.Dir(t, revision, data)}, revision)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := policy.WriteBundle(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// consoleBundle is the default bundle with a daily budget per team and one global
// budget, priced mock models and an experiment with a shadow on fast, written as a directory.
func consoleBundle(t testing.TB) string {
	return policybundle.Dir(t, "console-1", consoleData(t))
}

// consoleData is consoleBundle's data.gavel.
func consoleData(t testing.TB) map[string]any {
	d := defaultData(t)
	// The mock models are free in the default catalog: price them so spend shows.
	for _, id := range []string{"mock/mock-large", "mock/mock-small"} {
		d["catalog"].(map[string]any)[id].(map[string]any)["price"] = map[string]any{"input_musd_per_mtok": 3_000_000, "output_musd_per_mtok": 15_000_000}
	}
	// An experiment on fast with a shadow of every request, for the experiments page.
	d["ab_experiments"] = map[string]any{"large-vs-small": map[string]any{
		"model": "fast",
		"arms": []any{
			map[string]any{"name": "large", "weight_bp": 5000, "targets": []string{"mock/mock-large"}},
			map[string]any{"name": "small", "weight_bp": 5000, "targets": []string{"mock/mock-small"}},
		},
		"shadow": map[string]any{"sample_bp": 10000, "target": "mock/mock-large"},
	}}
	d["budgets"] = []any{
		map[string]any{"name": "team-daily", "scope": "team", "period": "day", "limit_musd": 50_000_000, "hard": true, "soft_bp": 8000},
		map[string]any{"name": "all-monthly", "scope": "global", "period": "month", "limit_musd": 900_000_000, "hard": false},
	}
	return d
}

// smartToFast is a candidate of consoleData that sends smart where fast goes.
func smartToFast(t testing.TB) []byte {
	d := consoleData(t)
	aliases := d["aliases"].(map[string]any)
	aliases["smart"] = map[string]any{"strategy": "ordered", "candidates": aliases["fast"].(map[string]any)["candidates"]}
	return candidateTarball(t, "candidate-2", d)
}

// postAs POSTs body with a bearer key.
func (g *gw) postAs(t *testing.T, key, path, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, m := do(t, req)
	return resp.StatusCode, m
}

// The console's admin API over a live gateway: traffic per team, providers' signals and
// breakers, the plan, budgets per team, the policy's history, experiments and a policy
// diff of an uploaded candidate — each for admin keys only.
func TestConsoleAdminAPI(t *testing.T) {
	keys, admin, search, ads := consoleKeys(t)
	g := start(t, "keys_file: "+keys+"\npolicy: "+consoleBundle(t)+"\n", nil)
	ctx := context.Background()
	for range 3 {
		if _, err := g.client(search).Chat.Completions.New(ctx, userParams("smart", "hi")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.client(ads).Chat.Completions.New(ctx, userParams("fast", "hello there")); err != nil {
		t.Fatal(err)
	}
	g.waitDecisions(t, admin, 4)

	get := func(path string) map[string]any {
		t.Helper()
		code, m, raw := g.getAs(t, admin, path)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, raw)
		}
		if c, _, _ := g.getAs(t, search, path); c != 403 {
			t.Errorf("GET %s with a plain key: %d", path, c)
		}
		return m
	}
	tr := get("/v1/gavel/traffic?window=5m")
	teams := map[string]float64{}
	for _, x := range tr["teams"].([]any) {
		m := x.(map[string]any)
		teams[m["name"].(string)] = m["requests"].(float64)
	}
	if tr["requests"].(float64) != 4 || teams["search"] != 3 || teams["ads"] != 1 || tr["p95_ms"] == nil || len(tr["series"].([]any)) != 30 {
		t.Errorf("traffic: %v", tr)
	}
	if tr["cost_musd"].(float64) <= 0 {
		t.Errorf("traffic has no cost: %v", tr["cost_musd"])
	}
	if code, m, _ := g.getAs(t, admin, "/v1/gavel/traffic?window=soon"); code != 400 || m["error"].(map[string]any)["param"] != "window" {
		t.Errorf("bad window: %d %v", code, m)
	}

	prov := get("/v1/gavel/providers")["data"].([]any)
	if len(prov) != 1 || prov[0].(map[string]any)["name"] != "mock" || prov[0].(map[string]any)["healthy"] != true {
		t.Fatalf("providers: %v", prov)
	}
	models := prov[0].(map[string]any)["models"].([]any)
	if len(models) == 0 || models[0].(map[string]any)["stats"].(map[string]any)["circuit"] != "closed" {
		t.Errorf("provider models: %v", models)
	}

	plan := get("/v1/gavel/plan")
	var smart map[string]any
	for _, r := range plan["routes"].([]any) {
		if r.(map[string]any)["name"] == "smart" {
			smart = r.(map[string]any)
		}
	}
	if plan["revision"] != "console-1" || smart == nil || len(smart["targets"].([]any)) == 0 || smart["reasons"].([]any)[0] != "route.alias:smart" {
		t.Errorf("plan: smart = %v", smart)
	}

	budgets := get("/v1/gavel/budgets")["data"].([]any)
	byOwner := map[string]map[string]any{}
	for _, b := range budgets {
		m := b.(map[string]any)
		byOwner[m["name"].(string)+"/"+m["budget"].(map[string]any)["id"].(string)] = m
	}
	if s := byOwner["team-daily/search"]; s == nil || s["spent_micro_usd"].(float64) <= 0 || s["limit_micro_usd"].(float64) != 50_000_000 ||
		s["remaining_micro_usd"].(float64) >= 50_000_000 {
		t.Errorf("budgets: %v", budgets)
	}
	if byOwner["team-daily/ads"] == nil || byOwner["all-monthly/"] == nil {
		t.Errorf("budgets lack ads or global: %v", byOwner)
	}

	pol := get("/v1/gavel/policy")
	hist := pol["history"].([]any)
	if pol["active"].(map[string]any)["revision"] != "console-1" || len(hist) != 1 {
		t.Errorf("policy: %v", pol)
	}
	ex := get("/v1/gavel/experiments")
	arms, _ := ex["arms"].([]any)
	if len(arms) != 1 || arms[0].(map[string]any)["experiment"] != "large-vs-small" || arms[0].(map[string]any)["requests"].(float64) != 1 ||
		arms[0].(map[string]any)["shadows"].(float64) != 1 {
		t.Errorf("experiment arms: %v", ex["arms"])
	}
	if ex["shadows"] == nil {
		t.Errorf("experiments: %v", ex)
	}

	// A candidate that sends smart where fast goes: every smart decision is rerouted,
	// nothing else changes route.
	tarball := smartToFast(t)
	code, im := g.postAs(t, admin, "/v1/gavel/policy/diff", "application/gzip", tarball)
	if code != 200 || im["revision"] != "candidate-2" || im["replayed"].(float64) != 4 || im["rerouted"].(float64) != 3 {
		t.Fatalf("diff: %d %v", code, im)
	}
	for _, k := range []string{search, consoleViewer} { // a diff is an admin's action
		if code, _ := g.postAs(t, k, "/v1/gavel/policy/diff", "application/gzip", tarball); code != 403 {
			t.Errorf("diff with a key that is not admin: %d", code)
		}
	}
	for _, c := range []struct {
		body  []byte
		query string
		code  int
	}{
		{nil, "", 400},
		{[]byte("not a tarball"), "", 400},
		{tarball, "?limit=0", 400},
	} {
		if code, m := g.postAs(t, admin, "/v1/gavel/policy/diff"+c.query, "application/gzip", c.body); code != c.code {
			t.Errorf("diff %q%s: %d %v", c.body, c.query, code, m)
		}
	}
	// A candidate that does not compile is a 400 saying so.
	bad := policybundle.Dir(t, "bad", defaultData(t))
	os.WriteFile(filepath.Join(bad, "broken.rego"), []byte("package gavel.broken\nx := \n"), 0o644)
	b, _ := policy.Build(ctx, []string{bad}, "bad")
	if b != nil {
		var buf bytes.Buffer
		policy.WriteBundle(&buf, b)
		if code, m := g.postAs(t, admin, "/v1/gavel/policy/diff", "application/gzip", buf.Bytes()); code != 400 || !strings.Contains(fmt.Sprint(m), "invalid_bundle") {
			t.Errorf("broken candidate: %d %v", code, m)
		}
	}
}
