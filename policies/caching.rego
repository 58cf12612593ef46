# Response caching and in-flight coalescing by policy (docs/cache.md). data.gavel.cache
# configures them, level over level:
#   {"default": {"mode": "off"},
#    "aliases": {"smart": {"mode": "exact", "ttl_s": 600, "coalesce": true}},
#    "teams":   {"search": {"scope": "key"}, "legal": {"mode": "off", "coalesce": false}}}
# The default is merged under the alias the client asked for, and the caller's team over
# both (a team's governance wins over an alias). A level holds the decision's own fields
# (mode, ttl_s, scope, min_similarity, embed, coalesce, charge_bp) and two switches of this
# library: streams (serve streaming clients from the cache and coalesce them; default
# false) and tools (cache requests that define tools; default false: a tool call may have
# side effects the caller expects to happen again).
#
# Whatever the data says, only a deterministic request is cached or coalesced: temperature
# 0 or a seed, one completion (n 1), no tools, not a stream (unless configured), not an
# embeddings request. A semantic mode applies to single-turn requests only and needs an
# embeddings target (embed: {"provider": "openai", "model": "text-embedding-3-small"});
# a conversation, or a level without embed, falls back to exact matching, which compares
# every turn.
#
# The levels are merged off the request path: the plan (data.gavel.plan.cache) holds them
# merged per requestable name and team, with each verdict and the typical request's whole
# decision, so a cacheable request costs a few lookups. What is decided here is whether
# the request is safe to cache; the data keeps the shape above.
package gavel.caching

import rego.v1

import data.gavel.plan as inline_plan

# entry: the plan's merged levels for the model asked for and the caller's team (see
# plan.cache); merged here for a name the plan does not route and without a plan.
entry := object.get(e.teams, input.caller.team, e.any) if {
	e := input.plan.cache[input.request.model]
} else := inline_plan.cache_entry(
	object.union(
		inline_plan.cache_base(input.request.model),
		object.get(inline_plan.cache_data, ["teams", input.caller.team], {}),
	),
	{},
)

# verdict: the entry's caching for this kind of request (single-turn or a conversation),
# undefined when the levels turn neither caching nor coalescing on. Its decision is the
# typical request's whole decision with the cache field, precomputed by the plan
# (gavel.decision takes it when the request takes the plan's fast path unchanged). With a
# plan it is looked up without going through entry: each rule OPA evaluates costs
# allocations of its own, and a cacheable request should cost no more than another. When
# the data names no team, the plan's entry for every caller (all) is one lookup by the
# request's turns; otherwise, or without turns (a single turn), the caller's team picks the
# entry. The branches agree wherever more than one applies.
verdict := v if {
	v := input.plan.cache[input.request.model].all.verdicts[input.request.turns == 1]
} else := v if {
	e := input.plan.cache[input.request.model]
	v := object.get(e.teams, input.caller.team, e.any).verdicts[object.get(input.request, "turns", 1) == 1]
} else := entry.verdicts[object.get(input.request, "turns", 1) == 1] if {
	not input.plan.cache[input.request.model]
}

default mode := "off"

mode := verdict.mode

# decision is the decision's cache field; undefined when nothing is cached or coalesced.
# Every request evaluates it (the plan's fast path too), and most are not deterministic:
# its two bodies test the two ways to be deterministic on the input first, so that such a
# request costs OPA this one rule. A deterministic one costs a few lookups more: the
# checks are written out in each body, not as rules of their own, because each rule OPA
# evaluates allocates. Safe to cache: not embeddings, one completion, and tools and streams
# only where the verdict allows them (gavel always sets both flags).
decision := verdict.cache if {
	input.request.temperature == 0
	input.request.endpoint != "embeddings"
	object.get(input.request, "n", 1) == 1
	verdict.tools_ok[input.request.has_tools]
	verdict.stream_ok[input.request.stream]
}

decision := verdict.cache if {
	is_number(input.request.seed)
	input.request.endpoint != "embeddings"
	object.get(input.request, "n", 1) == 1
	verdict.tools_ok[input.request.has_tools]
	verdict.stream_ok[input.request.stream]
}
