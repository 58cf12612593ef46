package executor_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/mock"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/executor"
)

// down is an upstream that is always overloaded: every call fails with a 503.
type down struct{ calls atomic.Int32 }

func (d *down) Name() string { return "down" }

func (d *down) Chat(context.Context, *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	d.calls.Add(1)
	return nil, &adapters.Error{Provider: "down", Kind: adapters.KindOverloaded, Status: 503, Message: "overloaded"}
}

func (d *down) ChatStream(context.Context, *adapters.ChatRequest) (adapters.ChunkStream, error) {
	d.calls.Add(1)
	return nil, &adapters.Error{Provider: "down", Kind: adapters.KindOverloaded, Status: 503, Message: "overloaded"}
}

// Example shows failover: the decision's primary target fails with a 503, which the
// executor classifies as worth trying elsewhere, so the request is served by the next
// target, the mock.
func Example() {
	primary := &down{}
	backup, err := mock.New(mock.Config{Name: "mock"})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Resilience is per provider; here no retries and a short attempt deadline, so the
	// walk moves on at once.
	quick := executor.Resilience{Timeout: 2 * time.Second, MaxRetries: 0}
	ex := executor.New(executor.Options{
		Providers:  map[string]adapters.Provider{"down": primary, "mock": backup},
		Resilience: map[string]executor.Resilience{"down": quick, "mock": quick},
	})

	// The decision is what the policy concluded (see engine/policy): allowed, and the
	// targets to try in order.
	d := &decision.Decision{
		Allow:   true,
		Targets: []decision.Target{{Provider: "down", Model: "big"}, {Provider: "mock", Model: "mock-small"}},
		Limits:  decision.Limits{MaxRetries: 0},
	}
	req := &adapters.ChatRequest{
		Model:    "smart", // what the client asked for; each target gets its own model
		Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent("Hello!")}},
	}
	res, err := ex.Chat(context.Background(), req, d)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("calls to down:", primary.calls.Load())
	fmt.Println("answered by:", res.Target.String())
	fmt.Println("content:", res.Response.Choices[0].Message.Content)
	// Output:
	// calls to down: 1
	// answered by: mock/mock-small
	// content: mock reply from mock-small: estuary valley estuary tundra fjord estuary.
}
