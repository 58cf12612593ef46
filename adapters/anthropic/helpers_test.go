package anthropic

import (
	"context"
	"io"
	"testing"

	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
)

func mustProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// memStream is a stream over an in-memory body, bypassing HTTP, with a fixed "created".
func memStream(t testing.TB, r io.Reader, includeUsage bool) *stream {
	p, err := New(Config{Name: "mem"})
	if err != nil {
		t.Fatal(err)
	}
	return newStream(context.Background(), p, io.NopCloser(r), streamOptions{model: "requested-model", includeUsage: includeUsage, created: testCreated})
}

// testCreated stands in for time.Now in golden outputs.
const testCreated = 1700000000

// newTestProvider is the adapter's constructor for the shared tests in adaptertest.
func newTestProvider(tb testing.TB, baseURL, apiKey string) adaptertest.Provider {
	tb.Helper()
	p, err := New(Config{Name: "test", BaseURL: baseURL, APIKey: apiKey})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

var testAdapter = adaptertest.Adapter{New: newTestProvider, Request: simpleRequest}
