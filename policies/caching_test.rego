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
	plan := gavel.plan with input as fixtures.input_with({})
	req := object.union(fixtures.input_with({"temperature": 0}), {"plan": plan})
	d := gavel.decision with input as req with data.gavel.cache as on
	d.cache.mode == "exact"
}
