// Package auth authenticates gavel's virtual keys. Keys are stored only as SHA-256 hashes
// (in the bundle's data.gavel.keys, a keys file, or the ledger's store as managed keys,
// see engine/keys); each maps to a record — user, team, project, tier, labels, its own
// limits — that becomes the policy's input.caller, converted to an OPA value once per key
// rather than per request. The key set is swapped atomically when any source changes, so
// authenticating is a map lookup and, for keys that expire, a time comparison. Roles
// (admin, viewer) gate the admin endpoints.
package auth
