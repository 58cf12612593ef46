package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// cacheMetrics are the response cache's collectors (engine/cache, docs/cache.md).
type cacheMetrics struct {
	requests     *prometheus.CounterVec
	saved        *prometheus.CounterVec
	bytes        prometheus.Gauge
	evictions    *prometheus.CounterVec
	remoteErrors *prometheus.CounterVec
}

func (m *Metrics) registerCache() {
	c := &m.cache
	c.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "cache_requests_total",
		Help: "Requests the policy let use the response cache or coalescing, by result (hit, miss, coalesced: served by another request's upstream call, bypass: passed through, not cacheable) and the caller's team.",
	}, []string{"result", "team"})
	c.saved = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "cache_saved_micro_usd_total",
		Help: "What cache hits and coalesced requests would have cost upstream less what they were charged, micro-USD, by team.",
	}, []string{"team"})
	c.bytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "gavel", Name: "cache_bytes",
		Help: "Encoded bytes of the answers held in this replica's in-memory cache (L1).",
	})
	c.evictions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "cache_evictions_total",
		Help: "Entries the in-memory cache dropped, by reason (size: over its byte bound, expired).",
	}, []string{"reason"})
	c.remoteErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "cache_remote_errors_total",
		Help: "Failed calls to the shared cache (Redis, L2), by operation; each lookup that failed was served as a miss.",
	}, []string{"op"})
	for _, r := range []string{"size", "expired"} {
		c.evictions.WithLabelValues(r)
	}
	m.reg.MustRegister(c.requests, c.saved, c.bytes, c.evictions, c.remoteErrors)
}

// CacheRequest counts one request by its cache result.
func (m *Metrics) CacheRequest(result, team string) {
	if m == nil {
		return
	}
	m.cache.requests.WithLabelValues(result, team).Inc()
}

// CacheSaved counts what a hit or a coalesced request saved, micro-USD.
func (m *Metrics) CacheSaved(team string, microUSD int64) {
	if m == nil || microUSD <= 0 {
		return
	}
	m.cache.saved.WithLabelValues(team).Add(float64(microUSD))
}

// CacheEvicted implements cache.Observer.
func (m *Metrics) CacheEvicted(reason string) {
	if m == nil {
		return
	}
	m.cache.evictions.WithLabelValues(reason).Inc()
}

// CacheBytes implements cache.Observer.
func (m *Metrics) CacheBytes(n int64) {
	if m == nil {
		return
	}
	m.cache.bytes.Set(float64(n))
}

// CacheRemoteError implements cache.Observer.
func (m *Metrics) CacheRemoteError(op string) {
	if m == nil {
		return
	}
	m.cache.remoteErrors.WithLabelValues(op).Inc()
}
