// Package telemetry owns gavel's Prometheus metrics (the gavel_ namespace): one
// registry, the collectors, and a method per thing worth counting, so no other package
// touches client_golang. Every method is safe on a nil *Metrics, so packages and tests
// that do not care about metrics pass nil. Logging is not here: packages take an
// *slog.Logger from the composition root (engine/app).
package telemetry
