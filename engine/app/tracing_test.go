package app

import (
	"context"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/config"
)

func TestTracingFollowsTheEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		on      bool
		wantErr string
	}{
		{"no OTEL variables", nil, false, ""},
		{"service name alone", map[string]string{"OTEL_SERVICE_NAME": "x"}, false, ""},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, true, ""},
		{"grpc endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, ""},
		{"bad exporter fails New", map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, false, "unknown exporter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Ledger.Store = "memory"
			g, err := New(context.Background(), cfg, func(k string) string { return tc.env[k] }, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close() // with an unreachable collector, Close still returns (bounded flush)
			if on := g.tracing != nil; on != tc.on {
				t.Errorf("tracing on = %v, want %v", on, tc.on)
			}
		})
	}
}
