// Package auth authenticates gavel's virtual keys. Keys are stored only as SHA-256 hashes
// (in the bundle's data.gavel.keys or a keys file); each maps to a record — user, team,
// project, tier, labels — that becomes the policy's input.caller, converted to an OPA
// value once per key rather than per request.
package auth
