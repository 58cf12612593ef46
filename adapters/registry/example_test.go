package registry_test

import (
	"context"
	"fmt"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/registry"
)

// ExampleNew builds the built-in mock provider from a spec, as gavel.yaml declares one,
// and makes one chat call: the mock answers at once, with a reply derived from the
// prompt, so it stands in for a real upstream in tests and `make run`.
func ExampleNew() {
	p, err := registry.New(registry.Spec{Name: "local", Type: registry.TypeMock})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The model is already the upstream model name when a provider sees the request.
	resp, err := p.Chat(context.Background(), &adapters.ChatRequest{
		Model:    "mock-small",
		Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent("Hello!")}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("provider:", p.Name())
	fmt.Println("model:", resp.Model)
	fmt.Println("content:", resp.Choices[0].Message.Content)
	fmt.Println("finish:", resp.Choices[0].FinishReason)
	fmt.Println("usage:", resp.Usage.PromptTokens, "+", resp.Usage.CompletionTokens, "tokens")
	// Output:
	// provider: local
	// model: mock-small
	// content: mock reply from mock-small: estuary valley estuary tundra fjord estuary.
	// finish: stop
	// usage: 1 + 18 tokens
}
