package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// bundleMetrics follow a bundle server: activations, download failures by reason, and
// when the server last answered, which is what staleness alerts are built on.
type bundleMetrics struct {
	activations     *prometheus.CounterVec
	downloadErrors  *prometheus.CounterVec
	lastDownload    prometheus.Gauge
	activateSeconds prometheus.Histogram
}

// Activation buckets from 1 ms to ~4 s: compiling and preparing a bundle takes milliseconds,
// a large one seconds.
var activationBuckets = prometheus.ExponentialBuckets(0.001, 2, 13)

func (m *Metrics) registerBundle() {
	b := &bundleMetrics{
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gavel", Name: "bundle_activations_total",
			Help: "Bundle activations by outcome (ok, error); an error keeps the active revision.",
		}, []string{"outcome"}),
		downloadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gavel", Name: "bundle_download_errors_total",
			Help: "Failed bundle updates by reason (network, http, verify, bundle, too_large, compile, persist); a rejected bundle counts once, not on each check that finds it still served.",
		}, []string{"reason"}),
		lastDownload: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "gavel", Name: "bundle_last_successful_download_timestamp_seconds",
			Help: "When the bundle server last answered successfully (a new bundle or 304 Not Modified).",
		}),
		activateSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gavel", Name: "bundle_activation_duration_seconds",
			Help: "Time to compile, prepare and swap in a downloaded bundle.", Buckets: activationBuckets,
		}),
	}
	m.reg.MustRegister(b.activations, b.downloadErrors, b.lastDownload, b.activateSeconds)
	m.bundles = b
}

// BundleActivation records an attempt to activate a downloaded bundle.
func (m *Metrics) BundleActivation(ok bool, d time.Duration) {
	if m == nil || m.bundles == nil {
		return
	}
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	m.bundles.activations.WithLabelValues(outcome).Inc()
	m.bundles.activateSeconds.Observe(d.Seconds())
}

// BundleDownloadError counts a bundle update that failed, by reason.
func (m *Metrics) BundleDownloadError(reason string) {
	if m == nil || m.bundles == nil {
		return
	}
	m.bundles.downloadErrors.WithLabelValues(reason).Inc()
}

// BundleChecked records a successful answer from the bundle server.
func (m *Metrics) BundleChecked(at time.Time) {
	if m == nil || m.bundles == nil {
		return
	}
	m.bundles.lastDownload.Set(float64(at.UnixNano()) / 1e9)
}

// InitBundleDistribution publishes activations (ok, error) and download errors for every
// reason at 0 when a bundle server is configured, so a burst of failures that recovers
// still shows as an increase.
func (m *Metrics) InitBundleDistribution(reasons []string) {
	if m == nil || m.bundles == nil {
		return
	}
	m.bundles.activations.WithLabelValues("ok")
	m.bundles.activations.WithLabelValues("error")
	for _, r := range reasons {
		m.bundles.downloadErrors.WithLabelValues(r)
	}
}
