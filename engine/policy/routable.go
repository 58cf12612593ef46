package policy

import (
	"context"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Routable is a name GET /v1/models lists: one the policy would route for the caller.
type Routable struct {
	ID string
	// OwnedBy is the provider of every target the policy chose, or "gavel" when they are
	// several.
	OwnedBy string
}

var kRoutes = ast.StringTerm("routes")

// Routable asks the policy, for every name its plan routes (else every alias and catalog
// id of its data), whether it would route a minimal request of that name for caller now
// (as chat, else as embeddings), and lists the names it would: what a client can use,
// nothing else. Budgets and rate limits are left out (input.spend and input.rate are
// empty): an exhausted budget is answered 429 on use, it does not hide models.
func (r *Revision) Routable(ctx context.Context, shared *Shared, caller ast.Value, nowNS int64) ([]Routable, error) {
	msgs := []Message{{Role: "user", Text: "hi"}}
	var out []Routable
	for _, name := range r.routeNames(shared.Plan) {
		for _, endpoint := range []string{"chat", "embeddings"} {
			in := Input{Request: Request{ID: "models", Endpoint: endpoint, Model: name, Messages: msgs, EstInputTokens: 1},
				Caller: caller, Providers: shared.Providers, Plan: shared.Plan, NowNS: nowNS}
			d, err := r.Decide(ctx, in.Value())
			if err != nil {
				return nil, err
			}
			if !d.Allow || len(d.Targets) == 0 {
				continue
			}
			owner := d.Targets[0].Provider
			for _, t := range d.Targets[1:] {
				if t.Provider != owner {
					owner = "gavel"
					break
				}
			}
			out = append(out, Routable{ID: name, OwnedBy: owner})
			break
		}
	}
	return out, nil
}

// routeNames lists the names the plan routes, sorted; without a plan, the data's aliases
// and catalog ids.
func (r *Revision) routeNames(plan ast.Value) []string {
	if obj, ok := plan.(ast.Object); ok {
		if t := obj.Get(kRoutes); t != nil {
			if routes, ok := t.Value.(ast.Object); ok {
				names := make([]string, 0, routes.Len())
				routes.Foreach(func(k, _ *ast.Term) {
					if name, ok := k.Value.(ast.String); ok {
						names = append(names, string(name))
					}
				})
				sort.Strings(names)
				return names
			}
		}
	}
	return r.Data.ModelIDs()
}
