package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/mock"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/signals"
	"github.com/gavel-gw/gavel/engine/telemetry"
)

// One chat request through the pipeline, the way engine/server drives it, over gavel's
// default bundle and its offline mock provider: Start, Admit (policy decision, budgets,
// rate limits), execute, Finish (charge, metrics, decision log).
func Example() {
	ctx := context.Background()

	// The policy: the default bundle compiled into gavel.
	engine := policy.New()
	b, err := policy.LoadEmbedded()
	if err != nil {
		panic(err)
	}
	if _, err := engine.Activate(ctx, b, "embedded"); err != nil {
		panic(err)
	}

	// The upstream: the mock provider, which answers without a network. The tracker
	// tells the policy which providers are configured and healthy.
	upstream, err := mock.New(mock.Config{Name: "mock"})
	if err != nil {
		panic(err)
	}
	tracker := signals.New(0)
	metrics := telemetry.NewMetrics()
	exec := executor.New(executor.Options{Providers: map[string]adapters.Provider{"mock": upstream}, Tracker: tracker, Metrics: metrics})
	defer exec.Close()

	store := memstore.New(memstore.Options{})
	defer store.Close()
	p := pipeline.New(pipeline.Options{
		Engine:   engine,
		Planner:  policy.NewPlanner(engine, tracker, 0, slog.New(slog.DiscardHandler)),
		Executor: exec,
		Metrics:  metrics,
		Ledger:   store,
	})

	// The caller, as engine/auth authenticates it from a virtual key.
	rec := policy.KeyRecord{KeyID: "k-docs", User: "ana", Team: "docs"}
	caller := &auth.Caller{Record: rec, Value: policy.CallerValue(rec)}
	req := &adapters.ChatRequest{Model: "fast", Messages: []adapters.Message{
		{Role: "user", Content: &adapters.Content{Text: "Say hello."}},
	}}

	x := p.Start(pipeline.EndpointChat)
	if err := p.AdmitChat(ctx, x, caller, req, ""); err != nil {
		// A *Denied, *BudgetExceeded, *RateLimited or *PolicyError: the server maps it to
		// the client's error, then calls Finish all the same.
		p.Finish(x, 403, "denied")
		fmt.Println("refused:", err)
		return
	}
	ctx, cancel := p.Context(ctx, x) // the policy's timeout, else the configured one
	defer cancel()
	resp, err := p.Chat(ctx, x)
	if err != nil {
		p.Finish(x, 502, "upstream_error")
		fmt.Println("failed:", err)
		return
	}
	p.Finish(x, 200, "")

	fmt.Println("allow:", x.Decision().Allow)
	fmt.Println("route:", x.Route())
	fmt.Println("reply:", resp.Choices[0].Message.Content.String())
	// Output:
	// allow: true
	// route: mock/mock-small
	// reply: mock reply from mock-small: cedar juniper yarrow umber indigo estuary.
}
