package policy

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkDecisionParts evaluates parts of the default library on their own, each with
// what it depends on, on BenchmarkDecision's inputs: where the allocations (and so,
// roughly, the time) of a decision go. "true" is the cost of an evaluation that does
// nothing. Each part is evaluated the way Revision.Evaluate evaluates the decision.
// Compare allocs/op between parts; a rule referred to from another costs an evaluation of
// its own.
//
//	go test -run '^$' -bench BenchmarkDecisionParts -benchmem -benchtime 200x ./engine/policy/
func BenchmarkDecisionParts(b *testing.B) {
	rev := mustEmbedded(b)
	ctx := context.Background()
	_, plan, caller := benchSetup(b, rev)
	prompt := strings.Repeat("Tell me about routing LLM traffic with policies. ", 40)
	msgs := []Message{{Role: "system", Text: "You are helpful."}, {Role: "user", Text: prompt}}
	inputs := []struct {
		name  string
		in    Input
		parts []string
	}{
		{"typical", Input{Request: Request{ID: "req", Endpoint: "chat", Model: "smart", EstInputTokens: 520, Bucket: 4242, Sample: 9000, Messages: msgs},
			Caller: caller, Providers: providers(b, allUp), Plan: plan, NowNS: 1},
			[]string{"true", "data.gavel.decision", "data.gavel.judged", "data.gavel.routed", "data.gavel.typical", "data.gavel.caching.decision", "data.gavel.compliance.blocked", "data.gavel.compliance.denied_terms", "data.gavel.compliance.denied_fields", "data.gavel.budget.exhausted", "data.gavel.access.denied",
				"data.gavel.budget.caller_limits_free", "data.gavel.access.key_model_denied"}},
		{"pii_tools_code", Input{Request: Request{ID: "req", Endpoint: "chat", Model: "fast", EstInputTokens: 520, Bucket: 4242, Sample: 9000, Messages: msgs,
			HasTools: true, HasCode: true, Metadata: map[string]string{"task": "chat"}},
			Caller: caller, Providers: providers(b, allUp), Plan: plan, NowNS: 1, PII: map[string]int{"email": 1}},
			[]string{"true", "data.gavel.decision", "data.gavel.targets", "data.gavel.reasons", "data.gavel.extras",
				"data.gavel.route.targets", "data.gavel.route.name", "data.gavel.route.planned", "data.gavel.route.unfiltered",
				"data.gavel.route.reasons", "data.gavel.route.notes", "data.gavel.other_reasons", "data.gavel.compliance.reasons",
				"data.gavel.experiments.reasons", "data.gavel.budget.reasons", "data.gavel.access.reasons", "data.gavel.chaos.reasons",
				"data.gavel.degrade.reasons", "data.gavel.compliance.redact", "data.gavel.compliance.blocked", "data.gavel.budget.exhausted", "data.gavel.judged", "data.gavel.routed", "data.gavel.compliance.pii_present", "data.gavel.route.content_matches", "data.gavel.experiments.targets", "data.gavel.budget.soft"}},
	}
	for _, tc := range inputs {
		v := tc.in.Value()
		for _, q := range tc.parts {
			body, result, err := rev.compileQuery(q)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(tc.name+"/"+strings.TrimPrefix(q, "data.gavel."), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := rev.eval(ctx, body, result, v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
