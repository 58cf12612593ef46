package config

import (
	"strings"
	"testing"
)

func TestMetricsConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       Metrics
		err        string
	}{
		{name: "unset: on the main listener, open", yaml: ``},
		{name: "own listener and token", yaml: "metrics: {listen: 127.0.0.1:9090, token: ${METRICS_TOKEN}}",
			want: Metrics{Listen: "127.0.0.1:9090", Token: "s3cret"}},
		{name: "not an address", yaml: "metrics: {listen: 9090}", err: "metrics.listen"},
		{name: "the main address", yaml: "listen: 127.0.0.1:8080\nmetrics: {listen: 127.0.0.1:8080}", err: "must differ"},
		{name: "unknown field", yaml: "metrics: {path: /m}", err: "path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(map[string]string{"METRICS_TOKEN": "s3cret"}))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Metrics != tc.want {
				t.Errorf("metrics = %+v, want %+v", c.Metrics, tc.want)
			}
		})
	}
}
