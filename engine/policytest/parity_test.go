package policytest

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/gavel-gw/gavel/engine/policy"
)

// The decision with input.plan (as gavel evaluates it, through the plan's precomputed
// typical and profiled paths) equals the decision without it (every rule evaluated
// inline), on generated inputs of every kind: PII, tools, images, code, tasks, sizes,
// streams, open and half-open circuits, budgets and rate limits. Both the default data and
// data that turns caching on are checked, and the test fails unless a good share of the
// inputs took each precomputed path (so it keeps exercising them).
func TestPlannedDecisionsEqualInline(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	for _, tc := range []struct {
		name    string
		cache   map[string]any
		noTools []string // catalog models made to lack tools, so that tools filter routes
	}{
		{"default", nil, nil},
		{"caching", map[string]any{"default": map[string]any{"mode": "exact", "ttl_s": 60, "coalesce": true},
			"teams": map[string]any{"search": map[string]any{"scope": "team", "tools": true, "streams": true}}}, nil},
		{"filtering", nil, []string{"mock/mock-small", "openai/gpt-4o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b, err := policy.LoadEmbedded()
			if err != nil {
				t.Fatal(err)
			}
			data := b.Data["gavel"].(map[string]any)
			if tc.cache != nil {
				data["cache"] = tc.cache
			}
			for _, id := range tc.noTools {
				data["catalog"].(map[string]any)[id].(map[string]any)["capabilities"].(map[string]any)["tools"] = false
			}
			rev, err := policy.Prepare(ctx, b, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			var paths [2]rego.PreparedEvalQuery
			for i, q := range []string{"data.gavel.typical", "data.gavel.profiled"} {
				if paths[i], err = rego.New(rego.Query(q), rego.ParsedBundle("gavel", b)).PrepareForEval(ctx); err != nil {
					t.Fatal(err)
				}
			}
			g := newGenerator(b, 7)
			// A plan per distinct provider snapshot is what makes this slow: the inputs
			// share a pool of generated snapshots (open, half-open, failing, down).
			pool := make([]any, 16)
			for i := range pool {
				pool[i] = g.input()["providers"]
			}
			plans := map[string]ast.Value{}
			typical, profiled := 0, 0
			for i := 0; i < n; i++ {
				in := g.input()
				in["providers"] = pool[i%len(pool)]
				if i%3 == 0 {
					// a third as gavel sends them most: sampling settings that make a
					// request cacheable, one turn, no PII
					req := in["request"].(map[string]any)
					req["temperature"], req["n"], req["turns"] = 0, 1, 1
				}
				v, err := ast.InterfaceToValue(in)
				if err != nil {
					t.Fatal(err)
				}
				inline, err := rev.Evaluate(ctx, v)
				if err != nil {
					t.Fatal(err)
				}
				obj := v.(ast.Object).Copy()
				prov := obj.Get(ast.StringTerm("providers")).Value
				plan, ok := plans[prov.String()]
				if !ok {
					if plan, err = rev.Plan(ctx, prov); err != nil {
						t.Fatal(err)
					}
					plans[prov.String()] = plan
				}
				obj.Insert(ast.StringTerm("plan"), ast.NewTerm(plan))
				planned, err := rev.Evaluate(ctx, obj)
				if err != nil {
					t.Fatal(err)
				}
				if planned.Compare(inline) != 0 {
					t.Fatalf("input %d: planned decision\n  %v\ndiffers from inline\n  %v\ninput: %v", i, planned, inline, v)
				}
				for j, count := range []*int{&typical, &profiled} {
					rs, err := paths[j].Eval(ctx, rego.EvalParsedInput(obj))
					if err != nil {
						t.Fatal(err)
					}
					if len(rs) > 0 {
						*count++
					}
				}
			}
			t.Logf("%d inputs: %d typical, %d profiled", n, typical, profiled)
			if typical < n/50 || profiled < n/50 {
				t.Errorf("too few inputs took the precomputed paths: %d typical, %d profiled of %d", typical, profiled, n)
			}
		})
	}
}
