package pipeline

import (
	"testing"

	"github.com/gavel-gw/gavel/engine/tokens"
)

// The max_tokens a budget denial suggests is the largest whose estimate still fits.
func TestFittingMaxTokens(t *testing.T) {
	p := tokens.Price{InputMicroUSDPerMTok: 1_000_000, OutputMicroUSDPerMTok: 10_000_000} // 1 and 10 µUSD per token
	tests := []struct {
		name          string
		estIn, maxOut int
		remaining     int64
		want          int
	}{
		{"room for 50 output tokens", 100, 1000, 100 + 500, 50},
		{"input alone does not fit", 100, 1000, 99, 0},
		{"one token", 100, 1000, 110, 1},
		{"no max_tokens: below the default", 0, 0, 10 * int64(tokens.DefaultMaxOutputTokens-1), tokens.DefaultMaxOutputTokens - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fittingMaxTokens(p, tc.estIn, tc.maxOut, tc.remaining)
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
			if got > 0 && tokens.EstimateCost(p, tc.estIn, got) > tc.remaining {
				t.Errorf("%d does not fit", got)
			}
		})
	}
}
