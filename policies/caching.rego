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
package gavel.caching

import rego.v1

config := object.union_n([
	object.get(data.gavel.cache, "default", {}),
	object.get(data.gavel.cache, ["aliases", input.request.model], {}),
	object.get(data.gavel.cache, ["teams", input.caller.team], {}),
])

# fields are the decision's own fields a level may set.
fields := {"ttl_s", "scope", "coalesce", "charge_bp"}

wanted_mode := object.get(config, "mode", "off")

mode := "exact" if {
	wanted_mode == "semantic"
	not semantic_fits
} else := wanted_mode

# semantic_fits: a semantic lookup needs a single-turn request and the embeddings target
# the level names (embed: {provider, model}); without either, exact matching it is.
semantic_fits if {
	input.request.turns == 1
	config.embed
}

deterministic if input.request.temperature == 0

deterministic if is_number(input.request.seed)

safe if {
	input.request.endpoint != "embeddings"
	deterministic
	object.get(input.request, "n", 1) == 1
	tools_ok
	stream_ok
}

tools_ok if not input.request.has_tools

tools_ok if config.tools == true

stream_ok if not input.request.stream

stream_ok if config.streams == true

# decision is the decision's cache field; undefined when nothing is cached or coalesced.
# Every request evaluates it (the plan's fast path too), and most are not deterministic:
# its two bodies test the two ways to be deterministic on the input first, so that such a
# request costs OPA this one rule, not the evaluation of safe and deterministic as well
# (~25 allocations each).
decision := field if {
	input.request.temperature == 0
	field := cached
}

decision := field if {
	is_number(input.request.seed)
	field := cached
}

cached := object.union(
	object.union({"mode": mode}, {k: v | some k, v in config; k in fields}),
	similarity,
) if {
	data.gavel.cache
	safe
	wants
}

wants if mode != "off"

wants if config.coalesce == true

similarity := object.union({"embed": config.embed}, threshold) if mode == "semantic"

else := {}

threshold := {"min_similarity": config.min_similarity} if config.min_similarity

else := {}
