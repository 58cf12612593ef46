// Package canary is the live canary of a candidate policy bundle (gavel.yaml
// bundle.canary): beside the active bundle, a candidate decides a sample of live requests,
// off the request path and never executed, and every decision it would make differently
// is counted by kind (gavel_policy_canary_disagreements_total{kind}) and recorded as a
// canary event in the decision log with both results.
//
// The request path pays one random draw and, for a sampled request, one non-blocking send
// of values it built anyway (the policy input and the active result); a full queue drops
// the sample and counts it. Workers evaluate the candidate on the request's exact input,
// with the candidate's own plan over the request's provider snapshot (a plan belongs to
// the bundle that made it), and compare with policy.ChangedFields, the comparison
// `gavel policy diff` and replays use. A candidate that fails to load or activate is
// reported in GET /v1/gavel/status and the log, and never touches serving. Promotion
// stays a normal bundle release.
package canary
