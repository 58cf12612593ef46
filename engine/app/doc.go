// Package app is gavel's composition root: it assembles a running gavel from its
// configuration (tracing, providers through the registry, virtual keys, the policy engine
// with its bundle and planner, the ledger and decision log, then the request path:
// executor, pipeline and HTTP server) and runs it with graceful shutdown. It holds no
// request logic of its own; cmd/gavel and the end-to-end tests both start gavel through
// it.
package app
