// Package server is gavel's HTTP API on echo: the OpenAI-compatible endpoints, health,
// readiness and metrics. A request flows authenticate → decode → features → policy
// decision → executor → response, and every error a client sees is made by one function,
// clientError, in OpenAI's shape.
package server
