package gavel.caching_test

import rego.v1

import data.gavel
import data.gavel.fixtures

on := {"default": {"mode": "off"}, "aliases": {"smart": {"mode": "exact", "ttl_s": 600, "coalesce": true}}}

test_off_by_default if {
	d := gavel.decision with input as fixtures.input_with({"temperature": 0})
	d.allow
	not d.cache
}

test_alias_turns_exact_cache_on_for_temperature_zero if {
	d := gavel.decision with input as fixtures.input_with({"temperature": 0}) with data.gavel.cache as on
	d.cache == {"mode": "exact", "ttl_s": 600, "coalesce": true}
	"cache.exact" in d.reasons
}

test_seed_is_deterministic_too if {
	d := gavel.decision with input as fixtures.input_with({"seed": 42, "temperature": 0.7}) with data.gavel.cache as on
	d.cache.mode == "exact"
}

test_sampling_request_is_never_cached if {
	d := gavel.decision with input as fixtures.input_with({"temperature": 0.7}) with data.gavel.cache as on
	not d.cache
}

test_no_temperature_is_not_deterministic if {
	d := gavel.decision with input as fixtures.input_with({}) with data.gavel.cache as on
	not d.cache
}

test_tools_are_not_cached_unless_configured if {
	req := fixtures.input_with({"temperature": 0, "has_tools": true})
	off := gavel.decision with input as req with data.gavel.cache as on
	not off.cache
	tools := json.patch(on, [{"op": "add", "path": "/aliases/smart/tools", "value": true}])
	d := gavel.decision with input as req with data.gavel.cache as tools
	d.cache.mode == "exact"
}

test_streams_are_not_cached_unless_configured if {
	req := fixtures.input_with({"temperature": 0, "stream": true})
	off := gavel.decision with input as req with data.gavel.cache as on
	not off.cache
	streams := json.patch(on, [{"op": "add", "path": "/aliases/smart/streams", "value": true}])
	d := gavel.decision with input as req with data.gavel.cache as streams
	d.cache.mode == "exact"
}

test_several_completions_are_not_cached if {
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "n": 2}) with data.gavel.cache as on
	not d.cache
}

test_other_alias_untouched if {
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "model": "fast"}) with data.gavel.cache as on
	not d.cache
}

test_team_overrides_alias if {
	cfg := object.union(on, {"teams": {"search": {"scope": "key", "coalesce": false}}})
	d := gavel.decision with input as fixtures.input_with({"temperature": 0}) with data.gavel.cache as cfg
	d.cache == {"mode": "exact", "ttl_s": 600, "scope": "key", "coalesce": false}
}

test_team_turns_it_off if {
	cfg := object.union(on, {"teams": {"search": {"mode": "off", "coalesce": false}}})
	d := gavel.decision with input as fixtures.input_with({"temperature": 0}) with data.gavel.cache as cfg
	not d.cache
}

test_coalescing_alone if {
	cfg := {"default": {"mode": "off", "coalesce": true}}
	d := gavel.decision with input as fixtures.input_with({"temperature": 0}) with data.gavel.cache as cfg
	d.cache == {"mode": "off", "coalesce": true}
}

test_semantic_single_turn_keeps_its_threshold if {
	cfg := {"default": {"mode": "semantic", "min_similarity": 9200, "embed": emb}}
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "turns": 1}) with data.gavel.cache as cfg
	d.cache == {"mode": "semantic", "min_similarity": 9200, "embed": emb}
	"cache.semantic" in d.reasons
}

emb := {"provider": "openai", "model": "text-embedding-3-small"}

test_semantic_default_threshold_is_gavels if {
	cfg := {"default": {"mode": "semantic", "embed": emb}}
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "turns": 1}) with data.gavel.cache as cfg
	d.cache == {"mode": "semantic", "embed": emb}
}

test_semantic_multi_turn_falls_back_to_exact if {
	cfg := {"default": {"mode": "semantic", "min_similarity": 9200, "embed": emb}}
	msgs := [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello"}, {"role": "user", "text": "more"}]
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "turns": 2, "messages": msgs}) with data.gavel.cache as cfg
	d.cache == {"mode": "exact"}
	"cache.exact" in d.reasons
}

test_semantic_without_embeddings_target_is_exact if {
	cfg := {"default": {"mode": "semantic", "min_similarity": 9200}}
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "turns": 1}) with data.gavel.cache as cfg
	d.cache == {"mode": "exact"}
	planned({"temperature": 0, "turns": 1}, cfg).cache == {"mode": "exact"}
}

test_semantic_per_alias_and_team if {
	cfg := {
		"default": {"mode": "off"},
		"aliases": {"smart": {"mode": "semantic", "embed": emb, "min_similarity": 9300}},
		"teams": {"legal": {"mode": "exact"}},
	}
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "turns": 1}) with data.gavel.cache as cfg
	d.cache == {"mode": "semantic", "embed": emb, "min_similarity": 9300}
	as_legal := object.union(fixtures.input_with({"temperature": 0, "turns": 1}), {"caller": {"team": "legal"}})
	legal := gavel.decision with input as as_legal with data.gavel.cache as cfg
	legal.cache == {"mode": "exact"}
	other := gavel.decision with input as fixtures.input_with({"temperature": 0, "turns": 1, "model": "fast"}) with data.gavel.cache as cfg
	not other.cache
}

test_semantic_sampling_request_is_never_cached if {
	cfg := {"default": {"mode": "semantic", "embed": emb}}
	d := gavel.decision with input as fixtures.input_with({"temperature": 0.9, "turns": 1}) with data.gavel.cache as cfg
	not d.cache
}

test_default_bundle_leaves_semantic_off if {
	not data.gavel.cache.default.embed
	data.gavel.cache.default.mode != "semantic"
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "turns": 1})
	not d.cache
}

test_embeddings_are_not_cached if {
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "endpoint": "embeddings", "model": "embed"}) with data.gavel.cache as {"default": {"mode": "exact"}}
	not d.cache
}

test_denied_request_gets_no_cache if {
	d := gavel.decision with input as fixtures.input_with({"temperature": 0, "model": "nope"}) with data.gavel.cache as {"default": {"mode": "exact"}}
	not d.allow
	not d.cache
}

test_fast_path_request_gets_cache_too if {
	plan := gavel.plan with input as fixtures.input_with({}) with data.gavel.cache as on
	req := object.union(fixtures.input_with({"temperature": 0}), {"plan": plan})
	d := gavel.decision with input as req with data.gavel.cache as on
	d.cache.mode == "exact"
	"cache.exact" in d.reasons
}

# planned(over, cfg) is the decision for fixtures.input_with(over) under cache data cfg, the
# way gavel evaluates it (the plan evaluated over the same data and handed over as
# input.plan), asserted equal to the inline evaluation (opa test, opa eval).
planned(over, cfg) := d if {
	i := fixtures.input_with(over)
	plan := gavel.plan with input as i with data.gavel.cache as cfg
	d := gavel.decision with input as object.union(i, {"plan": plan}) with data.gavel.cache as cfg
	inline := gavel.decision with input as i with data.gavel.cache as cfg
	d == inline
}

semantic := {
	"default": {"mode": "off"},
	"aliases": {"smart": {"mode": "semantic", "min_similarity": 9200, "ttl_s": 60, "embed": emb}},
	"teams": {"search": {"scope": "key", "streams": true}, "legal": {"mode": "off"}},
}

multi := [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello"}, {"role": "user", "text": "more"}]

test_plan_and_inline_agree_on_every_kind_of_request if {
	planned({"temperature": 0}, on).cache == {"mode": "exact", "ttl_s": 600, "coalesce": true}
	planned({"temperature": 0.7}, on).allow
	not planned({"temperature": 0.7}, on).cache
	planned({"seed": 1}, on).cache.mode == "exact"
	not planned({"temperature": 0, "model": "fast"}, on).cache
	not planned({"temperature": 0, "has_tools": true}, on).cache
	planned({"temperature": 0, "turns": 1}, semantic).cache == {"mode": "semantic", "min_similarity": 9200, "ttl_s": 60, "scope": "key", "embed": emb}
	m := planned({"temperature": 0, "turns": 2, "messages": multi}, semantic)
	m.cache == {"mode": "exact", "ttl_s": 60, "scope": "key"}
	"cache.exact" in m.reasons
	planned({"temperature": 0, "turns": 1, "stream": true}, semantic).cache.mode == "semantic"
	not planned({"temperature": 0, "model": "nope"}, semantic).cache
}

test_plan_and_inline_agree_for_other_teams if {
	legal := object.union(fixtures.caller, {"team": "legal"})
	i := object.union(fixtures.input_with({"temperature": 0, "turns": 1}), {"caller": legal})
	plan := gavel.plan with input as i with data.gavel.cache as semantic
	d := gavel.decision with input as object.union(i, {"plan": plan}) with data.gavel.cache as semantic
	not d.cache
	d == gavel.decision with input as i with data.gavel.cache as semantic
	other := object.union(i, {"caller": object.union(fixtures.caller, {"team": "ops"})})
	o := gavel.decision with input as object.union(other, {"plan": plan}) with data.gavel.cache as semantic
	o.cache == {"mode": "semantic", "min_similarity": 9200, "ttl_s": 60, "embed": emb}
	o == gavel.decision with input as other with data.gavel.cache as semantic
}

test_plan_holds_the_merged_levels if {
	plan := gavel.plan with input as fixtures.input_with({}) with data.gavel.cache as semantic
	plan.cache.smart.teams.search.config == {"mode": "semantic", "min_similarity": 9200, "ttl_s": 60, "scope": "key", "streams": true, "embed": emb}
	plan.cache.smart.any.verdicts[true].decision.cache.mode == "semantic"
	plan.cache.smart.any.verdicts[false].mode == "exact"
	not plan.cache.smart.teams.legal.verdicts[true]
	not plan.cache.fast.any.verdicts[true]
}

test_no_cache_data_caches_nothing if {
	i := fixtures.input_with({"temperature": 0})
	plan := gavel.plan with input as i with data.gavel.cache as {}
	not plan.cache.smart.any.verdicts[true]
	d := gavel.decision with input as object.union(i, {"plan": plan}) with data.gavel.cache as {}
	not d.cache
}

# A cacheable request on the plan's fast path is still judged by every denial: the plan's
# decision with its cache field is taken only for an allowed judgement.
test_fast_path_cached_request_still_denied if {
	i := object.union(fixtures.input_with({"temperature": 0}), {"caller": object.union(fixtures.caller, {"models": ["fast"]})})
	plan := gavel.plan with input as i with data.gavel.cache as on
	d := gavel.decision with input as object.union(i, {"plan": plan}) with data.gavel.cache as on
	not d.allow
	d.deny.code == "model_not_allowed"
	not d.cache
	t := object.union(fixtures.input_with({"temperature": 0}), {"caller": object.union(fixtures.caller, {"tier": "free"})})
	tp := gavel.plan with input as t with data.gavel.cache as on with data.gavel.tier_access as {"free": ["standard"]}
	td := gavel.decision with input as object.union(t, {"plan": tp}) with data.gavel.cache as on with data.gavel.tier_access as {"free": ["standard"]}
	not td.allow
	not td.cache
}

# plan.cache[name].all: every caller's entry when the data names no team, looked up by the
# request's turns; with teams named there is none, and the caller's team picks the entry.
test_plan_all_entry_only_without_teams if {
	plan := gavel.plan with input as fixtures.input_with({}) with data.gavel.cache as on
	plan.cache.smart.all == plan.cache.smart.any
	teams := gavel.plan with input as fixtures.input_with({}) with data.gavel.cache as semantic
	not teams.cache.smart.all
}

test_plan_all_entry_agrees_with_inline_by_turns if {
	planned({"temperature": 0, "turns": 1}, on).cache == {"mode": "exact", "ttl_s": 600, "coalesce": true}
	planned({"temperature": 0, "turns": 2, "messages": multi}, on).cache == {"mode": "exact", "ttl_s": 600, "coalesce": true}
	planned({"temperature": 0, "turns": 0}, on).cache.mode == "exact"
	per_turns := {"default": {"mode": "semantic", "embed": emb}, "aliases": {}}
	planned({"temperature": 0, "turns": 1}, per_turns).cache.mode == "semantic"
	planned({"temperature": 0, "turns": 3, "messages": multi}, per_turns).cache.mode == "exact"
	planned({"temperature": 0}, per_turns).cache.mode == "semantic"
}
