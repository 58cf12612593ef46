package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/internal/reqtest"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/signals"
)

// The contract in docs/ cannot drift from the code: real inputs built here and real
// decisions of the default bundle are validated against docs/schema, as are the docs'
// worked examples.

func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile(filepath.Join("..", "..", "docs", "schema", name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func asJSON(t *testing.T, v ast.Value) any {
	t.Helper()
	x, err := ast.JSON(v)
	if err != nil {
		t.Fatal(err)
	}
	// Round-trip through encoding/json so numbers are json.Number-compatible for the validator.
	b, _ := json.Marshal(x)
	out, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDocsExamplesMatchSchemas(t *testing.T) {
	for name, schema := range map[string]string{"input.json": "input.json", "decision.json": "decision.json", "decision-deny.json": "decision.json"} {
		f, err := os.Open(filepath.Join("..", "..", "docs", "schema", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := compile(t, schema).Validate(doc); err != nil {
			t.Errorf("docs/schema/examples/%s: %v", name, err)
		}
	}
}

// realInputs builds inputs the way the server does, from the request bodies in testdata.
func realInputs(t *testing.T, rev *policy.Revision) []policy.Input {
	t.Helper()
	tr := signals.New(0)
	for _, p := range []string{"openai", "anthropic", "mock"} {
		tr.Register(p)
	}
	tg := tr.Target("openai", "gpt-4o")
	tg.Begin()
	tg.End(1500_000_000, 0, true)
	providers := policy.ProvidersValue(tr.Snapshot())
	cat := policy.NewCatalog(map[string][]policy.Model{"openai": {{Name: "ft:gpt-4o-mini:acme", Aliases: []string{"support-bot"},
		ContextWindow: 128000, Prices: policy.ModelPrices{Input: 0.3, Output: 1.2}, Capabilities: []string{"tools", "json"}}}})
	cat.SetDiscovered("mock", []string{"mock-embed-2", "mock-xl"})
	cat.Attach(providers)
	plan, err := rev.Plan(context.Background(), providers)
	if err != nil {
		t.Fatal(err)
	}
	caller, _ := auth.New(nil, true).Authenticate("")
	bodies := reqtest.Bodies(t)
	var out []policy.Input
	for _, name := range slices.Sorted(maps.Keys(bodies)) {
		raw := bodies[name]
		var req adapters.ChatRequest
		if json.Unmarshal(raw, &req) != nil || validate(&req) != nil {
			continue
		}
		for _, pii := range []map[string]int{nil, {"email": 2}, {"credit_card": 1}, {"ip": 1}} {
			out = append(out, policy.Input{Request: pipeline.ChatFeatures(randomID(), &req, "task=code, env=prod", caller), Caller: caller.Value,
				Providers: providers, Plan: plan, PII: pii, NowNS: 1})
		}
	}
	if len(out) < 8 {
		t.Fatalf("only %d inputs", len(out))
	}
	return out
}

func TestRealInputsAndDecisionsMatchSchemas(t *testing.T) {
	b, err := policy.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	rev, err := policy.Prepare(context.Background(), b, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	inSchema, decSchema := compile(t, "input.json"), compile(t, "decision.json")
	seen := map[string]bool{}
	for i, in := range realInputs(t, rev) {
		v := in.Value()
		if err := inSchema.Validate(asJSON(t, v)); err != nil {
			t.Errorf("input %d: %v", i, err)
		}
		for _, model := range []string{in.Request.Model, "smart", "nope", "openai/x"} {
			in.Request.Model = model
			d, err := rev.Evaluate(context.Background(), in.Value())
			if err != nil {
				t.Fatal(err)
			}
			if err := decSchema.Validate(asJSON(t, d)); err != nil {
				t.Errorf("decision for %s: %v\n%s", model, err, d)
			}
			pd, err := policy.ParseDecision(d)
			if err != nil {
				t.Errorf("schema-valid decision rejected by ParseDecision: %v", err)
				continue
			}
			seen[map[bool]string{true: "allow", false: "deny"}[pd.Allow]] = true
			if len(pd.Redact) > 0 {
				seen["redact"] = true
			}
		}
	}
	for _, k := range []string{"allow", "deny", "redact"} {
		if !seen[k] {
			t.Errorf("no %s decision was exercised", k)
		}
	}
}

// randomID is a decision id as the pipeline makes them: 32 random hex digits.
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
