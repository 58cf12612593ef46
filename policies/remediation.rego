# Remediation: what a denied caller can change so that its request passes (decision
# field `remediation`, returned to the client as error.remediation). Each denial of the
# default library says what it can: the aliases a caller may use, the PII types to remove,
# the budget's standing and when it resets, the max_tokens that would fit. Evaluated only
# for denials, never on the fast path.
package gavel.remediation

import rego.v1

import data.gavel.access
import data.gavel.budget
import data.gavel.compliance
import data.gavel.route

# Alias names of the endpoint's kind this caller may use (tier access applied).
default models := {}

models := {"models": access.usable_aliases} if count(access.usable_aliases) > 0

tier := models

# A key limited to some models: those it may use.
key_models := {"models": access.key_models}

pii := {"pii": sort(compliance.blocked)}

unknown_model := models

default budget_exhausted := {}

# context_length_exceeded: the largest max_tokens the largest window leaves room for.
unfit := {"max_tokens": n} if {
	route.unfit.code == "context_length_exceeded"
	n := route.max_context - route.est_tokens
	n > 0
} else := models if {
	route.unfit.code == "unsupported_endpoint"
} else := {}

# budget_exhausted: the first exhausted budget's standing, when its period ends and how
# long until then (input.now is the request's arrival in Unix nanoseconds).
budget_exhausted := object.union(
	{"budget": object.union({"name": b.name, "remaining_musd": max([0, b.limit_musd - budget.used(b)])}, resets(b.period))},
	retry(b.period),
) if {
	some b in budget.applicable
	b.name == budget.exhausted[0]
}

resets(period) := {"resets_at": time.format([period_end_ns(period), "UTC", "RFC3339"])} if {
	input.now
} else := {}

retry(period) := {"retry_after_s": ceil((period_end_ns(period) - input.now) / 1000000000)} if {
	input.now
} else := {}

day_ns := 86400000000000

# UTC days are exactly day_ns long in Unix time (no leap seconds), months are not.
period_end_ns("day") := (input.now - (input.now % day_ns)) + day_ns

period_end_ns("month") := time.add_date(month_start, 0, 1, 0) if {
	[_, _, d] := time.date(input.now)
	month_start := (input.now - (input.now % day_ns)) - ((d - 1) * day_ns)
}
