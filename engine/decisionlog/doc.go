// Package decisionlog records every decision in OPA's decision-log event shape
// (decision_id, path, input, result, bundles, timestamp, labels), off the request path:
// the request hands over pointers to values it already built, and a background goroutine
// masks, encodes and keeps them. A full buffer drops the event and counts it; it never
// blocks a request. Recent events stay in memory so an admin can ask why any request
// went where it did.
//
// The same goroutine hands each event to sinks: Console (stdout), File (JSON lines,
// rotation) and Service (OPA's decision-log upload protocol, batched, with its own bounded
// queue). Mask rules are JSON pointers erased from every event and listed in its "erased"
// array, as OPA's system.log mask does; they apply to the lookup and the sinks alike.
package decisionlog
