# Models that providers declare or list (input.providers.<name>.catalog): how the default
# library routes their names and aliases, and what it says when nothing can serve a name.
package gavel.plan_test

import rego.v1

import data.gavel
import data.gavel.fixtures as fx
import data.gavel.route

t(p, m) := {"provider": p, "model": m}

entry(aliases, over) := object.union(
	{
		"aliases": aliases, "kind": "chat", "context_window": 0, "max_output_tokens": 0,
		"capabilities": {"json": false, "tools": true, "vision": false},
		"price": {"input_musd_per_mtok": 270000, "output_musd_per_mtok": 1100000, "cached_input_musd_per_mtok": 0},
		"source": "config",
	},
	over,
)

# "up": an OpenAI-compatible server declaring two chat models and listing one embedding model.
up := object.union(fx.up, {"catalog": {
	"m-large": entry(["smart"], {"context_window": 32000}),
	"m-small": entry(["fast", "cheap"], {}),
	"nomic-embed-text": entry([], {"kind": "embedding", "source": "discovered", "capabilities": {}}),
}})

only_up := {"up": up}

inp(over, providers) := fx.with_providers(over, providers)

# Both ways of evaluating (the planner's plan, and inline) give the same decision.
decide(i) := d if {
	plan := data.gavel.plan with input as i
	d := gavel.decision with input as object.union(i, {"plan": plan})
	d == gavel.decision with input as i
}

test_declared_alias_reaches_the_provider if {
	d := decide(inp({"model": "smart"}, only_up))
	d.allow
	d.targets == [t("up", "m-large")]
	"route.alias:smart" in d.reasons
}

test_bare_model_name_reaches_the_provider if {
	d := decide(inp({"model": "m-small"}, only_up))
	d.targets == [t("up", "m-small")]
	d.reasons[0] == "route.model:m-small"
}

test_declared_provider_model_is_a_client_hint if {
	d := decide(inp({"model": "up/m-large"}, only_up))
	d.targets == [t("up", "m-large")]
	d.reasons[0] == "route.client_hint:up/m-large"
}

test_declared_models_follow_the_alias_own_candidates if {
	providers := object.union(fx.all_up, only_up)
	ts := route.targets with input as inp({"model": "gpt-4o-mini"}, providers)
		with data.gavel.routing.tier_fallback as false
		with data.gavel.aliases["gpt-4o-mini"].candidates as ["openai/gpt-4o-mini"]
		with data.gavel.plan.claims as {"gpt-4o-mini": {"up/m-small"}}
	ts == [t("openai", "gpt-4o-mini"), t("up", "m-small")]
}

test_unknown_context_window_refuses_no_size if {
	d := decide(inp({"model": "fast", "est_input_tokens": 500000}, only_up))
	d.targets == [t("up", "m-small")]
}

test_declared_context_window_is_honoured if {
	big := decide(inp({"model": "m-large", "est_input_tokens": 40000}, only_up))
	big.deny.code == "context_length_exceeded"
}

test_listed_embedding_model_serves_embeddings_only if {
	d := decide(inp({"model": "nomic-embed-text", "endpoint": "embeddings"}, only_up))
	d.targets == [t("up", "nomic-embed-text")]
}

test_listed_embedding_model_refuses_chat if {
	chat := decide(inp({"model": "nomic-embed-text"}, only_up))
	chat.deny.code == "unsupported_endpoint"
}

test_the_bundle_catalog_wins_over_a_declaration if {
	# openai declares gpt-4o without capabilities; the bundle's entry (tools) is used.
	openai := object.union(fx.up, {"catalog": {"gpt-4o": entry(["mine"], {"capabilities": {}})}})
	d := decide(inp({"model": "mine", "has_tools": true}, {"openai": openai}))
	d.targets[0] == t("openai", "gpt-4o")
}

test_alias_with_nothing_configured_is_404_naming_targets if {
	d := decide(inp({"model": "gpt-4o"}, only_up))
	d.allow == false
	d.deny.status == 404
	d.deny.code == "model_not_found"
	d.deny.message == "The model `gpt-4o` has no configured target here: openai/gpt-4o (provider not configured), mock/mock-large (provider not configured)."
}

test_configured_but_open_is_503_naming_why if {
	providers := {"up": object.union(up, {"models": {"m-large": {"circuit": "open"}}})}
	d := decide(inp({"model": "smart"}, providers))
	d.deny.status == 503
	d.deny.code == "no_available_target"
	contains(d.deny.message, "up/m-large (circuit open)")
	contains(d.deny.message, "openai/gpt-4o (provider not configured)")
}

test_unhealthy_provider_is_named if {
	sick := {"up": object.union(up, {"healthy": false})}
	contains(decide(inp({"model": "m-small"}, sick)).deny.message, "up/m-small (provider unhealthy)")
}

test_failing_target_is_named if {
	failing := {"up": object.union(up, {"models": {"m-small": {"circuit": "closed", "requests": 50, "error_rate_bp": 9000}}})}
	contains(decide(inp({"model": "m-small"}, failing)).deny.message, "up/m-small (error rate over the routing threshold)")
}

test_long_lists_are_cut if {
	ids := [sprintf("openai/m%d", [i]) | some i in numbers.range(1, 10)]
	d := gavel.decision with input as inp({"model": "many"}, only_up)
		with data.gavel.aliases.many as {"strategy": "ordered", "candidates": ids}
		with data.gavel.routing.tier_fallback as false
	endswith(d.deny.message, "openai/m8 (provider not configured) and 2 more.")
}

test_explicit_choice_of_an_unconfigured_provider_is_404_not_a_substitute if {
	# Only OpenAI is configured: the data's fallback (openai/gpt-4o) does not stand in.
	d := decide(inp({"model": "anthropic/claude-sonnet-4-5"}, {"openai": fx.up}))
	d.allow == false
	d.deny.status == 404
	d.deny.message == "The model `anthropic/claude-sonnet-4-5` has no configured target here: anthropic/claude-sonnet-4-5 (provider not configured)."
}

test_explicit_choice_falls_back_only_as_the_data_allows if {
	down := object.union(fx.up, {"models": {"claude-sonnet-4-5": {"circuit": "open"}}})
	d := decide(inp({"model": "anthropic/claude-sonnet-4-5"}, {"openai": fx.up, "anthropic": down}))
	d.targets == [t("openai", "gpt-4o")]

	# No tier fallbacks for an explicit choice: without data fallbacks, 503.
	none := gavel.decision with input as inp({"model": "anthropic/claude-sonnet-4-5"}, {"openai": fx.up, "anthropic": down})
		with data.gavel.catalog["anthropic/claude-sonnet-4-5"].fallbacks as []
	none.deny.status == 503
	none.deny.message == "No provider is available for model `anthropic/claude-sonnet-4-5` right now: anthropic/claude-sonnet-4-5 (circuit open)."
}

test_unconfigured_provider_prefix_is_named if {
	d := decide(inp({"model": "nope/some-model"}, only_up))
	d.deny.status == 404
	d.deny.message == "The model `nope/some-model` names provider `nope`, which is not configured here."
}

test_unknown_model_message_is_unchanged if {
	unknown := decide(inp({"model": "no-such-model"}, only_up))
	unknown.deny.message == "The model `no-such-model` does not exist or you do not have access to it."
}

test_passthrough_to_an_open_circuit_names_it if {
	providers := {"up": object.union(up, {"models": {"other": {"circuit": "open"}}})}
	d := decide(inp({"model": "up/other"}, providers))
	d.deny.status == 503
	d.deny.message == "No provider is available for model `up/other` right now: up/other (circuit open)."
}

test_content_rule_to_an_unavailable_alias_is_skipped if {
	# fast's detected-code rule sends code to `code`, which has no target here: the request
	# stays on fast instead of failing.
	d := decide(inp({"model": "fast", "has_code": true}, only_up))
	d.targets == [t("up", "m-small")]
	not "route.content:detected-code" in d.reasons
}

test_filtered_out_alias_is_not_called_unconfigured if {
	# smart: the bundle's candidates are not configured, up/m-large is but has no vision.
	d := decide(inp({"model": "smart", "has_images": true}, only_up))
	d.deny.status == 503
	endswith(d.deny.message, "no available target accepts this request (its tools, images or data).")
}

test_filtered_out_targets_say_so if {
	d := decide(inp({"model": "m-large", "has_images": true}, only_up))
	d.deny.status == 503
	endswith(d.deny.message, "no available target accepts this request (its tools, images or data).")
}

# plan.fast[name].shapes lists, per endpoint, exactly the combinations plan.fast[name].ok
# holds, the commonest (no code, tools or images, not streamed) first when it fits.
test_fast_shapes_are_ok_as_a_list if {
	plan := data.gavel.plan with input as fx.with_providers({}, {"mock": fx.up})
	count(plan.fast) > 0
	every _, f in plan.fast {
		every e, by_code in f.ok {
			count(f.shapes[e]) == count([1 |
				some _, by_tools in by_code
				some _, by_vision in by_tools
				some _, by_stream in by_vision
				some _, _ in by_stream
			])
			every s in f.shapes[e] {
				f.ok[e][s.has_code][s.has_tools][s.has_images][s.stream]
			}
		}
		count(f.shapes) == count(f.ok)
	}
	plan.fast.smart.shapes.chat[0] == {"has_code": false, "has_tools": false, "has_images": false, "stream": false}
}
