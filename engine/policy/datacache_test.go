package policy

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Reading data through dataReads and readStore gives what OPA's own cache and the
// in-memory store give, for references that exist, that do not, and that the store
// resolves differently from ast.Value.Find.
func TestDataReadsMatchTheStore(t *testing.T) {
	rev := mustEmbedded(t)
	ctx := context.Background()
	inner := rev.store.(*readStore).Store
	for _, q := range []string{
		`data`, `data.gavel`, `data.system`, `data.gavel.routing.tiers[0]`, `data.gavel.routing.tiers[7]`,
		`data.gavel.routing.tiers["0"]`, `data.gavel.routing.tiers["x"]`, `data.gavel.budgets[0]`,
		`data.gavel.pii_policy.deny_terms[0]`, `data.gavel.tier_access.gold`, `data.gavel.routing.max_targets.x`,
		`data.gavel.catalog["openai/gpt-4o"].price`, `data.nothing`, `[x | x := data.gavel.routing.tiers[_]]`,
		`{k | data.gavel.aliases[k]}`, `data.gavel.routing.weights[1]`,
	} {
		body, err := rev.compiler.QueryCompiler().Compile(ast.MustParseBody("x = " + q))
		if err != nil {
			t.Fatal(q, err)
		}
		eval := func(fast bool) []string {
			tq := topdown.NewQuery(body).WithCompiler(rev.compiler).WithTransaction(rev.txn)
			if fast {
				tq = tq.WithStore(rev.store).WithBaseCache(rev.data)
			} else {
				tq = tq.WithStore(inner)
			}
			var out []string
			err := tq.Iter(ctx, func(qr topdown.QueryResult) error {
				out = append(out, qr[ast.Var("x")].String())
				return nil
			})
			if err != nil {
				t.Fatal(q, err)
			}
			return out
		}
		got, want := eval(true), eval(false)
		if len(got) != len(want) {
			t.Fatalf("%s: %v, the store gives %v", q, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %v, the store gives %v", q, got, want)
			}
		}
	}
}
