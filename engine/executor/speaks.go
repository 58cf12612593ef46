package executor

import (
	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

// Speaks reports whether every target of d has a provider that passes protocol through
// natively (adapters.Speaker): what a request only a native upstream can serve (the
// Responses API's hosted tools) needs, since failover may reach any of them.
func (e *Executor) Speaks(d *decision.Decision, protocol string) bool {
	if d == nil || len(d.Targets) == 0 {
		return false
	}
	for _, t := range d.Targets {
		s, ok := e.providers[t.Provider].(adapters.Speaker)
		if !ok || !s.Speaks(protocol) {
			return false
		}
		if _, ok := e.providers[t.Provider].(adapters.Passthrough); !ok {
			return false
		}
	}
	return true
}
