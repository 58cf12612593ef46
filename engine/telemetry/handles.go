package telemetry

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// handles caches a metric vector's children by their label values, for the metrics every
// request updates. client_golang's WithLabelValues checks the values' count and UTF-8,
// hashes them and looks the child up under the vector's lock on every call (~900
// instructions; a request made ~9 such calls); a map keyed by the values is one hash and
// compare. A child is created once, by WithLabelValues, so invalid values fail exactly as
// they did. Only vectors that are never Reset or deleted from may be cached (a deleted
// child would go on counting unseen); their label values are bounded (targets, teams,
// endpoints, statuses), and the vector keeps every child anyway.
type handles[K comparable, M any] struct {
	mu sync.RWMutex
	m  map[K]M
}

// get is the child for k, made by child the first time.
func (h *handles[K, M]) get(k K, child func(K) M) M {
	h.mu.RLock()
	v, ok := h.m[k]
	h.mu.RUnlock()
	if ok {
		return v
	}
	v = child(k)
	h.mu.Lock()
	if h.m == nil {
		h.m = make(map[K]M)
	}
	h.m[k] = v
	h.mu.Unlock()
	return v
}

// counterHandles and observerHandles cache the children of a CounterVec or a
// HistogramVec with N labels, keyed by [N]string.
type (
	counterHandles[K comparable]  struct{ handles[K, prometheus.Counter] }
	observerHandles[K comparable] struct {
		handles[K, prometheus.Observer]
	}
)

func (h *counterHandles[K]) of(v *prometheus.CounterVec, k K, values func(*K) []string) prometheus.Counter {
	return h.get(k, func(k K) prometheus.Counter { return v.WithLabelValues(values(&k)...) })
}

func (h *observerHandles[K]) of(v *prometheus.HistogramVec, k K, values func(*K) []string) prometheus.Observer {
	return h.get(k, func(k K) prometheus.Observer { return v.WithLabelValues(values(&k)...) })
}

// labels2…labels4 are the label values of a cached child, in the vector's label order.
type (
	labels1 = [1]string
	labels2 = [2]string
	labels3 = [3]string
	labels4 = [4]string
)

func vals1(k *labels1) []string { return k[:] }
func vals2(k *labels2) []string { return k[:] }
func vals3(k *labels3) []string { return k[:] }
func vals4(k *labels4) []string { return k[:] }

// hot are the cached children of the per-request metrics.
type hot struct {
	requests        counterHandles[labels4]  // endpoint, route, status, arm
	requestSeconds  observerHandles[labels2] // endpoint, stream
	decisions       counterHandles[labels1]  // outcome
	attempts        counterHandles[labels3]  // provider, model, outcome
	upstreamSeconds observerHandles[labels2] // provider, model
	tokens          counterHandles[labels4]  // provider, model, team, kind
	cost            counterHandles[labels3]  // provider, model, team
}
