package policytest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/policy"
)

// libraryCopy writes the default library's policies (tests left out) and data to a temp
// directory, with edit applied to plan.rego, and builds the bundle.
func libraryCopy(t *testing.T, edit func(string) string) []string {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	os.MkdirAll(pol, 0o755)
	files, _ := filepath.Glob("../../policies/*.rego")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(raw)
		if filepath.Base(f) == "plan.rego" {
			src = edit(src)
		}
		os.WriteFile(filepath.Join(pol, filepath.Base(f)), []byte(src), 0o644)
	}
	data := filepath.Join(dir, "bundles")
	os.MkdirAll(filepath.Join(data, "gavel"), 0o755)
	for _, f := range []string{".manifest", "gavel/data.json"} {
		raw, err := os.ReadFile(filepath.Join("../../bundles", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(data, f), raw, 0o644)
	}
	return []string{pol, data}
}

// A planted bug — every provider counts as fit for unredacted PII — is found by the
// default library's invariants on generated inputs, with a minimal counterexample: one PII
// type the policy lets leave, nothing else out of the ordinary.
func TestPropertiesFindPlantedPIIBug(t *testing.T) {
	const good = `pii_ok(p) if data.gavel.pii_policy.pii_requires_tag in object.get(data.gavel.providers, [p, "tags"], [])`
	dirs := libraryCopy(t, func(src string) string {
		if !strings.Contains(src, good) {
			t.Fatal("plan.rego no longer has the PII filter this test breaks")
		}
		return strings.Replace(src, good, `pii_ok(p) if p != ""`, 1)
	})
	b, err := policy.Build(context.Background(), dirs, "")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Properties(context.Background(), b, PropertyOptions{N: 150, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Invariants {
		t.Fatal("the default library declares no invariants")
	}
	var found *Failure
	for i := range sum.Failures {
		if strings.Contains(sum.Failures[i].Problem, "PII sent to") {
			found = &sum.Failures[i]
		}
	}
	if found == nil {
		t.Fatalf("planted bug not found; failures: %s", Describe(sum.Failures))
	}
	t.Logf("counterexample:%s", Describe([]Failure{*found}))
	in := found.Input
	pii := in["pii"].(map[string]any)
	if len(pii) != 1 || pii["ip"] == nil {
		t.Errorf("counterexample PII %v, want only the allowed type ip", pii)
	}
	req := in["request"].(map[string]any)
	if len(in["spend"].(map[string]any)) != 0 || req["stream"] != false || req["has_tools"] != false || req["est_input_tokens"] != float64(10) {
		t.Errorf("counterexample not minimal: %s", Describe([]Failure{*found}))
	}
	for name, p := range in["providers"].(map[string]any) {
		if !isPlainHealthy(p.(map[string]any)) {
			t.Errorf("provider %s not shrunk to healthy: %v", name, p)
		}
	}
}

// The default library keeps its promises on generated inputs.
func TestPropertiesDefaultLibrary(t *testing.T) {
	b, err := policy.Build(context.Background(), []string{"../../policies", "../../bundles"}, "")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Properties(context.Background(), b, PropertyOptions{N: 150, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Invariants || sum.Inputs != 150 || len(sum.Failures) > 0 {
		t.Errorf("invariants %t, %d inputs, failures: %s", sum.Invariants, sum.Inputs, Describe(sum.Failures))
	}
}

// The generator varies input.rate around the bundle's rate limits: an off-by-one in a
// rule that reads it (a key at its rpm let through) is found, shrunk to the key's usage
// alone at exactly the limit.
func TestPropertiesVaryRate(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"p.rego": `package gavel

decision := {"allow": false, "deny": {"status": 429, "code": "rate_limited", "message": "slow down"}} if {
	input.rate.key.requests > data.gavel.rate_limits[0].rpm
} else := {"allow": true, "targets": [{"provider": "mock", "model": "m"}]}
`,
		"invariants.rego": `package gavel.invariants

invariant contains "a key at its rpm was let through" if {
	input.rate.key.requests >= data.gavel.rate_limits[0].rpm
	data.gavel.decision.allow
}
`,
		"gavel/data.json": `{"catalog": {"mock/m": {"provider": "mock", "model": "m"}}, "aliases": {"chat": {"strategy": "ordered", "candidates": ["mock/m"]}},
  "rate_limits": [{"scope": "key", "rpm": 10, "tpm": 1000}]}`,
	}
	for name, src := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := policy.Build(context.Background(), []string{dir}, "")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Properties(context.Background(), b, PropertyOptions{N: 100, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Failures) != 1 || !strings.Contains(sum.Failures[0].Problem, "a key at its rpm was let through") {
		t.Fatalf("failures: %s", Describe(sum.Failures))
	}
	rate := sum.Failures[0].Input["rate"].(map[string]any)
	key, _ := rate["key"].(map[string]any)
	if len(rate) != 1 || key["requests"] != float64(10) {
		t.Errorf("counterexample rate %v, want only the key at exactly its rpm (10)", rate)
	}
}
