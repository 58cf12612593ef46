package policy

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/open-policy-agent/opa/v1/bundle"
)

func mustEmbedded(t testing.TB) *Revision {
	t.Helper()
	b, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	rev, err := New().Activate(context.Background(), b, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func providers(t testing.TB, s string) ast.Value {
	t.Helper()
	v, err := ast.ParseTerm(s)
	if err != nil {
		t.Fatal(err)
	}
	return v.Value
}

// benchSetup is what the decision benchmarks evaluate against: every provider up, rev's
// plan over them, and a gold-tier caller of team search.
func benchSetup(t testing.TB, rev *Revision) (prov, plan, caller ast.Value) {
	t.Helper()
	prov = providers(t, allUp)
	plan, err := rev.Plan(context.Background(), prov)
	if err != nil || plan == nil {
		t.Fatal(err, plan)
	}
	return prov, plan, CallerValue(KeyRecord{KeyID: "k1", User: "u", Team: "search", Project: "p", Tier: "gold"})
}

const allUp = `{"openai": {"healthy": true, "circuit": "closed", "models": {}},
 "anthropic": {"healthy": true, "circuit": "closed", "models": {}},
 "mock": {"healthy": true, "circuit": "closed", "models": {}}}`

func TestEmbeddedDecisions(t *testing.T) {
	rev := mustEmbedded(t)
	if rev.ID != "default-1" {
		t.Errorf("revision = %q", rev.ID)
	}
	if _, ok := rev.Data.Catalog["openai/gpt-4o"]; !ok {
		t.Error("catalog not loaded")
	}
	tests := []struct {
		name      string
		model     string
		providers string
		allow     bool
		status    int
		first     string
	}{
		{"alias", "gpt-4o", allUp, true, 0, "openai/gpt-4o"},
		{"scored alias", "smart", allUp, true, 0, "openai/gpt-4o"},
		{"alias mock only", "fast", `{"mock": {"healthy": true, "circuit": "closed", "models": {}}}`, true, 0, "mock/mock-small"},
		{"client hint", "anthropic/claude-haiku-4-5", allUp, true, 0, "anthropic/claude-haiku-4-5"},
		{"open circuit skipped", "gpt-4o", `{"openai": {"healthy": true, "circuit": "closed", "models": {"gpt-4o": {"circuit": "open"}}}, "mock": {"healthy": true, "circuit": "closed", "models": {}}}`, true, 0, "mock/mock-large"},
		{"unknown model", "nope", allUp, false, 404, ""},
		{"nothing configured", "gemini-2.5-pro", `{}`, false, 404, ""},
		{"nothing available", "gemini-2.5-pro", `{"gemini": {"healthy": false, "circuit": "closed", "models": {}}}`, false, 503, ""},
		{"declared model", "llama", `{"ollama": {"healthy": true, "circuit": "closed", "models": {}, "catalog": {"llama3": {"aliases": ["llama"], "kind": "chat", "context_window": 0, "source": "config"}}}}`, true, 0, "ollama/llama3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prov := providers(t, tc.providers)
			plan, err := rev.Plan(context.Background(), prov)
			if err != nil {
				t.Fatal(err)
			}
			in := Input{Request: Request{ID: "r1", Endpoint: "chat", Model: tc.model}, Providers: prov}
			inline, err := rev.Decide(context.Background(), in.Value())
			if err != nil {
				t.Fatal(err)
			}
			in.Plan = plan
			d, err := rev.Decide(context.Background(), in.Value())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(inline, d) {
				t.Errorf("planned decision %+v differs from inline %+v", d, inline)
			}
			if d.Allow != tc.allow {
				t.Fatalf("allow = %v, want %v (%+v)", d.Allow, tc.allow, d)
			}
			if !tc.allow {
				if d.Deny.Status != tc.status {
					t.Errorf("status = %d, want %d", d.Deny.Status, tc.status)
				}
				return
			}
			if got := d.Targets[0].String(); got != tc.first {
				t.Errorf("first target = %s, want %s", got, tc.first)
			}
			if len(d.Reasons) == 0 {
				t.Error("no reasons")
			}
		})
	}
}

func TestParseDecision(t *testing.T) {
	tests := []struct {
		name    string
		rego    string
		wantErr string
		check   func(*testing.T, *decision.Decision)
	}{
		{"minimal allow", `{"allow": true, "targets": [{"provider": "a", "model": "m"}]}`, "", func(t *testing.T, d *decision.Decision) {
			if d.Limits.MaxRetries != -1 || d.Degrade.Stream != nil || d.AB != nil {
				t.Errorf("defaults wrong: %+v", d)
			}
		}},
		{"deny defaults", `{"allow": false}`, "", func(t *testing.T, d *decision.Decision) {
			if d.Deny.Status != 403 || d.Deny.Code != "policy_denied" {
				t.Errorf("deny = %+v", d.Deny)
			}
		}},
		{"full", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "ab": {"experiment": "e", "arm": "b"},
		  "limits": {"max_tokens": 100, "timeout_ms": 2000, "max_retries": 0}, "degrade": {"stream": false},
		  "labels": {"k": "v"}, "reasons": {"r1", "r2"}}`, "", func(t *testing.T, d *decision.Decision) {
			if d.AB.Arm != "b" || d.Limits.MaxTokens != 100 || d.Limits.TimeoutMS != 2000 || d.Limits.MaxRetries != 0 ||
				*d.Degrade.Stream || d.Labels["k"] != "v" || len(d.Reasons) != 2 {
				t.Errorf("parsed = %+v", d)
			}
		}},
		{"not object", `[1]`, "must be an object", nil},
		{"missing allow", `{"targets": []}`, "missing field", nil},
		{"unknown field", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "shadoww": []}`, "unknown field", nil},
		{"allow without targets", `{"allow": true}`, "targets is empty", nil},
		{"allow and deny", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "deny": {}}`, "deny is set", nil},
		{"bad status", `{"allow": false, "deny": {"status": 200}}`, "400–599", nil},
		{"float status", `{"allow": false, "deny": {"status": 403.5}}`, "integer", nil},
		{"target missing model", `{"allow": true, "targets": [{"provider": "a"}]}`, "needs provider and model", nil},
		{"shadow and redact", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "shadow": [{"provider": "b", "model": "n"}], "redact": {"email"}}`, "", func(t *testing.T, d *decision.Decision) {
			if len(d.Shadow) != 1 || d.Shadow[0].Provider != "b" || len(d.Redact) != 1 || d.Redact[0] != "email" {
				t.Errorf("parsed = %+v", d)
			}
		}},
		{"budgets and rate limits", `{"allow": true, "targets": [{"provider": "a", "model": "m"}],
		  "budgets": [{"name": "t", "scope": "team", "id": "x", "period": "day", "limit_musd": 100, "hard": false, "soft_bp": 8000}],
		  "rate_limits": [{"scope": "key", "id": "k", "rpm": 5, "tpm": 0}]}`, "", func(t *testing.T, d *decision.Decision) {
			if len(d.Budgets) != 1 || d.Budgets[0].Hard || d.Budgets[0].SoftBP != 8000 || d.Budgets[0].LimitMicroUSD != 100 ||
				len(d.RateLimits) != 1 || d.RateLimits[0].RequestsPerMinute != 5 {
				t.Errorf("parsed = %+v", d)
			}
		}},
		{"bad budget period", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "budgets": [{"name": "t", "scope": "team", "period": "week", "limit_musd": 1}]}`, "period", nil},
		{"unknown budget field", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "budgets": [{"name": "t", "scope": "team", "period": "day", "limit_musd": 1, "x": 1}]}`, "unknown field", nil},
		{"bad rate scope", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "rate_limits": [{"scope": "planet"}]}`, "scope", nil},
		{"unknown redact type", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "redact": ["passport"]}`, "unknown PII type", nil},
		{"target unknown key", `{"allow": true, "targets": [{"provider": "a", "model": "m", "x": 1}]}`, "unknown field", nil},
		{"negative limit", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "limits": {"max_tokens": -1}}`, "negative", nil},
		{"allow not bool", `{"allow": "yes"}`, "boolean", nil},
		{"midstream continue", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "limits": {"midstream": "continue"}}`, "", func(t *testing.T, d *decision.Decision) {
			if !d.Limits.Continues() || d.Limits.MaxRetries != -1 {
				t.Errorf("limits = %+v", d.Limits)
			}
		}},
		{"midstream error", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "limits": {"midstream": "error"}}`, "", func(t *testing.T, d *decision.Decision) {
			if d.Limits.Continues() || d.Limits.Midstream != "error" {
				t.Errorf("limits = %+v", d.Limits)
			}
		}},
		{"midstream unknown", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "limits": {"midstream": "retry"}}`, `limits.midstream must be "error" or "continue"`, nil},
		{"midstream not string", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "limits": {"midstream": true}}`, "limits.midstream", nil},
		{"hedge", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "hedge": {"delay_ms": 300}}`, "", func(t *testing.T, d *decision.Decision) {
			if d.Hedge == nil || d.Hedge.DelayMS != 300 || d.Hedge.Max != decision.DefaultHedgeMax {
				t.Errorf("hedge = %+v", d.Hedge)
			}
		}},
		{"hedge with max", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "hedge": {"delay_ms": 1, "max": 3}}`, "", func(t *testing.T, d *decision.Decision) {
			if d.Hedge.DelayMS != 1 || d.Hedge.Max != 3 {
				t.Errorf("hedge = %+v", d.Hedge)
			}
		}},
		{"hedge without delay", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "hedge": {"max": 1}}`, "needs delay_ms", nil},
		{"hedge zero delay", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "hedge": {"delay_ms": 0}}`, "delay_ms must be", nil},
		{"hedge too many", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "hedge": {"delay_ms": 5, "max": 4}}`, "hedge.max", nil},
		{"hedge unknown field", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "hedge": {"delay_ms": 5, "after": 1}}`, "unknown field hedge.after", nil},
		{"hedge not object", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "hedge": 300}`, "hedge must be an object", nil},
		{"hedge float delay", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "hedge": {"delay_ms": 1.5}}`, "integer", nil},
		{"remediation", `{"allow": false, "deny": {"status": 429}, "remediation": {"models": {"fast", "cheap"}, "max_tokens": 512, "retry_after_s": 30,
		  "budget": {"name": "team-daily", "remaining_musd": 0, "resets_at": "2026-12-08T00:00:00Z"}, "pii": ["iban"]}}`, "", func(t *testing.T, d *decision.Decision) {
			r := d.Remediation
			if r == nil || len(r.Models) != 2 || r.MaxTokens != 512 || r.RetryAfterS != 30 || r.Budget.Name != "team-daily" ||
				r.Budget.ResetsAt != "2026-12-08T00:00:00Z" || r.PII[0] != "iban" {
				t.Errorf("remediation = %+v", r)
			}
		}},
		{"remediation with allow", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "remediation": {}}`, "remediation is set", nil},
		{"remediation unknown field", `{"allow": false, "remediation": {"hint": "x"}}`, "unknown field remediation.hint", nil},
		{"remediation not object", `{"allow": false, "remediation": ["fast"]}`, "remediation must be an object", nil},
		{"remediation empty model", `{"allow": false, "remediation": {"models": [""]}}`, "empty model name", nil},
		{"remediation negative tokens", `{"allow": false, "remediation": {"max_tokens": -5}}`, "negative", nil},
		{"remediation float retry", `{"allow": false, "remediation": {"retry_after_s": 1.5}}`, "integer", nil},
		{"remediation unknown PII", `{"allow": false, "remediation": {"pii": ["passport"]}}`, "unknown PII type", nil},
		{"remediation budget without name", `{"allow": false, "remediation": {"budget": {"remaining_musd": 1}}}`, "needs a name", nil},
		{"remediation budget bad time", `{"allow": false, "remediation": {"budget": {"name": "b", "resets_at": "tomorrow"}}}`, "RFC 3339", nil},
		{"remediation budget unknown field", `{"allow": false, "remediation": {"budget": {"name": "b", "limit": 1}}}`, "unknown field remediation.budget.limit", nil},
		{"fault error default status", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "error"}}`, "", func(t *testing.T, d *decision.Decision) {
			if f := d.Fault; f == nil || f.Kind != "error" || f.Status != 503 || f.Attempt != 1 {
				t.Errorf("fault = %+v", f)
			}
		}},
		{"fault error status attempt", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "error", "status": 429, "attempt": 2}}`, "", func(t *testing.T, d *decision.Decision) {
			if f := d.Fault; f == nil || f.Status != 429 || f.Attempt != 2 {
				t.Errorf("fault = %+v", f)
			}
		}},
		{"fault latency", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "latency", "delay_ms": 250}}`, "", func(t *testing.T, d *decision.Decision) {
			if f := d.Fault; f == nil || f.Kind != "latency" || f.DelayMS != 250 {
				t.Errorf("fault = %+v", f)
			}
		}},
		{"fault cut_stream", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "cut_stream", "after_chunks": 3}}`, "", func(t *testing.T, d *decision.Decision) {
			if f := d.Fault; f == nil || f.Kind != "cut_stream" || f.AfterChunks != 3 {
				t.Errorf("fault = %+v", f)
			}
		}},
		{"fault timeout", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "timeout"}}`, "", func(t *testing.T, d *decision.Decision) {
			if f := d.Fault; f == nil || f.Kind != "timeout" {
				t.Errorf("fault = %+v", f)
			}
		}},
		{"fault unknown kind", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "meteor"}}`, "fault.kind must be one of", nil},
		{"fault no kind", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"status": 500}}`, "fault needs kind", nil},
		{"fault unknown field", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "error", "rate": 0.1}}`, "unknown field fault.rate", nil},
		{"fault not object", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": "error"}`, "fault must be an object", nil},
		{"fault latency without delay", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "latency"}}`, "needs delay_ms", nil},
		{"fault latency too long", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "latency", "delay_ms": 600001}}`, "fault.delay_ms must be", nil},
		{"fault bad status", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "error", "status": 200}}`, "fault.status must be 400–599", nil},
		{"fault status on latency", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "latency", "delay_ms": 5, "status": 500}}`, "fault.status does not apply", nil},
		{"fault after_chunks on error", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "error", "after_chunks": 1}}`, "fault.after_chunks does not apply", nil},
		{"fault negative chunks", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "cut_stream", "after_chunks": -1}}`, "negative", nil},
		{"fault attempt zero", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": "timeout", "attempt": 0}}`, "fault.attempt must be", nil},
		{"fault kind not string", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "fault": {"kind": 1}}`, "fault.kind must be a string", nil},
		{"fault with deny", `{"allow": false, "fault": {"kind": "error"}}`, "allow is false but fault is set", nil},
		{"cache defaults", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "exact"}}`, "", func(t *testing.T, d *decision.Decision) {
			if c := d.Cache; c == nil || c.Mode != "exact" || c.TTLS != decision.DefaultCacheTTLS || c.Scope != "team" || c.Coalesce || c.ChargeBP != 0 ||
				c.MinSimilarityBP != decision.DefaultMinSimilarityBP || !c.Caches() {
				t.Errorf("cache = %+v", c)
			}
		}},
		{"cache full", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "semantic", "ttl_s": 60, "scope": "global", "min_similarity": 9000, "coalesce": true, "charge_bp": 2500, "embed": {"provider": "e", "model": "emb"}}}`, "", func(t *testing.T, d *decision.Decision) {
			if c := d.Cache; c.Mode != "semantic" || c.TTLS != 60 || c.Scope != "global" || c.MinSimilarityBP != 9000 || !c.Coalesce || c.ChargeBP != 2500 ||
				c.Embed == nil || *c.Embed != (decision.Target{Provider: "e", Model: "emb"}) || !c.Semantic() {
				t.Errorf("cache = %+v", c)
			}
		}},
		{"cache off", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "off", "coalesce": true}}`, "", func(t *testing.T, d *decision.Decision) {
			if d.Cache.Caches() || !d.Cache.Coalesce {
				t.Errorf("cache = %+v", d.Cache)
			}
		}},
		{"cache without mode", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"ttl_s": 5}}`, "cache needs mode", nil},
		{"cache unknown mode", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "fuzzy"}}`, "cache.mode must be one of", nil},
		{"cache unknown scope", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "exact", "scope": "user"}}`, "cache.scope must be one of", nil},
		{"cache ttl zero", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "exact", "ttl_s": 0}}`, "cache.ttl_s must be", nil},
		{"cache ttl float", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "exact", "ttl_s": 1.5}}`, "integer", nil},
		{"cache similarity on exact", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "exact", "min_similarity": 9000}}`, "semantic", nil},
		{"cache similarity too high", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "semantic", "min_similarity": 10001, "embed": {"provider": "e", "model": "emb"}}}`, "cache.min_similarity must be", nil},
		{"cache semantic default threshold", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "semantic", "embed": {"provider": "e", "model": "emb"}}}`, "", func(t *testing.T, d *decision.Decision) {
			if c := d.Cache; c.MinSimilarityBP != decision.DefaultMinSimilarityBP || !c.Semantic() || !c.Caches() {
				t.Errorf("cache = %+v", c)
			}
		}},
		{"cache semantic without embed", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "semantic"}}`, "needs embed", nil},
		{"cache embed on exact", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "exact", "embed": {"provider": "e", "model": "emb"}}}`, "cache.embed applies to mode", nil},
		{"cache embed not object", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "semantic", "embed": "e/emb"}}`, "cache.embed must be an object", nil},
		{"cache embed without model", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "semantic", "embed": {"provider": "e"}}}`, "cache.embed needs provider and model", nil},
		{"cache embed model not string", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "semantic", "embed": {"provider": "e", "model": 3}}}`, "cache.embed.model must be a string", nil},
		{"cache embed unknown field", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "semantic", "embed": {"provider": "e", "model": "emb", "dims": 8}}}`, "unknown field cache.embed.dims", nil},
		{"cache charge too high", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "exact", "charge_bp": 10001}}`, "cache.charge_bp must be", nil},
		{"cache coalesce not bool", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "exact", "coalesce": "yes"}}`, "cache.coalesce must be a boolean", nil},
		{"cache unknown field", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": {"mode": "exact", "key": "x"}}`, "unknown field cache.key", nil},
		{"cache not object", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "cache": "exact"}`, "cache must be an object", nil},
		{"cache with deny", `{"allow": false, "cache": {"mode": "exact"}}`, "allow is false but cache is set", nil},
		{"non-string key", `{"allow": false, 1: 2}`, "keys must be strings", nil},
		{"unknown field first", `{"aaa": 1, "allow": false}`, `unknown field "aaa"`, nil},
		{"target provider not string", `{"allow": true, "targets": [{"provider": 1, "model": "m"}]}`, "targets.provider must be a string", nil},
		{"shadow model not string", `{"allow": true, "targets": [{"provider": "a", "model": "m"}], "shadow": [{"provider": "b", "model": false}]}`, "shadow.model must be a string", nil},
		{"target not object", `{"allow": true, "targets": [{"provider": "a", "model": "m"}, "b/m"]}`, "targets[1] must be an object", nil},
		{"targets not array", `{"allow": true, "targets": "a/m"}`, "targets must be an array", nil},
		{"reasons element not string", `{"allow": false, "reasons": ["a", 1]}`, "reasons[1] must be a string", nil},
		{"targets as a set", `{"allow": true, "targets": {{"provider": "a", "model": "m"}}, "reasons": []}`, "", func(t *testing.T, d *decision.Decision) {
			if len(d.Targets) != 1 || d.Targets[0].Model != "m" || d.Reasons != nil {
				t.Errorf("parsed = %+v", d)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDecision(ast.MustParseTerm(tc.rego).Value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalidDecision) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, d)
		})
	}
}

func TestActivateRejectsBrokenBundleAndKeepsOld(t *testing.T) {
	e := New()
	b, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Activate(context.Background(), b, "embedded"); err != nil {
		t.Fatal(err)
	}
	broken := &bundle.Bundle{Modules: []bundle.ModuleFile{{Path: "x.rego", Raw: []byte("package gavel\ndecision := 1 / 0")}}}
	broken.Modules[0].Parsed = ast.MustParseModule(string(broken.Modules[0].Raw))
	if _, err := e.Activate(context.Background(), broken, "broken"); err == nil {
		t.Fatal("broken bundle activated")
	}
	if e.Active().Source != "embedded" {
		t.Fatal("active revision replaced by a failed one")
	}
}

func TestInputValue(t *testing.T) {
	in := Input{
		Request: Request{ID: "r", Endpoint: "chat", Model: "smart", Stream: true,
			Messages: []Message{{Role: "user", Text: "hi"}}, MaxTokens: 5, EstInputTokens: 1,
			Metadata: map[string]string{"b": "2", "a": "1"}, Bucket: 42},
		Caller: CallerValue(KeyRecord{KeyID: "k1", Team: "t", Labels: map[string]string{"x": "y"}}),
		NowNS:  -12,
	}
	got := in.Value().String()
	for _, want := range []string{`"bucket": 42`, `"metadata": {"a": "1", "b": "2"}`, `"team": "t"`, `"now": -12`, `"stream": true`, `"providers": {}`} {
		if !strings.Contains(got, want) {
			t.Errorf("input lacks %s: %s", want, got)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	rev := mustEmbedded(b)
	prov, plan, caller := benchSetup(b, rev)
	msgs := []Message{{Role: "system", Text: "You are a helpful assistant."}, {Role: "user", Text: strings.Repeat("Tell me about routing. ", 20)}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in := Input{Request: Request{ID: "req", Endpoint: "chat", Model: "smart", Messages: msgs, EstInputTokens: 120, Bucket: 4242,
			Metadata: map[string]string{"task": "chat"}}, Caller: caller, Providers: prov, Plan: plan, NowNS: 1}
		d, err := rev.Decide(ctx, in.Value())
		if err != nil || !d.Allow {
			b.Fatal(err, d)
		}
	}
}

// BenchmarkDecision reports p50/p99 per evaluation (ns) of the full default library on
// realistic inputs: "typical" takes the plan's fast path; "pii_tools_code" (an email to
// redact, tools defined, code in the prompt) runs every per-request rule.
func BenchmarkDecision(b *testing.B) {
	rev := mustEmbedded(b)
	prov, plan, caller := benchSetup(b, rev)
	ctx := context.Background()
	prompt := strings.Repeat("Tell me about routing LLM traffic with policies. ", 40)
	cases := []struct {
		name string
		req  Request
		pii  map[string]int
	}{
		{"typical", Request{Model: "smart", EstInputTokens: 520}, nil},
		{"pii_tools_code", Request{Model: "fast", EstInputTokens: 520, HasTools: true, HasCode: true, Metadata: map[string]string{"task": "chat"}}, map[string]int{"email": 1}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				r := tc.req
				r.ID, r.Endpoint, r.Bucket, r.Sample = "req", "chat", 4242, 9000
				r.Messages = []Message{{Role: "system", Text: "You are helpful."}, {Role: "user", Text: prompt}}
				in := Input{Request: r, Caller: caller, Providers: prov, Plan: plan, PII: tc.pii, NowNS: 1}
				d, err := rev.Decide(ctx, in.Value())
				if err != nil || !d.Allow {
					b.Fatal(err, d)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// Value is built by hand with shared terms; it must equal OPA's own conversion of the same
// input as generic JSON, whatever the numbers, strings and optional parts are.
func TestInputValueMatchesGenericConversion(t *testing.T) {
	plan := ast.MustParseTerm(`{"fast": {"typical": {"allow": true}}}`).Value
	caller := CallerValue(KeyRecord{KeyID: "k1", User: "u", Team: "t", Labels: map[string]string{"x": "y"}})
	for _, in := range []Input{
		{},
		{Request: Request{ID: "r1", Endpoint: "chat", Protocol: "anthropic", Model: "smart", Stream: true,
			Messages: []Message{{Role: "system", Text: "be brief"}, {Role: "user", Text: "hi"}, {Role: "critic", Text: ""}},
			HasTools: true, HasCode: true, MaxTokens: 513, EstInputTokens: 512, Metadata: map[string]string{"b": "2", "a": "1"},
			Fields: []string{"messages", "model", "top_k"}, Bucket: 9999, Sample: -1,
			Temperature: ptr(0.7), Seed: ptr(int64(1) << 50), N: 2, Turns: 1},
			Caller: caller, Plan: plan, NowNS: 1765000000123456789,
			PII:   map[string]int{"email": 2, "ssn": 600},
			Spend: map[string]SpendState{"team": {SpentMUSD: 5, ReservedMUSD: 1 << 40, LimitMUSD: -3}},
			Rate:  map[string]RateState{"key": {Requests: 3, Tokens: 70000}}},
		{Request: Request{ID: "r2", Endpoint: "embeddings", Model: "e", Messages: []Message{{Role: "user", Text: "x"}},
			MaxTokens: -2, EstInputTokens: 1000, Bucket: 0, Sample: 512}, NowNS: -12},
		{Request: Request{Temperature: ptr(0.0), Seed: ptr(int64(-1)), N: 700, Turns: 513}},
		{Request: Request{Temperature: ptr(1.0), Seed: ptr(int64(0))}},
	} {
		r := in.Request
		msgs := []any{}
		for _, m := range r.Messages {
			msgs = append(msgs, map[string]any{"role": m.Role, "text": m.Text})
		}
		meta := map[string]any{}
		for k, v := range r.Metadata {
			meta[k] = v
		}
		fields := []any{}
		for _, f := range r.Fields {
			fields = append(fields, f)
		}
		pii, spend, rate := map[string]any{}, map[string]any{}, map[string]any{}
		for k, n := range in.PII {
			pii[k] = n
		}
		for k, s := range in.Spend {
			spend[k] = map[string]any{"spent_musd": s.SpentMUSD, "reserved_musd": s.ReservedMUSD, "limit_musd": s.LimitMUSD}
		}
		for k, s := range in.Rate {
			rate[k] = map[string]any{"requests": s.Requests, "tokens": s.Tokens}
		}
		generic := map[string]any{
			"request": map[string]any{
				"id": r.ID, "endpoint": r.Endpoint, "protocol": r.protocol(), "model": r.Model, "stream": r.Stream,
				"messages": msgs, "has_tools": r.HasTools, "has_images": r.HasImages, "has_code": r.HasCode,
				"max_tokens": r.MaxTokens, "est_input_tokens": r.EstInputTokens, "metadata": meta, "fields": fields,
				"bucket": r.Bucket, "sample": r.Sample, "n": r.n(), "turns": r.Turns,
			},
			"caller": map[string]any{}, "providers": map[string]any{}, "now": in.NowNS,
			"pii": pii, "spend": spend, "rate": rate,
		}
		if r.Temperature != nil {
			generic["request"].(map[string]any)["temperature"] = *r.Temperature
		}
		if r.Seed != nil {
			generic["request"].(map[string]any)["seed"] = *r.Seed
		}
		want := ast.MustInterfaceToValue(generic).(ast.Object)
		if in.Caller != nil {
			want.Insert(ast.StringTerm("caller"), ast.NewTerm(in.Caller))
		}
		if in.Plan != nil {
			want.Insert(ast.StringTerm("plan"), ast.NewTerm(in.Plan))
		}
		got := in.Value()
		if got.Compare(want) != 0 || got.Hash() != want.Hash() {
			t.Errorf("Value() = %v\nwant      %v", got, want)
		}
	}
}

func BenchmarkInputValue(b *testing.B) {
	in := Input{
		Request: Request{ID: "0123456789abcdef", Endpoint: "chat", Model: "fast",
			Messages:  []Message{{Role: "system", Text: "You are a helpful assistant."}, {Role: "user", Text: "Tell me about routing."}},
			MaxTokens: 1024, EstInputTokens: 31, Bucket: 4242, Sample: 777},
		Caller: CallerValue(KeyRecord{KeyID: "k1"}), Providers: emptyObject, Plan: emptyObject, NowNS: time.Now().UnixNano(),
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = in.Value()
	}
}

// InputMembers names every top-level member Value writes, in encoding/json's key order.
func TestInputMembersAreValuesKeys(t *testing.T) {
	full := Input{Caller: CallerValue(KeyRecord{KeyID: "k"}), Providers: emptyObject, Plan: emptyObject, NowNS: 1,
		PII: map[string]int{"email": 1}, Spend: map[string]SpendState{"b": {}}, Rate: map[string]RateState{"key": {}}}
	keys := full.Value().(ast.Object).Keys()
	if len(keys) != len(InputMembers) {
		t.Fatalf("Value's keys %v, InputMembers %v", keys, InputMembers)
	}
	for i, k := range keys {
		if !k.Equal(InputMembers[i]) {
			t.Fatalf("Value's keys %v, InputMembers %v", keys, InputMembers)
		}
	}
}
