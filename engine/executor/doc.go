// Package executor carries out a policy Decision: it walks the decision's targets in
// order, each behind its own pipeline (retry with backoff → gavel's circuit breaker →
// per-attempt timeout: attempt.go), built once per provider+model and shared by all
// requests.
//
// Streams fail over only until their first chunk is in hand: OpenStream returns once an
// upstream produced a chunk, and from then on nothing is retried, because the client may
// already have received bytes.
package executor
