# A small policy for the pipeline's tests, not the default library: it routes a catalog
# id to that entry and its fallbacks, names every applicable budget and rate limit of
# data.gavel in the decision (as docs/policy-contract.md describes them), mirrors the
# request to data.gavel.test.shadow under experiment data.gavel.test.experiment, and
# denies when the X-Gavel-Tags say deny=yes. Its rules are named apart from the data
# documents (data.gavel.budgets is data, enforced_budgets a rule).
package gavel

import rego.v1

scope_id := {
	"key": input.caller.key_id,
	"user": input.caller.user,
	"team": input.caller.team,
	"project": input.caller.project,
	"global": "",
}

applies("global") := true

applies(scope) if {
	scope != "global"
	scope_id[scope] != ""
}

enforced_budgets := [{
	"name": b.name, "scope": b.scope, "id": scope_id[b.scope], "period": b.period,
	"limit_musd": b.limit_musd, "hard": object.get(b, "hard", true),
} |
	some b in data.gavel.budgets
	applies(b.scope)
]

enforced_rate_limits := [{"scope": r.scope, "id": scope_id[r.scope], "rpm": object.get(r, "rpm", 0), "tpm": object.get(r, "tpm", 0)} |
	some r in data.gavel.rate_limits
	applies(r.scope)
]

target(id) := {"provider": data.gavel.catalog[id].provider, "model": data.gavel.catalog[id].model}

entry := data.gavel.catalog[input.request.model]

targets := array.concat([target(input.request.model)], [target(f) | some f in object.get(entry, "fallbacks", [])])

shadow_targets := [target(id) | some id in data.gavel.test.shadow]

experiment := data.gavel.test.experiment

extras["budgets"] := enforced_budgets if count(enforced_budgets) > 0

extras["rate_limits"] := enforced_rate_limits if count(enforced_rate_limits) > 0

extras["shadow"] := shadow_targets if count(shadow_targets) > 0

extras["labels"] := {"experiment": experiment}

decision := {
	"allow": false,
	"deny": {"status": 451, "code": "test_denied", "message": "The test policy denies this request."},
	"reasons": ["test.deny"],
} if {
	input.request.metadata.deny == "yes"
} else := object.union({"allow": true, "targets": targets, "reasons": ["test.route"]}, extras) if {
	entry
} else := {
	"allow": false,
	"deny": {"status": 404, "code": "model_not_found", "message": "No such model."},
}
