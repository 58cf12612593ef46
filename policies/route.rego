# Routing: which provider/model pairs may serve this request, best first.
#
# Written for OPA's cost model (see docs/performance.md): the ranking is precomputed per
# signal change in gavel.plan, and what runs per request is a few constant-time lookups,
# with no float arithmetic, sprintf or regex.
package gavel.route

import rego.v1

import data.gavel.plan as inline_plan

requested := input.request.model

plan := input.plan if {
	input.plan
} else := inline_plan

# "provider/any-model" outside the catalog passes through to a configured provider when the
# routing data allows it.
passthrough := {"provider": substring(requested, 0, i), "model": substring(requested, i + 1, -1)} if {
	not plan.routes[requested]
	data.gavel.routing.passthrough_uncataloged
	i := indexof(requested, "/")
	i > 0
	input.providers[substring(requested, 0, i)]
}

# result is {targets, reasons} for this request; undefined when the model names nothing
# this policy can route. Aliases and (when allowed) catalog ids were planned ahead.
result := r if {
	r := plan.routes[requested]
} else := {"targets": [passthrough], "reasons": [concat("", ["route.passthrough:", requested])]} if {
	inline_plan.usable(passthrough)
} else := {"targets": [], "reasons": [concat("", ["route.passthrough:", requested]), "route.skipped_unavailable"]} if {
	passthrough
}

known if result

targets := result.targets

reasons := result.reasons
