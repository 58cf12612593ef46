package gavel.route_test

import rego.v1

import data.gavel.route

all_up := {
	"openai": {"healthy": true, "circuit": "closed", "models": {}},
	"anthropic": {"healthy": true, "circuit": "closed", "models": {}},
	"gemini": {"healthy": true, "circuit": "closed", "models": {}},
	"mock": {"healthy": true, "circuit": "closed", "models": {}},
}

req(model) := {"request": {"model": model}, "providers": all_up}

test_alias_resolves_in_catalog_order if {
	route.targets == [
		{"provider": "openai", "model": "gpt-4o"},
		{"provider": "anthropic", "model": "claude-sonnet-4-5"},
		{"provider": "gemini", "model": "gemini-2.5-pro"},
		{"provider": "mock", "model": "mock-large"},
	] with input as req("smart")
}

test_open_circuit_is_skipped if {
	providers := object.union(all_up, {"openai": {"healthy": true, "circuit": "closed", "models": {"gpt-4o": {"circuit": "open"}}}})
	route.targets[0] == {"provider": "anthropic", "model": "claude-sonnet-4-5"} with input as {"request": {"model": "smart"}, "providers": providers}
	"route.skipped_unavailable" in route.reasons with input as {"request": {"model": "smart"}, "providers": providers}
}

test_half_open_circuit_is_probed if {
	providers := object.union(all_up, {"openai": {"healthy": true, "circuit": "half_open", "models": {"gpt-4o": {"circuit": "half_open"}}}})
	route.targets[0] == {"provider": "openai", "model": "gpt-4o"} with input as {"request": {"model": "smart"}, "providers": providers}
}

test_unhealthy_provider_is_skipped if {
	providers := object.union(all_up, {"openai": {"healthy": false, "circuit": "closed", "models": {}}})
	route.targets[0] == {"provider": "anthropic", "model": "claude-sonnet-4-5"} with input as {"request": {"model": "smart"}, "providers": providers}
}

test_unconfigured_provider_is_skipped if {
	route.targets == [{"provider": "mock", "model": "mock-small"}] with input as {"request": {"model": "fast"}, "providers": {"mock": all_up.mock}}
}

test_client_hint_is_honoured_with_fallbacks if {
	t := route.targets with input as req("anthropic/claude-sonnet-4-5")
	t[0] == {"provider": "anthropic", "model": "claude-sonnet-4-5"}
	t[1] == {"provider": "openai", "model": "gpt-4o"}
	"route.client_hint:anthropic/claude-sonnet-4-5" in route.reasons with input as req("anthropic/claude-sonnet-4-5")
}

test_client_hint_refused_when_disabled if {
	not route.known with input as req("anthropic/claude-sonnet-4-5")
		with data.gavel.routing as {"honour_client_hints": false, "passthrough_uncataloged": false}
}

test_passthrough_to_configured_provider if {
	route.targets == [{"provider": "openai", "model": "gpt-9-preview"}] with input as req("openai/gpt-9-preview")
	"route.passthrough:openai/gpt-9-preview" in route.reasons with input as req("openai/gpt-9-preview")
}

test_passthrough_keeps_slashes_in_model if {
	route.targets == [{"provider": "openai", "model": "meta-llama/Llama-3-8B"}] with input as req("openai/meta-llama/Llama-3-8B")
}

test_passthrough_needs_configured_provider if {
	not route.known with input as req("nosuch/model")
}

test_passthrough_can_be_disabled if {
	not route.known with input as req("openai/gpt-9-preview")
		with data.gavel.routing as {"honour_client_hints": true, "passthrough_uncataloged": false}
}

test_unknown_model_has_no_candidates if {
	not route.known with input as req("no-such-model")
}

test_max_targets_caps_the_chain if {
	count(route.targets) == 2 with input as req("smart")
		with data.gavel.routing as {"honour_client_hints": true, "passthrough_uncataloged": true, "max_targets": 2}
}
