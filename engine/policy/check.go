package policy

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/signals"
)

// ErrCannotDecide marks a bundle that leaves data.gavel.decision undefined, or answers
// something ParseDecision refuses, for an input gavel will send it: activated, it would
// answer 500 to every such request while /readyz says ready.
var ErrCannotDecide = errors.New("the bundle cannot decide")

// checkModel is a model no catalog names: the input of the denied case.
const checkModel = "gavel-check/no-such-model"

// CheckInputs are the representative inputs a candidate revision must decide before it
// may serve: every alias and catalog id of its data (and a model it does not know), as
// chat and embeddings, streamed and not. They carry no provider signals, the state of a
// gateway that has just started.
func (r *Revision) CheckInputs() []Input {
	models := make([]string, 0, len(r.Data.Aliases)+len(r.Data.Catalog)+1)
	for a := range r.Data.Aliases {
		models = append(models, a)
	}
	for id := range r.Data.Catalog {
		if _, dup := r.Data.Aliases[id]; !dup {
			models = append(models, id)
		}
	}
	sort.Strings(models)
	models = append(models, checkModel)
	msgs := []Message{{Role: "user", Text: "hello"}}
	var out []Input
	for _, m := range models {
		for _, req := range []Request{
			{ID: "check", Endpoint: "chat", Model: m, Messages: msgs, EstInputTokens: 8},
			{ID: "check", Endpoint: "chat", Model: m, Messages: msgs, EstInputTokens: 8, Stream: true},
			{ID: "check", Endpoint: "embeddings", Model: m, Messages: msgs, EstInputTokens: 2},
		} {
			out = append(out, Input{Request: req})
		}
	}
	return out
}

// checkProviders is input.providers with every provider the catalog names healthy and
// idle: the common case, and the one every alias must be able to decide.
func (r *Revision) checkProviders() ast.Value {
	seen := map[string]bool{}
	var snap []signals.ProviderStats
	for _, e := range r.Data.Catalog {
		if !seen[e.Provider] {
			seen[e.Provider] = true
			snap = append(snap, signals.ProviderStats{Name: e.Provider, Healthy: true, Stats: signals.Stats{Circuit: signals.Closed}})
		}
	}
	sort.Slice(snap, func(i, j int) bool { return snap[i].Name < snap[j].Name })
	return ProvidersValue(snap)
}

// Check evaluates the revision on CheckInputs and fails with ErrCannotDecide, naming the
// first input that got no usable decision. A denial is a decision: only undefined and
// unparsable results fail. Evaluation errors (conflicting rules, type errors) fail too.
func (r *Revision) Check(ctx context.Context) error {
	// The plan over no signals, as the planner hands it to requests: evaluating it once
	// here, not inline per input, keeps the check to a few milliseconds. A plan that
	// fails is evaluated inline by the decision, as in production.
	providers := r.checkProviders()
	plan, _ := r.Plan(ctx, providers)
	for _, in := range r.CheckInputs() {
		in.Providers, in.Plan = providers, plan
		d, err := r.Decide(ctx, in.Value())
		if err == nil && d.Fault != nil && r.FaultExample == "" {
			r.FaultExample = describe(in.Request)
		}
		if err != nil {
			what := describe(in.Request)
			if errors.Is(err, ErrUndefined) || errors.Is(err, ErrInvalidDecision) {
				return fmt.Errorf("%w: %s: %w", ErrCannotDecide, what, err)
			}
			return fmt.Errorf("evaluation of a %s: %w", what, err)
		}
	}
	return nil
}

// describe names a check input in errors: "streamed chat request for model \"x\"".
func describe(req Request) string {
	what := fmt.Sprintf("%s request for model %q", req.Endpoint, req.Model)
	if req.Stream {
		what = "streamed " + what
	}
	return what
}
