package telemetry

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are gavel's Prometheus collectors, registered on their own registry.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	requestSeconds  *prometheus.HistogramVec
	overheadSeconds prometheus.Histogram
	decisions       *prometheus.CounterVec
	decisionSeconds prometheus.Histogram
	attempts        *prometheus.CounterVec
	upstreamSeconds *prometheus.HistogramVec
	ttftSeconds     *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	fallbacks       *prometheus.CounterVec
	breakerState    *prometheus.GaugeVec
	bundleInfo      *prometheus.GaugeVec
	bundleActivated prometheus.Gauge
	streamErrors    *prometheus.CounterVec
	tokens          *prometheus.CounterVec
	shadows         *prometheus.CounterVec
	shadowSeconds   *prometheus.HistogramVec
	shadowDropped   prometheus.Counter
	costMicroUSD    *prometheus.CounterVec
	budgetSpent     *prometheus.GaugeVec
	budgetRemaining *prometheus.GaugeVec
	ledgerDown      *prometheus.CounterVec
	rules           *ruleCounter
	experiments     *experimentMetrics
	dlog            decisionLogMetrics
	bundles         *bundleMetrics
	shadowExtra     shadowMetrics          // shadow.go
	faults          *prometheus.CounterVec // faults.go
	cache           cacheMetrics           // cache.go
	semantic        semanticMetrics        // cache_semantic.go
	canary          *canaryMetrics         // canary.go
	continuations   *prometheus.CounterVec // continuations.go
	hot             hot                    // handles.go: children of the per-request vectors
}

// Latency buckets from 1 ms to ~2 min: LLM calls are slow and widely spread.
var upstreamBuckets = prometheus.ExponentialBuckets(0.001, 2.5, 14)

// Overhead buckets from 10 µs to ~100 ms: gavel's own time should sit at the bottom.
var overheadBuckets = prometheus.ExponentialBuckets(0.00001, 2, 14)

// NewMetrics creates and registers gavel's collectors plus the Go and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "requests_total",
		Help: "Client requests by endpoint, route taken (provider/model, or none), HTTP status and A/B arm.",
	}, []string{"endpoint", "route", "status", "arm"})
	m.requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "gavel", Name: "request_duration_seconds",
		Help: "Client request latency, to the last byte.", Buckets: upstreamBuckets,
	}, []string{"endpoint", "stream"})
	m.overheadSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "gavel", Name: "overhead_seconds",
		Help: "Time gavel spent on a request outside upstream calls (auth, decode, policy, encode).", Buckets: overheadBuckets,
	})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "decisions_total",
		Help: "Policy decisions by outcome (allow, deny, error).",
	}, []string{"outcome"})
	m.decisionSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "gavel", Name: "decision_duration_seconds",
		Help: "Time to build the policy input and evaluate data.gavel.decision.", Buckets: overheadBuckets,
	})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "upstream_attempts_total",
		Help: "Upstream attempts by provider, model and outcome (ok or an error kind).",
	}, []string{"provider", "model", "outcome"})
	m.upstreamSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "gavel", Name: "upstream_duration_seconds",
		Help: "Upstream attempt latency (to response headers and first chunk for streams).", Buckets: upstreamBuckets,
	}, []string{"provider", "model"})
	m.ttftSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "gavel", Name: "time_to_first_token_seconds",
		Help: "Time from the start of an upstream streaming attempt to its first chunk.", Buckets: upstreamBuckets,
	}, []string{"provider", "model"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "retries_total",
		Help: "Retries of an upstream attempt at the same target.",
	}, []string{"provider", "model"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "fallbacks_total",
		Help: "Requests that moved on from a failed target to the next one.",
	}, []string{"from", "to"})
	m.breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gavel", Name: "circuit_breaker_state",
		Help: "Circuit breaker state per provider and model: 0 closed, 1 half-open, 2 open.",
	}, []string{"provider", "model"})
	m.bundleInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gavel", Name: "bundle_info",
		Help: "The active policy bundle revision (value 1) and its source.",
	}, []string{"revision", "source"})
	m.bundleActivated = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "gavel", Name: "bundle_activation_timestamp_seconds",
		Help: "When the active policy bundle was activated.",
	})
	m.streamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "stream_errors_total",
		Help: "Streams that ended with an error event after the first byte reached the client.",
	}, []string{"provider", "model"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "tokens_total",
		Help: "Tokens used by client requests, by provider, model, the caller's team and direction (input or output).",
	}, []string{"provider", "model", "team", "direction"})
	m.shadows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "shadow_requests_total",
		Help: "Shadow (mirrored) requests by target, experiment and outcome.",
	}, []string{"provider", "model", "experiment", "outcome"})
	m.shadowSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "gavel", Name: "shadow_duration_seconds",
		Help: "Latency of shadow requests.", Buckets: upstreamBuckets,
	}, []string{"provider", "model", "experiment"})
	m.shadowDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "gavel", Name: "shadow_dropped_total",
		Help: "Shadow requests dropped because the shadow queue was full.",
	})
	m.costMicroUSD = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "cost_micro_usd_total",
		Help: "Cost of client requests at catalog prices, in micro-USD, by provider, model and the caller's team.",
	}, []string{"provider", "model", "team"})
	m.budgetSpent = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gavel", Name: "budget_spent_micro_usd",
		Help: "Spend in the current period of budgets requests touched, in micro-USD.",
	}, []string{"scope", "id", "period"})
	m.budgetRemaining = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "gavel", Name: "budget_remaining_micro_usd",
		Help: "What is left in the current period of budgets requests touched, in micro-USD.",
	}, []string{"scope", "id", "period"})
	m.ledgerDown = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "ledger_unavailable_total",
		Help: "Ledger operations the shared store (Redis) could not serve, by operation.",
	}, []string{"op"})
	m.registerDecisionLog()
	m.registerShadow()
	m.registerFaults()
	m.registerCache()
	m.registerSemantic()
	m.registerContinuations()
	m.reg.MustRegister(m.shadows, m.shadowSeconds, m.shadowDropped, m.costMicroUSD, m.budgetSpent, m.budgetRemaining, m.ledgerDown)
	m.reg.MustRegister(m.requests, m.requestSeconds, m.overheadSeconds, m.decisions, m.decisionSeconds,
		m.attempts, m.upstreamSeconds, m.ttftSeconds, m.retries, m.fallbacks, m.breakerState, m.bundleInfo,
		m.bundleActivated, m.streamErrors, m.tokens,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.rules = newRuleCounter(m.reg)
	m.experiments = newExperimentMetrics(m.reg)
	m.registerBundle()
	m.registerCanary()
	return m
}

// Registry exposes the registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request records a finished client request.
func (m *Metrics) Request(endpoint, route, status, arm string, stream bool, d time.Duration) {
	if m == nil {
		return
	}
	m.hot.requests.of(m.requests, labels4{endpoint, route, status, arm}, vals4).Inc()
	s := "false"
	if stream {
		s = "true"
	}
	m.hot.requestSeconds.of(m.requestSeconds, labels2{endpoint, s}, vals2).Observe(d.Seconds())
}

// Overhead records gavel's own time for a request.
func (m *Metrics) Overhead(d time.Duration) {
	if m == nil {
		return
	}
	m.overheadSeconds.Observe(d.Seconds())
}

// Decision records a policy evaluation.
func (m *Metrics) Decision(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.hot.decisions.of(m.decisions, labels1{outcome}, vals1).Inc()
	m.decisionSeconds.Observe(d.Seconds())
}

// Attempt records one upstream attempt.
func (m *Metrics) Attempt(provider, model, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.hot.attempts.of(m.attempts, labels3{provider, model, outcome}, vals3).Inc()
	m.hot.upstreamSeconds.of(m.upstreamSeconds, labels2{provider, model}, vals2).Observe(d.Seconds())
}

// TTFT records a stream's time to first token.
func (m *Metrics) TTFT(provider, model string, d time.Duration) {
	if m == nil {
		return
	}
	m.ttftSeconds.WithLabelValues(provider, model).Observe(d.Seconds())
}

// Retry counts a retry at the same target.
func (m *Metrics) Retry(provider, model string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(provider, model).Inc()
}

// Fallback counts a move from one target to the next.
func (m *Metrics) Fallback(from, to string) {
	if m == nil {
		return
	}
	m.fallbacks.WithLabelValues(from, to).Inc()
}

// BreakerState publishes a breaker's state: 0 closed, 1 half-open, 2 open.
func (m *Metrics) BreakerState(provider, model string, state int) {
	if m == nil {
		return
	}
	m.breakerState.WithLabelValues(provider, model).Set(float64(state))
}

// Bundle publishes the active bundle revision.
func (m *Metrics) Bundle(revision, source string, activated time.Time) {
	if m == nil {
		return
	}
	m.bundleInfo.Reset()
	m.bundleInfo.WithLabelValues(revision, source).Set(1)
	m.bundleActivated.Set(float64(activated.UnixNano()) / 1e9)
}

// StreamError counts a stream that failed after its first byte reached the client.
func (m *Metrics) StreamError(provider, model string) {
	if m == nil {
		return
	}
	m.streamErrors.WithLabelValues(provider, model).Inc()
}

// Tokens counts a request's usage; team is the caller's ("" when none).
func (m *Metrics) Tokens(provider, model, team string, input, output int) {
	if m == nil {
		return
	}
	if input > 0 {
		m.hot.tokens.of(m.tokens, labels4{provider, model, team, "input"}, vals4).Add(float64(input))
	}
	if output > 0 {
		m.hot.tokens.of(m.tokens, labels4{provider, model, team, "output"}, vals4).Add(float64(output))
	}
}

// Shadow records a finished shadow request.
func (m *Metrics) Shadow(provider, model, experiment, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.shadows.WithLabelValues(provider, model, experiment, outcome).Inc()
	m.shadowSeconds.WithLabelValues(provider, model, experiment).Observe(d.Seconds())
}

// ShadowDropped counts a shadow request dropped for lack of queue space.
func (m *Metrics) ShadowDropped() {
	if m == nil {
		return
	}
	m.shadowDropped.Inc()
}

// Cost counts what a request cost at catalog prices; team is the caller's ("" when none).
func (m *Metrics) Cost(provider, model, team string, microUSD int64) {
	if m == nil || microUSD <= 0 {
		return
	}
	m.hot.cost.of(m.costMicroUSD, labels3{provider, model, team}, vals3).Add(float64(microUSD))
}

// Budget publishes a budget's standing.
func (m *Metrics) Budget(scope, id, period string, spent, remaining int64) {
	if m == nil {
		return
	}
	m.budgetSpent.WithLabelValues(scope, id, period).Set(float64(spent))
	m.budgetRemaining.WithLabelValues(scope, id, period).Set(float64(remaining))
}

// LedgerUnavailable counts an operation the shared store could not serve.
func (m *Metrics) LedgerUnavailable(op string) {
	if m == nil {
		return
	}
	m.ledgerDown.WithLabelValues(op).Inc()
}

// InitLedger publishes gavel_ledger_unavailable_total at 0 for each operation the shared
// store reports. A counter that only appears at its first failure starts at that count, so
// increase() over a short outage that then recovers reads 0 and the alert never fires.
func (m *Metrics) InitLedger(ops []string) {
	if m == nil {
		return
	}
	for _, op := range ops {
		m.ledgerDown.WithLabelValues(op)
	}
}

// LedgerQueue publishes the shared store's queue of commits that could not reach it:
// gavel_ledger_pending_commits (waiting for the store), gavel_ledger_replayed_commits_total
// (applied later) and gavel_ledger_dropped_commits_total (lost because the queue was
// full). stats is read at every scrape. Call it once per registry.
func (m *Metrics) LedgerQueue(stats func() (pending int, replayed, dropped uint64)) {
	if m == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gavel", Name: "ledger_pending_commits",
			Help: "Charges waiting to be replayed to the shared store (Redis) after it could not be reached."},
			func() float64 { p, _, _ := stats(); return float64(p) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gavel", Name: "ledger_replayed_commits_total",
			Help: "Queued charges later applied to the shared store (or found already applied)."},
			func() float64 { _, r, _ := stats(); return float64(r) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gavel", Name: "ledger_dropped_commits_total",
			Help: "Queued charges dropped because the replay queue was full: spend the shared store never saw."},
			func() float64 { _, _, d := stats(); return float64(d) }),
	)
}
