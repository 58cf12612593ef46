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

any_applicable if key_budget

# The key's own limits (input.caller.budget_musd/budget_period, rpm, tpm: set with the
# keys API or in the key's record) apply on top of data.gavel's: a hard budget named
# key_budget on the key scope, and a key-scope rate limit. gavel enforces them atomically
# like the others; the policy does not see their standing beforehand (input.spend and
# input.rate cover data.gavel's), so an exhausted key budget is refused by the reservation
# (429 insufficient_quota naming key_budget).
key_budget := {
	"name": "key_budget", "scope": "key", "id": input.caller.key_id, "period": input.caller.budget_period,
	"limit_musd": input.caller.budget_musd, "hard": true, "soft_bp": 10000,
} if {
	object.get(input.caller, "budget_musd", 0) > 0
	input.caller.key_id != ""
}

key_rate_limit := {"scope": "key", "id": input.caller.key_id, "rpm": object.get(input.caller, "rpm", 0), "tpm": object.get(input.caller, "tpm", 0)} if {
	object.get(input.caller, "rpm", 0) + object.get(input.caller, "tpm", 0) > 0
	input.caller.key_id != ""
}

# caller_limits_free: this key carries no limits of its own (no budget, rpm or tpm set), so
# a typical request's decision does not depend on who asks. Every request evaluates it (the
# plan's fast path too), so it compares input.caller's fields with constants, which OPA's
# rule index answers without evaluating a builtin. It is the conservative side: a key whose
# fields it cannot vouch for (missing, negative) is not free, and the decision then takes
# the path that adds whatever limits apply, which for such a key is none.
caller_limits_free if {
	input.caller.budget_musd == 0
	input.caller.rpm == 0
	input.caller.tpm == 0
}

# What the decision carries for gavel to enforce.
enforce := array.concat(
	[{
		"name": b.name, "scope": b.scope, "id": scope_id[b.scope], "period": b.period,
		"limit_musd": b.limit_musd, "hard": object.get(b, "hard", true),
		"soft_bp": object.get(b, "soft_bp", 10000),
	} |
		some b in applicable
	],
	[b | some b in [key_budget]],
)

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

rate_limits := array.concat(
	[{"scope": r.scope, "id": scope_id[r.scope], "rpm": object.get(r, "rpm", 0), "tpm": object.get(r, "tpm", 0)} |
		some r in data.gavel.rate_limits
		any_id(r.scope, scope_id[r.scope])
	],
	[r | some r in [key_rate_limit]],
)

reasons contains concat("", ["budget.exhausted:", exhausted[0]]) if exhausted[0]

reasons contains r if some r in notes

# notes are the reasons an allowed request can carry (gavel.allowed_reasons).
notes contains concat("", ["budget.soft:", soft[0].name, "->", soft[0].degrade_to]) if soft[0]
