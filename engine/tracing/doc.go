// Package tracing sets up OpenTelemetry traces for gavel from the standard OTEL_*
// environment variables, read through the gateway's getenv so tests configure it without
// touching the process environment.
//
// Tracing is on when an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER (otlp, console) is set, and
// off otherwise or with OTEL_TRACES_EXPORTER=none. Off is a nil *Tracing: callers hold a
// nil tracer and branch once, so no middleware is installed and no span is created. On,
// spans go through a batch span processor; Shutdown flushes them.
//
// The spans themselves are made where the work happens (engine/server, engine/executor);
// this package only builds the provider, the propagator and the upstream transport.
package tracing
