# Shared fixtures for the policy tests.
package gavel.fixtures

import rego.v1

up := {"healthy": true, "circuit": "closed", "requests": 0, "error_rate_bp": 0, "p50_ms": 0, "p95_ms": 0, "ttft_p95_ms": 0, "in_flight": 0, "models": {}}

all_up := {"openai": up, "anthropic": up, "gemini": up, "mock": up}

request := {
	"id": "r1", "endpoint": "chat", "model": "smart", "stream": false,
	"messages": [{"role": "user", "text": "hello"}],
	"has_tools": false, "has_images": false, "has_code": false,
	"max_tokens": 0, "est_input_tokens": 10, "metadata": {}, "bucket": 0, "sample": 9999,
}

caller := {"key_id": "k1", "user": "ana", "team": "search", "project": "web", "tier": "gold", "labels": {}}

# input builds a full input from overrides of the request.
input_with(over) := {"request": object.union(request, over), "caller": caller, "providers": all_up, "pii": {}}

with_providers(over, providers) := {"request": object.union(request, over), "caller": caller, "providers": providers, "pii": {}}

model_state(provider, model, state) := object.union(all_up, {provider: object.union(up, {"models": {model: state}})})
