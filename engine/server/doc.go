// Package server is gavel's HTTP skin on echo: routing, decoding and validating request
// bodies, writing JSON and server-sent events, and headers. Every API endpoint decodes,
// calls the one request pipeline (engine/pipeline) and encodes; it holds no budget,
// pricing, PII or routing logic. Every error a client sees is made by one function,
// clientError in errors.go, which maps the pipeline's domain errors to OpenAI's shape and
// status. Health, readiness, metrics and the admin views (explanations, spend, bundle
// status) live here too.
package server
