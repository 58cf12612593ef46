package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// semanticMetrics are the semantic cache's collectors (engine/cache.SemanticIndex,
// docs/cache.md#semantic-caching).
type semanticMetrics struct {
	lookups    *prometheus.CounterVec
	similarity prometheus.Histogram
	vectors    prometheus.Gauge
	bytes      prometheus.Gauge
	evictions  *prometheus.CounterVec
}

// Semantic lookup results, as gavel_cache_semantic_lookups_total says them.
const (
	SemanticHit        = "hit"         // the nearest answer was similar enough and served
	SemanticMiss       = "miss"        // none was (or its answer was gone)
	SemanticEmbedError = "embed_error" // the embeddings call failed: a miss, never an error
)

// semanticSimilarityBuckets resolve the range thresholds live in (0.8–1) finely.
var semanticSimilarityBuckets = []float64{0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995, 1}

func (m *Metrics) registerSemantic() {
	c := &m.semantic
	c.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "cache_semantic_lookups_total",
		Help: "Semantic cache lookups (requests whose exact lookup missed and whose decision asked for mode semantic), by result (hit, miss, embed_error: the embeddings call failed and the request went upstream) and the caller's team.",
	}, []string{"result", "team"})
	c.similarity = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "gavel", Name: "cache_semantic_similarity",
		Help:    "Cosine similarity of the nearest stored turn, per semantic lookup that found one, hit or not: where the threshold (min_similarity) cuts.",
		Buckets: semanticSimilarityBuckets,
	})
	c.vectors = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "gavel", Name: "cache_semantic_vectors",
		Help: "Vectors held by this replica's semantic index.",
	})
	c.bytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "gavel", Name: "cache_semantic_bytes",
		Help: "Bytes the semantic index's vectors count against its bound (cache.semantic_max_bytes).",
	})
	c.evictions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gavel", Name: "cache_semantic_evictions_total",
		Help: "Vectors the semantic index dropped, by reason (size: over its byte bound, expired, gone: their answer had left the cache).",
	}, []string{"reason"})
	for _, r := range []string{"size", "expired", "gone"} {
		c.evictions.WithLabelValues(r)
	}
	m.reg.MustRegister(c.lookups, c.similarity, c.vectors, c.bytes, c.evictions)
}

// SemanticLookup counts one semantic lookup by its result; similarity is the nearest
// stored turn's, observed when found.
func (m *Metrics) SemanticLookup(result, team string, similarity float64, found bool) {
	if m == nil {
		return
	}
	m.semantic.lookups.WithLabelValues(result, team).Inc()
	if found {
		m.semantic.similarity.Observe(similarity)
	}
}

// SemanticIndexSize implements cache.SemanticObserver.
func (m *Metrics) SemanticIndexSize(vectors int, bytes int64) {
	if m == nil {
		return
	}
	m.semantic.vectors.Set(float64(vectors))
	m.semantic.bytes.Set(float64(bytes))
}

// SemanticIndexEvicted implements cache.SemanticObserver.
func (m *Metrics) SemanticIndexEvicted(reason string) {
	if m == nil {
		return
	}
	m.semantic.evictions.WithLabelValues(reason).Inc()
}
