// Package mock is gavel's built-in upstream: a provider that answers without a network,
// so that `make run` works offline, tests and drills can inject latency and failures on
// purpose, and gateway benchmarks measure gavel rather than an upstream.
//
// Replies are deterministic (the same request gets the same text) and failures are
// reproducible (the same seed fails the same requests in sequence), so a test or a drill
// that uses the mock can assert exact outcomes. Because it stands in for the upstream in
// CPU benchmarks, the mock starts no goroutine and, when latency and pacing are zero,
// arms no timer: a request costs little more than building its response.
package mock
