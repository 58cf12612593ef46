// Package decisionlog records every decision in OPA's decision-log event shape
// (decision_id, path, input, result, bundles, timestamp, labels), off the request path:
// the request hands over pointers to values it already built, and a background goroutine
// masks, encodes and keeps them. A full buffer drops the event and counts it; it never
// blocks a request. Recent events stay in memory so an admin can ask why any request
// went where it did.
package decisionlog
