# The routing plan: everything about routing that depends only on bundle data and live
# provider signals, not on the request.
#
# gavel evaluates data.gavel.plan whenever the provider snapshot changes (a breaker opens,
# latency moves) or a bundle activates, and hands the result to every request as
# input.plan. Per-request rules then do constant-time lookups instead of re-ranking
# providers on every request. Without input.plan (opa test, opa eval, gavel policy eval)
# the per-request packages evaluate this package inline, so both paths give the same answer.
#
# Because it runs off the request path, the plan may afford sorting and arithmetic.
package gavel.plan

import rego.v1

routing := data.gavel.routing

max_targets := object.get(routing, "max_targets", 4)

# declared[id]: the models configured providers declare in gavel.yaml or list when asked
# (input.providers.<name>.catalog), as catalog-like entries under "provider/model".
declared[id] := object.union(e, {"provider": p, "model": m}) if {
	some p, prov in input.providers
	some m, e in object.get(prov, "catalog", {})
	id := concat("/", [p, m])
}

# claims[name]: the declared models a name reaches: a model's own name and its aliases.
claims[name] contains id if {
	some id, e in declared
	some name in array.concat([e.model], object.get(e, "aliases", []))
}

# chains[name] is what a request for name may use: an alias's candidates (then the
# declared models that claim its name), a name only declared models claim, or, when client
# hints are honoured, a "provider/model" asked for directly ("hint": the client chose it).
chains[name] := {"strategy": object.get(a, "strategy", "ordered"), "ids": array.concat(a.candidates, extra)} if {
	some name, a in data.gavel.aliases
	extra := sort([id | some id in object.get(claims, name, set()); not id in a.candidates])
}

chains[name] := {"strategy": "ordered", "ids": sort(ids)} if {
	some name, ids in claims
	not data.gavel.aliases[name]
	not data.gavel.catalog[name]
}

chains[id] := {"strategy": "ordered", "ids": hint_ids(id, entry), "hint": true} if {
	routing.honour_client_hints
	some id, entry in data.gavel.catalog
	not data.gavel.aliases[id]
}

chains[id] := {"strategy": "ordered", "ids": [id], "hint": true} if {
	routing.honour_client_hints
	some id, _ in declared
	not data.gavel.catalog[id]
	not data.gavel.aliases[id]
	not claims[id]
}

# hint_ids: a model the client names explicitly, then the fallbacks its catalog entry
# lists. Those stand in when the model is configured but unavailable; a model whose
# provider is not configured here has no stand-in: the client gets a 404 naming it, not a
# different model's answer.
hint_ids(id, entry) := array.concat([id], object.get(entry, "fallbacks", [])) if {
	input.providers[entry.provider]
} else := [id]

# entry(id): the catalog's entry for id, else the provider's declared one (the bundle's
# catalog wins where both describe a model: its owners set prices and tiers).
entry(id) := e if {
	e := data.gavel.catalog[id]
} else := e if {
	e := declared[id]
} else := {}

# A catalog id becomes {provider, model}; an uncataloged "provider/model" is split.
target(id) := {"provider": e.provider, "model": e.model} if {
	e := data.gavel.catalog[id]
} else := {"provider": substring(id, 0, i), "model": substring(id, i + 1, -1)} if {
	i := indexof(id, "/")
	i > 0
}

signals(t) := object.get(input.providers, [t.provider, "models", t.model], {})

# A target is usable when its provider is configured (input.providers lists configured
# providers only) and healthy, its circuit is not open, and, once it has enough traffic to
# judge, its error rate is under the routing threshold.
usable(t) if {
	p := input.providers[t.provider]
	p.healthy
	s := signals(t)
	not s.circuit == "open"
	not failing(s)
}

# why(t) says why a target is not usable, for the client's error message.
why(t) := "provider not configured" if {
	not input.providers[t.provider]
} else := "provider unhealthy" if {
	not input.providers[t.provider].healthy
} else := "circuit open" if {
	signals(t).circuit == "open"
} else := "error rate over the routing threshold"

failing(s) if {
	s.requests >= 20
	s.error_rate_bp >= object.get(routing, "unhealthy_error_rate_bp", 10001)
}

# score ranks a candidate by weighted quality, cost, latency and errors (weights in data).
score(id) := s if {
	e := data.gavel.catalog[id]
	w := routing.weights
	sig := signals(target(id))
	cost := (e.price.input_musd_per_mtok + e.price.output_musd_per_mtok) / 100000
	s := (((w.quality * e.quality) - (w.cost * cost)) - ((w.latency * object.get(sig, "p95_ms", 0)) / 100)) - ((w.errors * object.get(sig, "error_rate_bp", 0)) / 100)
} else := 0

ranked(chain) := chain.ids if {
	chain.strategy != "scored"
} else := [id | some entry in sort([[0 - score(x), i, x] | some i, x in chain.ids]); id := entry[2]]

tier_rank[t] := i if some i, t in routing.tiers

# tier_fallbacks_for: a client's explicit choice is replaced only by its own fallbacks.
tier_fallbacks_for(chain, _) := [] if chain.hint

tier_fallbacks_for(chain, ids) := tier_fallbacks(ids) if not chain.hint

# Degradation: after a chain's own candidates come catalog models of the primary's tier,
# then of each lower tier, so an outage of every listed model still finds an answer. Chat
# only: embeddings of another model live in another vector space, so an implicit fallback
# would corrupt the caller's index.
tier_fallbacks(ids) := [id |
	routing.tier_fallback
	primary := data.gavel.catalog[ids[0]]
	object.get(primary, "kind", "chat") == "chat"
	some tier in routing.tiers
	tier_rank[tier] >= tier_rank[primary.tier]
	some id, e in data.gavel.catalog
	e.tier == tier
	object.get(e, "kind", "chat") == "chat"
	not id in ids
]

# Per candidate, what per-request filters need to know.
candidate(id) := {
	"target": t,
	"tools": object.get(e, ["capabilities", "tools"], false),
	"vision": object.get(e, ["capabilities", "vision"], false),
	"context": context_window(e),
	"pii_ok": pii_ok(t.provider),
	"kind": object.get(e, "kind", "chat"),
} if {
	t := target(id)
	e := entry(id)
}

# A declared model's context window of 0 is unknown: no request is refused for its size.
unknown_context := 1000000000000

context_window(e) := unknown_context if {
	e.source
	e.context_window == 0
} else := object.get(e, "context_window", 0)

pii_ok(p) if data.gavel.pii_policy.pii_requires_tag in object.get(data.gavel.providers, [p, "tags"], [])

default pii_ok(_) := false

# routes[name] is the routing result for a request asking for name.
routes[name] := {
	"targets": array.slice(eligible, 0, max_targets),
	"candidates": cands,
	"reasons": reasons,
	"all_tools": every_cap(cands, "tools"),
	"all_vision": every_cap(cands, "vision"),
	"all_pii_ok": every_cap(cands, "pii_ok"),
	"endpoint_ok": {
		"chat": every_kind(cands, "chat"), "embeddings": every_kind(cands, "embedding"),
		"messages": every_kind(cands, "chat"), "count_tokens": every_kind(cands, "chat"),
		"responses": every_kind(cands, "chat"),
	},
	"min_context": min_context(cands),
	"hedge": hedge_for(name),
	"midstream": midstream_for(name),
	"unavailable": unavailable,
} if {
	some name, chain in chains
	ids := ranked(chain)
	all_ids := array.concat(ids, tier_fallbacks_for(chain, ids))
	cands := [c |
		some id in all_ids
		c := candidate(id)
		usable(c.target)
	]
	eligible := [c.target | some c in cands]
	reasons := array.concat(
		[concat("", ["route.", how_named(name, chain), ":", name])],
		[r | skipped(ids); r := "route.skipped_unavailable"],
	)

	unavailable := unavailable_of(cands, ids, all_ids)
}

# unavailable_of: when nothing of a route can be used, what it has and why, for the error:
# the chain's own candidates and the tier fallbacks that are configured. Empty while
# something is usable (a request it does not fit is told so by the per-request rules).
unavailable_of(cands, ids, all_ids) := [] if {
	cands[0]
} else := [{"id": id, "why": w} |
	some i, id in all_ids
	not id in array.slice(all_ids, 0, i)
	w := why(target(id))
	own_or_configured(id, ids, w)
]

own_or_configured(id, ids, _) if id in ids

own_or_configured(_, _, w) if w != "provider not configured"

# no_target(unavailable, model) is the denial of a request for model that no target can
# serve: 404 when nothing it names is configured here (asking
# again will not help), 503 when something is but is unhealthy or its circuit is open.
no_target(unavailable, model) := {
	"status": 404,
	"code": "model_not_found",
	"message": concat("", ["The model `", model, "` has no configured target here: ", why_list(unavailable), "."]),
} if {
	unavailable[0]
	every u in unavailable {
		u.why == "provider not configured"
	}
} else := {
	"status": 503,
	"code": "no_available_target",
	"message": concat("", ["No provider is available for model `", model, "` right now: ", why_list(unavailable), "."]),
} if {
	unavailable[0]
} else := {
	"status": 503,
	"code": "no_available_target",
	"message": concat("", ["No provider is available for model `", model, "` right now: no available target accepts this request (its tools, images or data)."]),
}

# why_list names at most 8 targets and why each is unavailable.
why_list(unavailable) := concat("", [
	concat(", ", [concat("", [u.id, " (", u.why, ")"]) | some i, u in unavailable; i < 8]),
	more(count(unavailable) - 8),
])

more(n) := concat("", [" and ", format_int(n, 10), " more"]) if {
	n > 0
} else := ""

# hedge_for(name): an alias's hedging, off unless its data sets hedge_ms: after that many
# milliseconds without an answer the next target is asked too (hedge_max targets at most).
hedge_for(name) := {"delay_ms": a.hedge_ms, "max": max([object.get(a, "hedge_max", 1), 1])} if {
	a := data.gavel.aliases[name]
	a.hedge_ms > 0
} else := {}

# midstream_for(name): what an alias's streams become when they fail after their first
# bytes: "continue" when its data opts in with midstream: "continue" (the next target
# continues the answer in the same client stream), else "error" (an error event ends it).
midstream_for(name) := "continue" if {
	data.gavel.aliases[name].midstream == "continue"
} else := "error"

# skipped: one of the chain's own candidates (not a tier fallback) is unavailable.
skipped(ids) if {
	some id in ids
	not usable(target(id))
}

every_cap(cands, k) if {
	count(cands) > 0
	every c in cands {
		c[k] == true
	}
}

default every_cap(_, _) := false

every_kind(cands, kind) if {
	count(cands) > 0
	every c in cands {
		c.kind == kind
	}
}

default every_kind(_, _) := false

min_context(cands) := min([c.context | some c in cands]) if count(cands) > 0

default min_context(_) := 0

how_named(name, chain) := "alias" if {
	data.gavel.aliases[name]
} else := "client_hint" if {
	chain.hint
} else := "model"

# content_routes[alias] lists, in data order, the content rules that may send a request
# for alias elsewhere, with every condition present (empty means "any"). A rule whose
# destination has no available target is left out while that lasts: the request is better
# served by the alias it asked for than refused.
content_routes[from] := [r |
	some rule in data.gavel.content_routes
	from in rule.from
	routes[rule.to].targets[0]
	r := {
		"name": rule.name,
		"to": rule.to,
		"task": object.get(rule.when, "task", ""),
		"has_code": object.get(rule.when, "has_code", false),
		"min_tokens": object.get(rule.when, "min_tokens", 0),
	}
] if {
	some rule in data.gavel.content_routes
	some from in rule.from
}

# experiments[model]: the enabled experiment on model, its arms as bucket ranges (an arm
# whose live error rate or latency passes its canary threshold gets no traffic), and its
# shadow target.
experiments[e.model] := {
	"name": name,
	"teams": object.get(e, "teams", []),
	"arms": arms(e),
	"shadow": shadow(e),
} if {
	some name, e in data.gavel.ab_experiments
	object.get(e, "enabled", true)
}

arm_candidates(arm) := [c |
	some id in arm.targets
	c := candidate(id)
	usable(c.target)
]

arm_weight(e, arm) := 0 if {
	count(arm_candidates(arm)) == 0
} else := 0 if {
	canary_tripped(e, arm)
} else := arm.weight_bp

canary_tripped(e, arm) if canary(e, arm) != ""

# canary(e, arm) names the signal that rolled the arm back ("error_rate" or "p95_ms"), or
# is "" while the arm is within its thresholds (or has too little traffic to judge).
canary(e, arm) := "error_rate" if {
	s := signals(target(arm.targets[0]))
	s.requests >= object.get(e, ["canary", "min_requests"], 20)
	s.error_rate_bp > object.get(e, ["canary", "max_error_rate_bp"], 10000)
} else := "p95_ms" if {
	s := signals(target(arm.targets[0]))
	s.requests >= object.get(e, ["canary", "min_requests"], 20)
	s.p95_ms > object.get(e, ["canary", "max_p95_ms"], 1000000000)
} else := ""

arms(e) := [a |
	some i, arm in e.arms
	lo := sum([arm_weight(e, prev) | some j, prev in e.arms; j < i])
	w := arm_weight(e, arm)
	a := {"name": arm.name, "lo": lo, "hi": lo + w, "candidates": arm_candidates(arm), "weight_bp": w, "canary": canary(e, arm)}
]

shadow(e) := {"target": t, "sample_bp": e.shadow.sample_bp, "allow_pii": object.get(e.shadow, "allow_pii", false)} if {
	t := target(e.shadow.target)
	usable(t)
} else := {}

# limits_free: the bundle defines no budget and no rate limit, so a typical request's
# decision does not depend on who asks.
limits_free if {
	not any_budget
	not any_rate_limit
}

# Shadow budgets cap gavel's own shadow traffic, never a caller's request.
any_budget if {
	some b in data.gavel.budgets
	b.scope != "shadow"
}

any_rate_limit if data.gavel.rate_limits[_]

# fast[name] lets a typical request skip the per-request routing rules: for every
# requestable name without an experiment, the decision gavel would reach for an allowed
# request that carries no PII, triggers no content rule and fits every candidate, plus the
# lookups that tell whether a request is that typical. gavel.decision takes this path only
# for a request no denial stopped (the denials are judged first, on every request) and
# when every check holds; tests assert that it then agrees with the full evaluation.
fast[name] := {
	"decision": d,
	"ok": ok,
	"shapes": fast_shapes(ok),
	"task_triggers": {t: true | some c in object.get(content_routes, name, []); c.task != ""; t := c.task},
	"size_trigger": size_trigger(name),
	"min_context": r.min_context,
	"profiles": profiles_for(name, r, d, dests, stream_ok),
} if {
	some name, r in routes
	not experiments[name]
	not drilled[name]
	d := route_decision(name, r)
	dests := {code: content_dest(name, code) | some code in [false, true]}
	stream_ok := not_degraded(r)
	ok := fast_ok(name, r, dests, stream_ok)
}

# fast_shapes(ok): ok again, per endpoint as the list of the request fields of each
# combination it holds, the commonest first (no code, tools or images, not streamed): a
# request fits when one of them is a subset of input.request, one builtin per combination
# tried where the lookup in ok costs a reference per field.
fast_shapes(ok) := {e: [{"has_code": c, "has_tools": t, "has_images": i, "stream": s} |
	some c, by_tools in by_code
	some t, by_vision in by_tools
	some i, by_stream in by_vision
	some s, _ in by_stream
] |
	some e, by_code in ok
}

# profiles_for(name): for a request to name that the typical path does not take only
# because of its tools, detected code or PII the executor redacts (and that triggers no
# task or size content rule), the routed decision the full rules reach, by code, tools,
# images and PII leaving as it is: the content rule that code or none selects, the
# destination's candidates that have the capabilities (filtered, as the route says when it
# filters), and the lookups that tell whether the request fits them (endpoint, stream,
# size). Requests with images or with PII that leaves unredacted have no profile (rarer,
# and each dimension would double the plan's size and time): the full rules decide them,
# as they do a combination no candidate fits. Both code values share one set of variants
# when no content rule tells them apart, both tools values when every candidate has tools.
profiles_for(name, r, d, dests, stream_ok) := {false: p, true: p} if {
	dests[false] == dests[true]
	p := variants(dests[false], name, r, d, stream_ok)
} else := {code: variants(dest, name, r, d, stream_ok) | some code, dest in dests}

variants(dest, name, r, d, stream_ok) := {false: only(v), true: only(v)} if {
	routes[dest.to].all_tools
	v := unfiltered_variant(dest, name, r, d, stream_ok)
} else := {tools: only(v) |
	some tools in [false, true]
	v := variant(dest, tools, false, false)
}

# unfiltered_variant: with no content rule and no filter, a profile's decision is the
# name's fast decision d (the same value, not a copy: the plan stays small).
unfiltered_variant(dest, name, r, d, stream_ok) := {
	"decision": d,
	"endpoint_ok": r.endpoint_ok,
	"stream_ok": {false: true, true: stream_ok},
	"min_context": r.min_context,
} if {
	dest.to == name
	dest.notes == []
	d.allow
} else := variant(dest, false, false, false)

# only(v): v for a request without images whose PII (if any) does not leave as it is.
only(v) := {false: {false: v}}

variant(dest, tools, vision, pii) := {
	"decision": object.union(
		object.union(
			{"allow": true, "targets": targets, "reasons": array.concat(r.reasons, array.concat(dest.notes, filtered_note(count(cands) == count(r.candidates))))},
			hedge_field({"hedge": r.hedge, "targets": targets}),
		),
		midstream_field({"midstream": r.midstream, "targets": targets}),
	),
	"endpoint_ok": r.endpoint_ok,
	"stream_ok": {false: true, true: not_degraded({"targets": targets})},
	"min_context": min_context(cands),
} if {
	r := routes[dest.to]
	cands := [c |
		some c in r.candidates
		has_cap(c.tools, tools)
		has_cap(c.vision, vision)
		has_cap(c.pii_ok, pii)
	]
	cands[0]
	targets := array.slice([c.target | some c in cands], 0, max_targets)
}

has_cap(_, false) := true

has_cap(c, true) := c

filtered_note(true) := []

filtered_note(false) := ["route.filtered_by_capability"]

# content_dest(name, code): where the first content rule for name that holds for a request
# with or without code, no task rule and fewer tokens than any size rule sends it.
content_dest(name, code) := {"to": r.to, "notes": content_note(name, r)} if {
	r := [c |
		some c in object.get(content_routes, name, [])
		c.task == ""
		c.min_tokens <= 0
		code_rule_holds(c.has_code, code)
	][0]
} else := {"to": name, "notes": []}

code_rule_holds(false, _) := true

code_rule_holds(true, code) := code

content_note(name, r) := [] if {
	r.to == name
} else := [concat("", ["route.content:", r.name])]

# fast_ok(name, r): the requests the fast path fits, as one lookup:
# ok[endpoint][has_code][has_tools][has_images][stream] is true for each combination
# that fits every candidate and that no content rule without a task or size condition
# sends elsewhere, with or without code (built level by level, each level
# shared by the one above).
fast_ok(name, r, dests, stream_ok) := {e: by_code |
	some e, ok in r.endpoint_ok
	ok
} if {
	by_stream := {stream: true | some stream in [false, true]; fast_fits(stream, stream_ok)}
	by_vision := {vision: by_stream | some vision in [false, true]; fast_fits(vision, r.all_vision)}
	by_tools := {tools: by_vision | some tools in [false, true]; fast_fits(tools, r.all_tools)}
	by_code := {code: by_tools | some code, dest in dests; dest.to == name}
}

fast_fits(false, _) := true

fast_fits(true, ok) := ok

# drilled: the aliases a chaos drill (data.gavel.faults, see gavel.chaos) samples. They have
# no fast path, so the per-request rules decide whether a request is in the drill; leaving
# them out here costs typical requests nothing.
drilled contains d.alias if some d in data.gavel.faults

route_decision(name, r) := object.union(
	object.union({"allow": true, "targets": r.targets, "reasons": r.reasons}, hedge_field(r)),
	midstream_field(r),
) if {
	r.targets[0]
} else := {
	"allow": false,
	"deny": no_target(r.unavailable, name),
	"reasons": r.reasons,
}

# hedge_field: hedging needs a second target to hedge to.
hedge_field(r) := {"hedge": r.hedge} if {
	r.hedge.delay_ms
	count(r.targets) > 1
} else := {}

# midstream_field: continuing a stream needs a target after the primary to continue on.
midstream_field(r) := {"limits": {"midstream": "continue"}} if {
	r.midstream == "continue"
	count(r.targets) > 1
} else := {}

not_triggered(name, k) := false if {
	some c in object.get(content_routes, name, [])
	c[k] == true
} else := true

size_trigger(name) := min([c.min_tokens | some c in object.get(content_routes, name, []); c.min_tokens > 0]) if {
	some c in object.get(content_routes, name, [])
	c.min_tokens > 0
} else := 9223372036854775807

not_degraded(r) := false if {
	routing.degrade_stream_on_half_open
	t := r.targets[0]
	input.providers[t.provider].models[t.model].circuit == "half_open"
} else := true

# cache[name]: data.gavel.cache merged for a request asking for name (gavel.caching, see
# docs/cache.md): "any" for a caller whose team the data does not name, "teams.<team>" for
# each team it names (default, then the alias, then the team). A cacheable request looks
# its entry up instead of merging the levels itself, and a typical one (plan.fast) takes the
# entry's decision, which already holds the cache field and its reason. A name the plan
# does not route (a passed-through provider/model) and an input without a plan are merged
# per request by the same functions.
cache[name] := object.union(
	{
		"any": any,
		"teams": {team: cache_entry(object.union(base, t), fd) | some team, t in object.get(cache_data, "teams", {})},
	},
	cache_all(any),
) if {
	some name, _ in routes
	base := cache_base(name)
	fd := object.get(fast, [name, "decision"], {})
	any := cache_entry(base, fd)
}

# cache_all: when the data names no team, "any" is every caller's entry, also as "all" (one
# lookup for gavel.caching.verdict instead of choosing by team).
cache_all(any) := {"all": any} if {
	count(object.get(cache_data, "teams", {})) == 0
} else := {}

default cache_data := {}

cache_data := data.gavel.cache

# cache_base(name): the default level under the alias' own.
cache_base(name) := object.union(object.get(cache_data, "default", {}), object.get(cache_data, ["aliases", name], {}))

# cache_entry(config, d): the merged levels, and per kind of request (verdicts[true]:
# single-turn, verdicts[false]: a conversation) what caching it gets when it is safe to cache: the decision's
# cache field, its mode, whether requests with tools and streams may be cached (the
# library's tools and streams switches, as lookups) and, when d is an allowing fast
# decision, d with the field and its reason. No verdict
# when the levels turn neither caching nor coalescing on.
cache_entry(config, d) := {"config": config, "verdicts": {turns == "one": v |
	some turns in ["one", "many"]
	v := cache_verdict(config, cache_mode(config, turns), d)
}}

# A semantic cache matches single-turn requests only, with the embeddings target the level
# names (embed); a conversation, or a level without embed, falls back to exact matching,
# which compares every turn.
cache_mode(config, turns) := "exact" if {
	config.mode == "semantic"
	not cache_semantic_fits(config, turns)
} else := object.get(config, "mode", "off")

cache_semantic_fits(config, "one") if config.embed

# cache_fields are the decision's own fields a level may set besides mode.
cache_fields := {"ttl_s", "scope", "coalesce", "charge_bp"}

cache_verdict(config, mode, d) := object.union(
	{
		"mode": mode, "cache": field,
		"tools_ok": {false: true, true: object.get(config, "tools", false) == true},
		"stream_ok": {false: true, true: object.get(config, "streams", false) == true},
	},
	cache_decision(d, field, mode),
) if {
	cache_wanted(config, mode)
	field := object.union(
		object.union({"mode": mode}, {k: v | some k, v in config; k in cache_fields}),
		cache_similarity(config, mode),
	)
}

cache_wanted(_, mode) if mode != "off"

cache_wanted(config, _) if config.coalesce == true

cache_similarity(config, mode) := object.union({"embed": config.embed}, cache_threshold(config)) if {
	mode == "semantic"
} else := {}

cache_threshold(config) := {"min_similarity": config.min_similarity} if config.min_similarity

else := {}

cache_decision(d, field, mode) := {"decision": object.union(d, {
	"cache": field,
	"reasons": array.concat(d.reasons, [concat("", ["cache.", mode])]),
})} if {
	d.allow
} else := {}
