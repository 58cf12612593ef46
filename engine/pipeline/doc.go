// Package pipeline runs one request through gavel, from the caller's standing to the
// record:
//
//	features → standing → decision → enforce → execute → settle / record
//
// features turns the request into the policy's view of it (token estimates, A/B bucket,
// PII counts); standing reads the caller's spend and rate usage for the budgets and limits
// the bundle declares; the decision is the bundle's data.gavel.decision, parsed strictly;
// enforce reserves the estimated cost against the decision's budgets and admits the
// request under its rate limits, atomically in the ledger; execute hands the request to
// the executor (failover, retries, hedging, shadows); settle commits what the call really
// cost and gives back what it did not use, and record writes metrics, the decision log and
// one log line.
//
// Every endpoint calls the same pipeline. It knows nothing of HTTP: it returns domain
// errors (*BudgetExceeded, *RateLimited, *Denied, *PolicyError, ErrNoBundle,
// ErrNoLedger, *StreamError, and the executor's *FailedError), and engine/server alone
// maps them to what a client sees in its protocol.
package pipeline
