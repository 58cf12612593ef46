# The decision gavel asks for: data.gavel.decision. It assembles what the concern packages
# (gavel.route, and later compliance, budgets, experiments) conclude. Its schema is
# docs/schema/decision.json; docs/policy-contract.md documents every field.
package gavel

import rego.v1

import data.gavel.route

decision := {
	"allow": true,
	"targets": r.targets,
	"reasons": r.reasons,
} if {
	r := route.result
	r.targets[0]
} else := {
	"allow": false,
	"deny": {
		"status": 503,
		"code": "no_available_target",
		"message": concat("", ["No provider is available for model `", input.request.model, "` right now."]),
	},
	"reasons": route.result.reasons,
} if {
	route.result
} else := {
	"allow": false,
	"deny": {
		"status": 404,
		"code": "model_not_found",
		"message": concat("", ["The model `", input.request.model, "` does not exist or you do not have access to it."]),
	},
	"reasons": ["route.unknown_model"],
}
