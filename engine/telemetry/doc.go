// Package telemetry owns gavel's Prometheus metrics (the gavel_ namespace) and its
// structured logger. Every method is safe on a nil *Metrics, so packages and tests that do
// not care about metrics pass nil.
package telemetry
