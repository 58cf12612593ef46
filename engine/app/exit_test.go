package app

import (
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/config"
)

// ExitBound adds up every wait of the shutdown sequence (shutdown, then Close); a
// deployment's kill timeout is checked against it (deploy/validate).
func TestExitBound(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want time.Duration
	}{
		{"defaults: 30 s grace, 1 s margin, 5 s settling, 5 s decision log, 5 s spans", "", 46 * time.Second},
		{"a longer grace and decision-log flush", "shutdown_timeout: 2m\ndecision_log: {flush_timeout: 10s}\n", 141 * time.Second},
		{"a short grace keeps a quarter of it as the margin", "shutdown_timeout: 2s\n", 2*time.Second + 500*time.Millisecond + 15*time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tc.yaml), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			if got := ExitBound(cfg); got != tc.want {
				t.Errorf("ExitBound = %v, want %v", got, tc.want)
			}
		})
	}
}
