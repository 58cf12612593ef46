package telemetry

import "github.com/prometheus/client_golang/prometheus"

// shadowMetrics compare shadow answers with the primary's and count hedged attempts.
type shadowMetrics struct {
	similarity   *prometheus.HistogramVec
	shadowTokens *prometheus.CounterVec
	shadowCost   *prometheus.CounterVec
	hedges       *prometheus.CounterVec
}

// similarityBuckets spread 0..1 evenly, with finer steps near 1 where answers that agree
// sit.
var similarityBuckets = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1}

func (m *Metrics) registerShadow() {
	s := &m.shadowExtra
	s.similarity = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "gavel", Name: "shadow_similarity",
		Help: "Similarity (0..1, cosine over hashed words) of a shadow answer to the primary's, by shadow target and experiment.", Buckets: similarityBuckets,
	}, []string{"provider", "model", "experiment"})
	s.shadowTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "shadow_tokens_total",
		Help: "Tokens used by shadow requests, by target, experiment and direction (input or output).",
	}, []string{"provider", "model", "experiment", "direction"})
	s.shadowCost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "shadow_cost_micro_usd_total",
		Help: "Cost of shadow requests at catalog prices, in micro-USD, by target and experiment.",
	}, []string{"provider", "model", "experiment"})
	s.hedges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "hedges_total",
		Help: "Targets of hedged requests (more than one attempt in flight) by whether their answer won or was cancelled (lost).",
	}, []string{"provider", "model", "outcome"})
	m.reg.MustRegister(s.similarity, s.shadowTokens, s.shadowCost, s.hedges)
}

// ShadowSimilarity records how alike a shadow answer was to the primary's.
func (m *Metrics) ShadowSimilarity(provider, model, experiment string, v float64) {
	if m == nil {
		return
	}
	m.shadowExtra.similarity.WithLabelValues(provider, model, experiment).Observe(v)
}

// ShadowUsage counts a shadow call's tokens and cost.
func (m *Metrics) ShadowUsage(provider, model, experiment string, input, output int, costMicroUSD int64) {
	if m == nil {
		return
	}
	if input > 0 {
		m.shadowExtra.shadowTokens.WithLabelValues(provider, model, experiment, "input").Add(float64(input))
	}
	if output > 0 {
		m.shadowExtra.shadowTokens.WithLabelValues(provider, model, experiment, "output").Add(float64(output))
	}
	if costMicroUSD > 0 {
		m.shadowExtra.shadowCost.WithLabelValues(provider, model, experiment).Add(float64(costMicroUSD))
	}
}

// ShadowSkipped counts a shadow request that was not sent (outcome "budget": its budget
// scope is spent), under gavel_shadow_requests_total.
func (m *Metrics) ShadowSkipped(provider, model, experiment, outcome string) {
	if m == nil {
		return
	}
	m.shadows.WithLabelValues(provider, model, experiment, outcome).Inc()
}

// Hedge counts one target of a hedged request: outcome "won" or "lost".
func (m *Metrics) Hedge(provider, model, outcome string) {
	if m == nil {
		return
	}
	m.shadowExtra.hedges.WithLabelValues(provider, model, outcome).Inc()
}
