// Package schema embeds the JSON Schemas of gavel's policy contract (input.json, the
// input gavel passes to data.gavel.decision; decision.json, what the decision may be), so
// that the gavel binary can read them: `gavel policy test --properties` generates its
// inputs from Input. The .json files beside this one are the source of truth, documented
// in docs/policy-contract.md.
package schema

import _ "embed"

// Input is docs/schema/input.json: the shape of a policy's input.
//
//go:embed input.json
var Input []byte

// Decision is docs/schema/decision.json: the shape of data.gavel.decision.
//
//go:embed decision.json
var Decision []byte
