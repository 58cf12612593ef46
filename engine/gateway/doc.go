// Package gateway assembles a running gavel from its configuration: providers through the
// registry, the executor and its pipelines, the policy engine with its bundle and planner,
// the key store, metrics and the HTTP server; and it runs them with graceful shutdown.
// cmd/gavel and the end-to-end tests both start gavel through it.
package gateway
