package signals_test

import (
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/signals"
)

// The tests render snapshots with the policy's own conversion, so what they check is what
// input.providers holds.
func init() { signals.ProvidersValue = policy.ProvidersValue }
