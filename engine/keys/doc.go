// Package keys manages virtual keys at run time: the keys API (create, list, get, update,
// revoke, rotate) over records kept in the ledger's store (ledger.Records), the audit log
// of admin actions (ledger.Journal), and the propagation of every change to each replica's
// authenticator within a second.
//
// A managed key is stored under its id ("key_…") with only the SHA-256 of its secret; the
// secret is returned once, by Create or Rotate. Each replica polls the store's version
// counter (one Redis GET or bbolt read every PollInterval) and, when it moved, reloads the
// records and swaps the authenticator's key set atomically: no request ever reads the
// store. Expiry and the end of a rotation's grace period are enforced on the request path
// by a time comparison, so they take effect to the request, not to the poll.
//
// Keys from the bundle and the keys file keep working and always win: a managed key never
// takes a configured key's hash or key_id.
package keys
