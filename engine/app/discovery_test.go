package app

import (
	"context"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/config"
)

// discover_models on a provider that cannot list its models is a startup error naming it,
// not a setting silently ignored.
func TestDiscoverModelsNeedsALister(t *testing.T) {
	tests := []struct{ yaml, wantErr string }{
		{"providers:\n  - {name: m, type: mock, discover_models: true}", "provider m: discover_models: a provider of type mock cannot list its models"},
		{"providers:\n  - {name: m, type: mock, models: [{name: mock-1, aliases: [x]}]}", ""},
	}
	for _, tc := range tests {
		cfg, err := config.Parse([]byte(tc.yaml+"\nledger: {store: memory}\n"), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(context.Background(), cfg, func(string) string { return "" }, nil)
		if tc.wantErr == "" {
			if err != nil {
				t.Fatalf("%s: %v", tc.yaml, err)
			}
			if got := g.catalog.Models("m"); len(got) != 1 || got[0] != "mock-1" {
				t.Errorf("declared models = %v", got)
			}
			g.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("err = %v, want %q", err, tc.wantErr)
		}
	}
}
