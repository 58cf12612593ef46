// Package decision is the vocabulary of what a policy decides about one request: the
// Decision and its parts (Target, Deny, Budget, AB, Limits, Hedge, Degrade) and their
// documented defaults.
//
// It is a leaf on purpose. engine/policy parses Rego output into these types
// (policy.ParseDecision, the one strict parser), and everything that acts on a decision
// (engine/pipeline, engine/executor) reads them without linking OPA: the executor's
// dependency list must not contain github.com/open-policy-agent/opa, and a test says so.
package decision
