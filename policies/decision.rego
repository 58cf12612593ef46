# The decision gavel asks for: data.gavel.decision. It assembles what the concern packages
# conclude — gavel.route (where), gavel.compliance (PII, deny-lists), gavel.experiments
# (A/B arm, shadow), gavel.degrade — in one object. docs/policy-contract.md documents every
# field and docs/schema/decision.json is its schema.
package gavel

import rego.v1

import data.gavel.access
import data.gavel.budget
import data.gavel.caching
import data.gavel.chaos
import data.gavel.compliance
import data.gavel.degrade
import data.gavel.experiments
import data.gavel.remediation
import data.gavel.route

# An allowed request gets the cache's verdict (gavel.caching) on top of the judgement, on the
# plan's fast path too: caching depends on the request's sampling settings, not the route.
# A typical request's decision with its cache field is precomputed in the plan
# (plan.cache: the plan's fast decision for the model with the field and its reason):
# when the judgement is that fast decision as it is, cached_decision looks it up; any
# other allowed judgement gets the field added. Both give the same value; the lookup only
# saves assembling it (a cacheable request should cost what another does).
decision := cached_decision if {
	caching.decision
} else := judged

cached_decision := caching.verdict.decision if {
	judged == input.plan.fast[input.request.model].decision
} else := object.union(judged, {
	"cache": caching.decision,
	"reasons": array.concat(object.get(judged, "reasons", []), [concat("", ["cache.", caching.mode])]),
}) if {
	judged.allow
}

# judged is the first branch whose condition holds, in order: the denials, then the route
# (routed), then why there is none. Every request is judged by every denial above routed,
# the typical one too: a rule added as one more branch there applies to every request
# without further ado. What the plan precomputes only replaces how an allowed request's
# targets are found (see routed).
#
# Each denial of this library first tests, on input or data, the condition without which
# its rule cannot hold (any PII found, a deny list, a key's model list, a budget, a tier
# restriction): in OPA a rule referred to costs an evaluation of its own (allocations and
# thousands of instructions, undefined or not), a reference into input or data next to
# none, and a typical request meets none of them. A branch without such a test is just as
# correct; it costs its rule's evaluation on every request.
judged := with_remediation(
	{
		"allow": false,
		"deny": {
			"status": 400,
			"code": "pii_blocked",
			"message": concat("", ["The request contains data the policy does not allow to leave: ", concat(", ", sort(compliance.blocked)), "."]),
		},
		"reasons": reasons,
	},
	remediation.pii,
) if {
	input.pii[_] > 0
	compliance.blocked[_]
} else := {
	"allow": false,
	"deny": {"status": 400, "code": "content_denied", "message": "The request contains content the policy does not allow."},
	"reasons": reasons,
} if {
	data.gavel.pii_policy.deny_terms[0]
	compliance.denied_terms[0]
} else := {
	"allow": false,
	"deny": {
		"status": 400,
		"code": "field_denied",
		"message": concat("", ["The request uses parameters the policy does not allow: ", concat(", ", compliance.denied_fields), "."]),
	},
	"reasons": reasons,
} if {
	data.gavel.pii_policy.deny_fields[0]
	compliance.denied_fields[0]
} else := with_remediation(
	{
		"allow": false,
		"deny": {
			"status": 403,
			"code": "model_not_allowed",
			"message": concat("", ["This key may not use the model `", access.key_model_denied, "`; it may use: ", concat(", ", access.key_models), "."]),
		},
		"reasons": reasons,
	},
	remediation.key_models,
) if {
	input.caller.models[0]
	access.key_model_denied
} else := with_remediation(
	{
		"allow": false,
		"deny": {
			"status": 429,
			"code": "insufficient_quota",
			"type": "insufficient_quota",
			"message": concat("", ["Budget `", budget.exhausted[0], "` is exhausted for this period."]),
		},
		"reasons": reasons,
	},
	remediation.budget_exhausted,
) if {
	data.gavel.budgets[0]
	budget.exhausted[0]
} else := with_remediation(
	{
		"allow": false,
		"deny": {
			"status": 403,
			"code": "tier_not_allowed",
			"message": concat("", ["The model `", access.denied, "` is not available to the `", input.caller.tier, "` tier."]),
		},
		"reasons": reasons,
	},
	remediation.tier,
) if {
	data.gavel.tier_access[input.caller.tier]
	access.denied
} else := routed if {
	routed
} else := with_remediation(
	{
		"allow": false,
		"deny": object.union({"status": 400}, route.unfit),
		"reasons": array.concat(reasons, [concat("", ["route.unfit:", route.unfit.code])]),
	},
	remediation.unfit,
) if {
	route.unfit
} else := {
	"allow": false,
	"deny": route.no_target,
	"reasons": reasons,
} if {
	route.known
} else := with_remediation(
	{
		"allow": false,
		"deny": {
			"status": 404,
			"code": "model_not_found",
			"message": route.unknown_message,
		},
		"reasons": ["route.unknown_model"],
	},
	remediation.unknown_model,
)

# routed is the decision for a request no denial stopped. A typical request (see typical)
# takes the plan's precomputed decision for its model, with the caller's budgets and rate
# limits added when the bundle or the key has any; any other request is assembled by the
# full rules. Undefined when the full rules find no target.
routed := input.plan.fast[input.request.model].decision if {
	input.plan.limits_free
	budget.caller_limits_free
	typical
} else := with_limits(input.plan.fast[input.request.model].decision) if {
	typical
	not budget.soft[0]
} else := with_pii(profiled) if {
	input.plan.limits_free
	budget.caller_limits_free
	profiled
} else := with_pii(with_limits(profiled)) if {
	profiled
	not budget.soft[0]
} else := object.union(
	{"allow": true, "targets": targets, "reasons": allowed_reasons},
	extras,
) if {
	targets[0]
}

# profiled: the plan's routed decision for a request that is typical but for its tools,
# images, detected code or personal data (plan.profile), which the full rules would reach
# too; undefined when the request does not fit it. It decides nothing else either.
profiled := v.decision if {
	f := input.plan.fast[input.request.model]
	not f.task_triggers[object.get(input.request.metadata, "task", "")]
	input.request.est_input_tokens < f.size_trigger
	v := f.profiles[input.request.has_code][input.request.has_tools][input.request.has_images][pii_leaves]
	v.endpoint_ok[input.request.endpoint]
	v.stream_ok[input.request.stream]
	input.request.est_input_tokens + input.request.max_tokens <= v.min_context
}

# pii_leaves: personal data leaves the gateway as it is (compliance.pii_present), as a
# boolean to look profiles up by.
pii_leaves := false if {
	input.pii == {}
} else if {
	compliance.pii_present
} else := false

# with_pii adds what the request's personal data adds to an allowed routed decision: the
# types to redact and compliance's notes among the reasons.
with_pii(d) := d if {
	input.pii == {}
} else := object.union(d, {
	"redact": sort(compliance.redact),
	"reasons": array.concat(d.reasons, [r | some r in compliance.notes]),
}) if {
	compliance.redact[_]
} else := object.union(d, {"reasons": array.concat(d.reasons, [r | some r in compliance.notes])})

# with_remediation adds what the denied caller can change, when there is something to say.
with_remediation(d, r) := object.union(d, {"remediation": r}) if {
	count(r) > 0
} else := d

# A budget past its soft threshold sends the request to its cheaper alias.
targets := route.targets_for(budget.soft[0].degrade_to) if {
	budget.soft[0]
} else := experiments.targets if {
	experiments.targets
} else := route.targets

# typical: the request carries no PII, triggers no content rule and fits every candidate of
# its route, so the plan's precomputed route is the one the full rules would reach. It
# decides nothing else: the denials above routed are judged first, on every request.
# Whether the request's code, tools, images and stream fit is plan.fast[model].ok as a list
# per endpoint (shapes): one object.subset of input.request for the commonest request
# instead of a reference per field, tried last so that a failed size or task check does
# not retry it.
typical if {
	f := input.plan.fast[input.request.model]
	input.pii == {}
	est := input.request.est_input_tokens
	est < f.size_trigger
	est + input.request.max_tokens <= f.min_context
	not f.task_triggers[object.get(input.request.metadata, "task", "")]
	some shape in f.shapes[input.request.endpoint]
	object.subset(input.request, shape)
}

# with_limits adds the budgets and rate limits to enforce to a precomputed decision.
with_limits(d) := d if {
	not budget.any_applicable
	not budget.rate_limits[0]
} else := object.union(d, {k: v | some k, v in extras; k in {"budgets", "rate_limits"}}) if {
	d.allow
} else := d

# Optional decision fields, present only when a rule set them.
extras["ab"] := experiments.ab

extras["shadow"] := experiments.shadow

extras["labels"] := {"experiment": experiments.exp.name} if experiments.shadow

extras["redact"] := sort(compliance.redact) if compliance.redact[_]

extras["degrade"] := {"stream": false} if degrade.stream_off

extras["fault"] := chaos.fault

extras["hedge"] := route.planned.hedge if {
	route.planned.hedge.delay_ms
	count(targets) > 1
}

extras["limits"] := {"midstream": "continue"} if {
	route.planned.midstream == "continue"
	count(targets) > 1
}

extras["budgets"] := budget.enforce if budget.enforce[0]

extras["rate_limits"] := budget.rate_limits if budget.rate_limits[0]

# reasons: the route's, then every package's (a denial's).
reasons := array.concat(route.reasons, [r | some r in other_reasons])

# allowed_reasons are the reasons of a request no denial stopped: those of reasons that can
# hold for it (the denials' own cannot), so that allowing a request does not evaluate
# every denial's rules a second time to collect reasons that are empty.
allowed_reasons := array.concat(route.reasons, [r | some r in allowed_notes])

allowed_notes := (((compliance.notes | experiments.reasons) | degrade.reasons) | budget.notes) | chaos.reasons

other_reasons := ((((compliance.reasons | experiments.reasons) | degrade.reasons) | budget.reasons) | access.reasons) | chaos.reasons
