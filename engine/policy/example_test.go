package policy_test

import (
	"context"
	"fmt"

	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/signals"
)

// Example asks the embedded default policy where a chat request for the alias "smart"
// should go when only the openai and mock providers are configured: load and prepare the
// bundle, build the input, evaluate data.gavel.decision and parse it into a Decision.
func Example() {
	ctx := context.Background()

	// The bundle compiled into the binary: policies/*.rego plus bundles/gavel/data.json.
	b, err := policy.LoadEmbedded()
	if err != nil {
		fmt.Println(err)
		return
	}
	// Prepare compiles it once; a gateway activates it with (*policy.Engine).Activate.
	rev, err := policy.Prepare(ctx, b, "embedded")
	if err != nil {
		fmt.Println(err)
		return
	}

	// input.providers: the configured providers and their live signals (none yet, so all
	// healthy), and the routing plan evaluated over them, as the gateway's Planner does.
	tr := signals.New(0)
	tr.Register("openai")
	tr.Register("mock")
	providers := policy.ProvidersValue(tr.Snapshot())
	plan, err := rev.Plan(ctx, providers)
	if err != nil {
		fmt.Println(err)
		return
	}

	in := policy.Input{
		Request: policy.Request{
			Endpoint:       "chat",
			Model:          "smart",
			Messages:       []policy.Message{{Role: "user", Text: "Summarise the release notes."}},
			EstInputTokens: 8,
		},
		Providers: providers,
		Plan:      plan,
	}
	raw, err := rev.Evaluate(ctx, in.Value()) // what Rego answered, as an OPA value
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := policy.ParseDecision(raw) // the one strict parser into decision.Decision
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("allow:", d.Allow)
	fmt.Println("primary:", d.Targets[0])
	for _, t := range d.Targets[1:] {
		fmt.Println("fallback:", t)
	}
	fmt.Println("reasons:", d.Reasons)
	// Output:
	// allow: true
	// primary: openai/gpt-4o
	// fallback: mock/mock-large
	// fallback: openai/gpt-4o-mini
	// fallback: mock/mock-small
	// reasons: [route.alias:smart route.skipped_unavailable]
}
