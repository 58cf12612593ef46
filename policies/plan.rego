# The routing plan: everything about routing that depends only on bundle data and live
# provider signals, not on the request.
#
# gavel evaluates data.gavel.plan whenever the provider snapshot changes (a breaker opens,
# latency moves) or a bundle activates, and hands the result to every request as
# input.plan. Per-request rules then do a constant-time lookup instead of re-ranking
# providers on every request. Without input.plan (opa test, opa eval, gavel policy eval)
# gavel.route evaluates this package inline, so both paths give the same answer.
package gavel.plan

import rego.v1

# The catalog ids each requestable name stands for, preferred first.
chains[name] := ids if {
	some name, ids in data.gavel.aliases
}

# A catalog id asked for directly is honoured when the governance team allows client hints,
# followed by its catalog fallbacks.
chains[id] := array.concat([id], object.get(entry, "fallbacks", [])) if {
	data.gavel.routing.honour_client_hints
	some id, entry in data.gavel.catalog
	not data.gavel.aliases[id]
}

# A catalog id becomes {provider, model}; an uncataloged "provider/model" is split.
target(id) := {"provider": e.provider, "model": e.model} if {
	e := data.gavel.catalog[id]
} else := {"provider": substring(id, 0, i), "model": substring(id, i + 1, -1)} if {
	i := indexof(id, "/")
	i > 0
}

# A target is usable when its provider is configured and healthy, and the circuit of this
# model on it is not open. input.providers lists configured providers only.
usable(t) if {
	p := input.providers[t.provider]
	p.healthy
	not p.models[t.model].circuit == "open"
}

max_targets := object.get(data.gavel.routing, "max_targets", 4)

# routes[name] is the routing result for a request asking for name: its targets and the
# reasons to report, so that per request only a lookup remains.
routes[name] := {"targets": array.slice(eligible, 0, max_targets), "reasons": reasons} if {
	some name, ids in chains
	eligible := [t |
		some id in ids
		t := target(id)
		usable(t)
	]
	how := how_named(name)
	reasons := array.concat(
		[concat("", ["route.", how, ":", name])],
		[r | count(eligible) < count(ids); r := "route.skipped_unavailable"],
	)
}

how_named(name) := "alias" if {
	data.gavel.aliases[name]
} else := "client_hint"
