package gavel.route_test

import rego.v1

import data.gavel.fixtures as fx
import data.gavel.route

t(p, m) := {"provider": p, "model": m}

test_alias_resolves_in_catalog_order if {
	route.targets == [t("openai", "gpt-4o-mini"), t("mock", "mock-small")] with input as fx.input_with({"model": "gpt-4o-mini"})
		with data.gavel.routing.tier_fallback as false
}

test_tier_fallback_appends_same_tier_then_lower if {
	route.targets == [
		t("openai", "gpt-4o-mini"), t("mock", "mock-small"),
		t("anthropic", "claude-haiku-4-5"), t("gemini", "gemini-2.5-flash"),
	] with input as fx.input_with({"model": "gpt-4o-mini"})
}

test_scored_alias_prefers_quality_per_cost if {
	# smart is scored: with no signals, quality and price decide.
	ts := route.targets with input as fx.input_with({"model": "smart"})
	ts[0] == t("gemini", "gemini-2.5-pro")
}

test_scored_alias_penalises_latency if {
	slow := fx.model_state("gemini", "gemini-2.5-pro", {"circuit": "closed", "requests": 50, "error_rate_bp": 0, "p95_ms": 30000})
	ts := route.targets with input as fx.with_providers({"model": "smart"}, slow)
	ts[0] != t("gemini", "gemini-2.5-pro")
}

test_open_circuit_is_skipped if {
	providers := fx.model_state("openai", "gpt-4o", {"circuit": "open"})
	ts := route.targets with input as fx.with_providers({"model": "gpt-4o"}, providers)
	ts[0] == t("mock", "mock-large")
	"route.skipped_unavailable" in route.reasons with input as fx.with_providers({"model": "gpt-4o"}, providers)
}

test_half_open_circuit_is_probed if {
	providers := fx.model_state("openai", "gpt-4o", {"circuit": "half_open"})
	route.targets[0] == t("openai", "gpt-4o") with input as fx.with_providers({"model": "gpt-4o"}, providers)
}

test_failing_target_is_skipped_only_with_enough_traffic if {
	bad := fx.model_state("openai", "gpt-4o", {"circuit": "closed", "requests": 40, "error_rate_bp": 9000})
	route.targets[0] == t("mock", "mock-large") with input as fx.with_providers({"model": "gpt-4o"}, bad)
	few := fx.model_state("openai", "gpt-4o", {"circuit": "closed", "requests": 3, "error_rate_bp": 9000})
	route.targets[0] == t("openai", "gpt-4o") with input as fx.with_providers({"model": "gpt-4o"}, few)
}

test_unhealthy_provider_is_skipped if {
	providers := object.union(fx.all_up, {"openai": object.union(fx.up, {"healthy": false})})
	route.targets[0] == t("mock", "mock-large") with input as fx.with_providers({"model": "gpt-4o"}, providers)
}

test_unconfigured_provider_is_skipped if {
	route.targets == [t("mock", "mock-small")] with input as fx.with_providers({"model": "fast"}, {"mock": fx.up})
}

test_tier_fallback_reaches_lower_tiers if {
	# Only the mock is configured: smart's premium mock-large, then the economy mock-small.
	route.targets == [t("mock", "mock-large"), t("mock", "mock-small")] with input as fx.with_providers({"model": "smart"}, {"mock": fx.up})
}

test_client_hint_is_honoured_with_fallbacks if {
	ts := route.targets with input as fx.input_with({"model": "anthropic/claude-sonnet-4-5"})
	ts[0] == t("anthropic", "claude-sonnet-4-5")
	ts[1] == t("openai", "gpt-4o")
	"route.client_hint:anthropic/claude-sonnet-4-5" in route.reasons with input as fx.input_with({"model": "anthropic/claude-sonnet-4-5"})
}

test_client_hint_refused_when_disabled if {
	not route.known with input as fx.input_with({"model": "anthropic/claude-sonnet-4-5"})
		with data.gavel.routing.honour_client_hints as false
		with data.gavel.routing.passthrough_uncataloged as false
}

test_passthrough_to_configured_provider if {
	route.targets == [t("openai", "gpt-9-preview")] with input as fx.input_with({"model": "openai/gpt-9-preview"})
	route.reasons == ["route.passthrough:openai/gpt-9-preview"] with input as fx.input_with({"model": "openai/gpt-9-preview"})
}

test_passthrough_keeps_slashes_in_model if {
	route.targets == [t("openai", "meta-llama/Llama-3-8B")] with input as fx.input_with({"model": "openai/meta-llama/Llama-3-8B"})
}

test_passthrough_to_unhealthy_provider_has_no_target if {
	providers := {"openai": object.union(fx.up, {"healthy": false})}
	route.targets == [] with input as fx.with_providers({"model": "openai/x"}, providers)
	route.known with input as fx.with_providers({"model": "openai/x"}, providers)
	"route.skipped_unavailable" in route.reasons with input as fx.with_providers({"model": "openai/x"}, providers)
}

test_passthrough_needs_configured_provider if {
	not route.known with input as fx.input_with({"model": "nosuch/model"})
}

test_passthrough_can_be_disabled if {
	not route.known with input as fx.input_with({"model": "openai/gpt-9-preview"})
		with data.gavel.routing.passthrough_uncataloged as false
}

test_unknown_model_has_no_route if {
	not route.known with input as fx.input_with({"model": "no-such-model"})
	route.reasons == ["route.unknown_model"] with input as fx.input_with({"model": "no-such-model"})
}

test_max_targets_caps_the_chain if {
	count(route.targets) == 2 with input as fx.input_with({"model": "smart"})
		with data.gavel.routing.max_targets as 2
}

test_content_route_by_task_tag if {
	inp := fx.input_with({"model": "smart", "metadata": {"task": "code"}})
	route.name == "code" with input as inp
	route.targets[0] == t("anthropic", "claude-sonnet-4-5") with input as inp
	"route.content:task-code" in route.reasons with input as inp
}

test_content_route_by_detected_code if {
	route.name == "code" with input as fx.input_with({"model": "fast", "has_code": true})
	route.name == "smart" with input as fx.input_with({"model": "smart", "has_code": true})
}

test_content_route_by_prompt_size if {
	route.name == "long" with input as fx.input_with({"model": "cheap", "est_input_tokens": 150000})
	route.targets[0] == t("gemini", "gemini-2.5-pro") with input as fx.input_with({"model": "cheap", "est_input_tokens": 150000})
	route.name == "cheap" with input as fx.input_with({"model": "cheap", "est_input_tokens": 1000})
}

test_capability_filter_vision if {
	# mock-small cannot see images: a vision request for "fast" skips it.
	inp := fx.with_providers({"model": "fast", "has_images": true}, {"mock": fx.up})
	route.targets == [] with input as inp
	"route.filtered_by_capability" in route.reasons with input as inp
	route.targets == [t("mock", "mock-small")] with input as fx.with_providers({"model": "fast"}, {"mock": fx.up})
}

test_capability_filter_tools if {
	route.targets == [t("mock", "mock-large")] with input as fx.with_providers({"model": "gpt-4o", "has_tools": true}, {"mock": fx.up})
		with data.gavel.catalog["mock/mock-small"].capabilities.tools as false
}

test_capability_filter_context_window if {
	# 150k tokens do not fit gpt-4o-mini's 128k window; gemini's 1M does.
	inp := fx.input_with({"model": "gpt-4o-mini", "est_input_tokens": 140000, "max_tokens": 1000})
	route.targets == [t("anthropic", "claude-haiku-4-5"), t("gemini", "gemini-2.5-flash")] with input as inp
}

test_pii_restricts_providers if {
	inp := object.union(fx.input_with({"model": "gpt-4o"}), {"pii": {"ip": 1}})
	ts := route.targets with input as inp
	every x in ts {
		x.provider in {"anthropic", "mock"}
	}
	ts == [t("mock", "mock-large"), t("anthropic", "claude-sonnet-4-5"), t("anthropic", "claude-haiku-4-5"), t("mock", "mock-small")]
}

test_embeddings_route_to_embedding_models if {
	inp := fx.input_with({"model": "embed", "endpoint": "embeddings"})
	route.targets == [t("openai", "text-embedding-3-small"), t("gemini", "gemini-embedding-001"), t("mock", "mock-embed")] with input as inp
}

test_chat_request_to_embedding_model_has_no_target if {
	route.targets == [] with input as fx.input_with({"model": "embed", "endpoint": "chat"})
	route.targets == [] with input as fx.input_with({"model": "smart", "endpoint": "embeddings"})
}

# Anthropic Messages and OpenAI Responses requests are chat in another wire format: they
# route exactly like chat, and never to an embedding model.
test_agent_protocols_route_like_chat if {
	chat := route.targets with input as fx.input_with({"model": "smart", "endpoint": "chat"})
	count(chat) > 0
	route.targets == chat with input as fx.input_with({"model": "smart", "endpoint": "messages", "protocol": "anthropic"})
	route.targets == chat with input as fx.input_with({"model": "smart", "endpoint": "responses", "protocol": "responses"})
	route.targets == [] with input as fx.input_with({"model": "embed", "endpoint": "messages"})
	route.unfit.code == "unsupported_endpoint" with input as fx.input_with({"model": "embed", "endpoint": "responses"})
}

# count_tokens (Anthropic's POST /v1/messages/count_tokens) has an endpoint of its own, so
# that a policy can tell counting from generating, and routes like the messages it counts
# for: Claude Code counts against the provider its messages will reach.
test_count_tokens_routes_like_messages if {
	messages := route.targets with input as fx.input_with({"model": "smart", "endpoint": "messages", "protocol": "anthropic"})
	count(messages) > 0
	route.targets == messages with input as fx.input_with({"model": "smart", "endpoint": "count_tokens", "protocol": "anthropic"})
	route.unfit.code == "unsupported_endpoint" with input as fx.input_with({"model": "embed", "endpoint": "count_tokens"})
}
