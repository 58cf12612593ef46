// Package signals keeps live statistics per provider and per provider+model — request
// counts, error rate, latency and time-to-first-token percentiles over a sliding window,
// requests in flight, circuit state — and hands them out as a Snapshot, which
// engine/policy renders as the policy's input.providers (policy.ProvidersValue).
//
// Recording is on every request's path, so it is a few atomic operations and one short
// critical section per target; rendering the OPA value happens off the request path, when
// the snapshot is refreshed (engine/policy.Planner), never per request. The package does
// not import OPA: the executor records into it, and the executor must not link OPA.
package signals
