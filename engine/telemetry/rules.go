package telemetry

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons come from Rego, so a policy may put values into them ("route.alias:smart",
// "compliance.deny_term:<term>"). These bounds keep the series count, and the memory of
// the cache below, fixed whatever a policy writes.
const (
	// MaxRules is how many distinct rule names get their own series; later ones count as OtherRule.
	MaxRules = 100
	// OtherRule labels reasons that are not rule names, or rules past MaxRules.
	OtherRule = "other"

	maxRuleLen       = 64
	maxCachedReasons = 1024
)

// ruleCounter counts decision reasons by rule. Reasons repeat from request to request, so
// the counter for a raw reason is cached: the hot path is one sync.Map load per reason
// instead of normalising and hashing label values.
type ruleCounter struct {
	vec    *prometheus.CounterVec
	cache  sync.Map // raw reason → prometheus.Counter
	cached atomic.Int32

	mu    sync.Mutex
	names map[string]struct{}
}

func newRuleCounter(reg prometheus.Registerer) *ruleCounter {
	r := &ruleCounter{names: map[string]struct{}{}, vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "decision_rules_total",
		Help: "Rules that fired in policy decisions (the decision's reasons up to the first ':'), by rule.",
	}, []string{"rule"})}
	reg.MustRegister(r.vec)
	return r
}

// RuleName is the rule a reason names: the part before the first ':' ("route.alias:smart"
// → "route.alias"), or OtherRule when that is not an identifier of at most 64 characters.
func RuleName(reason string) string {
	end := len(reason)
	for i := 0; i < len(reason); i++ {
		if reason[i] == ':' {
			end = i
			break
		}
	}
	if end == 0 || end > maxRuleLen {
		return OtherRule
	}
	for i := 0; i < end; i++ {
		c := reason[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return OtherRule
		}
	}
	return reason[:end]
}

func (r *ruleCounter) counter(reason string) prometheus.Counter {
	if c, ok := r.cache.Load(reason); ok {
		return c.(prometheus.Counter)
	}
	name := RuleName(reason)
	r.mu.Lock()
	if _, ok := r.names[name]; !ok && name != OtherRule {
		if len(r.names) >= MaxRules {
			name = OtherRule
		} else {
			r.names[name] = struct{}{}
		}
	}
	r.mu.Unlock()
	c := r.vec.WithLabelValues(name)
	if r.cached.Load() < maxCachedReasons {
		if _, loaded := r.cache.LoadOrStore(reason, c); !loaded {
			r.cached.Add(1)
		}
	}
	return c
}

// DecisionRules counts the rules that fired in one decision (its reasons).
func (m *Metrics) DecisionRules(reasons []string) {
	if m == nil || m.rules == nil {
		return
	}
	for _, reason := range reasons {
		m.rules.counter(reason).Inc()
	}
}
