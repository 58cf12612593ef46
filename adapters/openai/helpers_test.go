package openai

import (
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

// newTestProvider is the adapter's constructor for the shared tests in adaptertest.
func newTestProvider(tb testing.TB, baseURL, apiKey string) adaptertest.Provider {
	tb.Helper()
	p, err := New(Config{Name: "test", BaseURL: baseURL, APIKey: apiKey})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

var testAdapter = adaptertest.Adapter{New: newTestProvider, Request: canonicalRequest}
