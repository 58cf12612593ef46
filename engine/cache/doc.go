// Package cache is gavel's response cache and its in-flight coalescing, the mechanics
// behind the policy's decision.cache (docs/cache.md). It stores answers in the canonical
// types (a whole completion, or a stream's chunks) under a Key: the hash of the request as
// it goes upstream and the id of the scope the policy chose, so tenants never share an
// entry unless the policy says global.
//
// L1 is in memory, bounded in bytes (otter: synchronous writes, a per-entry expiry, an
// iterator for scoped purges and an eviction listener). L2, when configured, is Redis
// shared by the replicas; its failures only ever make a lookup a miss, within
// Options.RemoteTimeout, never fail a request. Group coalesces identical requests in
// flight: one upstream call, its answer or its stream shared from the start.
//
// The package decides nothing: the pipeline asks it only what the decision allows.
package cache
