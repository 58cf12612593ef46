# Budgets and rate limits: which ones apply to this request, and what happens near them.
#
# data.gavel.budgets defines budgets per scope (key, user, team, project, global) and period
# (day, month, UTC). gavel puts this caller's standing against each into input.spend, keyed
# by budget name, in integer micro-USD: {"spent_musd", "reserved_musd", "limit_musd"}.
# The decision names the budgets gavel must enforce: before the call gavel atomically
# reserves the estimated cost against every hard one (so concurrent requests cannot
# overspend), and reconciles with the actual cost after it.
#
# Here the policy adds what only it knows: a hard budget already used up denies at once
# (429 insufficient_quota naming it), and a budget past its soft threshold sends the
# request to a cheaper alias and says so.
package gavel.budget

import rego.v1

# The id a scope takes for this caller; scopes the caller has no value for do not apply.
scope_id := {
	"key": input.caller.key_id,
	"user": input.caller.user,
	"team": input.caller.team,
	"project": input.caller.project,
	"global": "",
}

applicable contains b if {
	some b in data.gavel.budgets
	id := scope_id[b.scope]
	any_id(b.scope, id)
}

any_id("global", _) := true

any_id(scope, id) if {
	scope != "global"
	id != ""
}

any_applicable if count(applicable) > 0

# What the decision carries for gavel to enforce.
enforce := [{
	"name": b.name, "scope": b.scope, "id": scope_id[b.scope], "period": b.period,
	"limit_musd": b.limit_musd, "hard": object.get(b, "hard", true),
	"soft_bp": object.get(b, "soft_bp", 10000),
} |
	some b in applicable
]

used(b) := s.spent_musd + s.reserved_musd if s := input.spend[b.name]

default used(_) := 0

exhausted := [b.name |
	some b in applicable
	object.get(b, "hard", true)
	used(b) >= b.limit_musd
]

# soft: the first budget past its soft threshold that names a cheaper alias.
soft := [b |
	some b in applicable
	b.degrade_to
	used(b) * 10000 >= b.limit_musd * object.get(b, "soft_bp", 10000)
]

rate_limits := [{"scope": r.scope, "id": scope_id[r.scope], "rpm": object.get(r, "rpm", 0), "tpm": object.get(r, "tpm", 0)} |
	some r in data.gavel.rate_limits
	any_id(r.scope, scope_id[r.scope])
]

reasons contains concat("", ["budget.exhausted:", exhausted[0]]) if exhausted[0]

reasons contains concat("", ["budget.soft:", soft[0].name, "->", soft[0].degrade_to]) if soft[0]
