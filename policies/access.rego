# Access by caller tier: data.gavel.tier_access maps a caller tier (the key's `tier`) to the
# catalog model tiers it may use, e.g. {"silver": ["standard", "economy"]}. A caller tier
# not listed is unrestricted, so the default (no entries) restricts nobody.
#
# A request whose primary target is a model of a tier the caller may not use is denied
# (403 tier_not_allowed) with the aliases it may use instead (gavel.remediation), rather
# than silently sent to a cheaper model: the caller chose the model, the caller changes it.
package gavel.access

import rego.v1

import data.gavel.route

allowed_tiers := data.gavel.tier_access[input.caller.tier]

tier_of(id) := object.get(data.gavel.catalog, [id, "tier"], "")

# denied is the primary target's catalog id when its tier is not one the caller may use.
denied := id if {
	allowed_tiers
	t := data.gavel.targets[0]
	id := concat("/", [t.provider, t.model])
	not tier_of(id) in allowed_tiers
}

# usable_aliases: the aliases this caller may use on this endpoint, by the tier and kind of
# each alias's first candidate.
usable_aliases := sort([name |
	some name, a in data.gavel.aliases
	c := data.gavel.catalog[a.candidates[0]]
	object.get(c, "kind", "chat") == object.get(route.kind_for, route.endpoint, "chat")
	tier_ok(c)
])

tier_ok(_) if not allowed_tiers

tier_ok(c) if c.tier in allowed_tiers

reasons contains concat("", ["access.tier_denied:", denied]) if denied

# Access by key: a key whose record lists models (input.caller.models, set with the keys
# API or in the key's record) may use only those models or aliases, by the name the
# request gives; anything else is denied (403 model_not_allowed) naming the ones it may use.
key_models := object.get(input.caller, "models", [])

# It reads input.caller.models directly rather than through key_models: every request
# evaluates it (the plan's fast path too), and in OPA each rule a rule refers to costs an
# evaluation of its own (~25 allocations), where an input reference costs next to none.
key_model_denied := input.request.model if {
	input.caller.models[_]
	not input.request.model in input.caller.models
}

reasons contains concat("", ["access.key_model_denied:", key_model_denied]) if key_model_denied
