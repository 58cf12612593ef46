package gavel.experiments_test

import rego.v1

import data.gavel.experiments
import data.gavel.fixtures as fx

exp := {"sonnet-vs-4o": {
	"model": "smart",
	"arms": [
		{"name": "a", "weight_bp": 5000, "targets": ["openai/gpt-4o"]},
		{"name": "b", "weight_bp": 5000, "targets": ["anthropic/claude-sonnet-4-5"]},
	],
	"shadow": {"sample_bp": 1000, "target": "gemini/gemini-2.5-pro"},
	"canary": {"max_error_rate_bp": 2000, "min_requests": 20},
}}

t(p, m) := {"provider": p, "model": m}

test_arms_split_by_bucket if {
	experiments.ab == {"experiment": "sonnet-vs-4o", "arm": "a"} with input as fx.input_with({"bucket": 10})
		with data.gavel.ab_experiments as exp
	experiments.ab == {"experiment": "sonnet-vs-4o", "arm": "b"} with input as fx.input_with({"bucket": 7000})
		with data.gavel.ab_experiments as exp
	ts := experiments.targets with input as fx.input_with({"bucket": 7000}) with data.gavel.ab_experiments as exp
	ts[0] == t("anthropic", "claude-sonnet-4-5")
	count({x | some x in ts}) == count(ts) # fallbacks follow without duplicates
}

test_uncovered_bucket_gets_normal_route if {
	partial := json.patch(exp, [{"op": "replace", "path": "/sonnet-vs-4o/arms/1/weight_bp", "value": 1000}])
	not experiments.ab with input as fx.input_with({"bucket": 9000}) with data.gavel.ab_experiments as partial
	experiments.ab.arm == "b" with input as fx.input_with({"bucket": 5500}) with data.gavel.ab_experiments as partial
}

test_team_scope if {
	scoped := json.patch(exp, [{"op": "add", "path": "/sonnet-vs-4o/teams", "value": ["ads"]}])
	not experiments.ab with input as fx.input_with({"bucket": 10}) with data.gavel.ab_experiments as scoped
	experiments.ab with input as object.union(fx.input_with({"bucket": 10}), {"caller": {"team": "ads"}})
		with data.gavel.ab_experiments as scoped
}

test_disabled_experiment if {
	off := json.patch(exp, [{"op": "add", "path": "/sonnet-vs-4o/enabled", "value": false}])
	not experiments.ab with input as fx.input_with({"bucket": 10}) with data.gavel.ab_experiments as off
}

test_canary_rollback_on_error_rate if {
	# Arm b's target fails 30% of its traffic: its weight drops to zero.
	bad := fx.model_state("anthropic", "claude-sonnet-4-5", {"circuit": "closed", "requests": 100, "error_rate_bp": 3000, "p95_ms": 900})
	not experiments.ab with input as fx.with_providers({"bucket": 7000}, bad) with data.gavel.ab_experiments as exp
	experiments.ab.arm == "a" with input as fx.with_providers({"bucket": 10}, bad) with data.gavel.ab_experiments as exp
	"canary:sonnet-vs-4o:b:error_rate" in experiments.reasons with input as fx.with_providers({"bucket": 7000}, bad)
		with data.gavel.ab_experiments as exp
}

test_no_canary_reason_while_healthy if {
	reasons := experiments.reasons with input as fx.input_with({"bucket": 7000}) with data.gavel.ab_experiments as exp
	every r in reasons {
		not startswith(r, "canary:")
	}
}

test_canary_rollback_on_latency if {
	slow := fx.model_state("anthropic", "claude-sonnet-4-5", {"circuit": "closed", "requests": 100, "error_rate_bp": 0, "p95_ms": 90000})
	lat := json.patch(exp, [{"op": "add", "path": "/sonnet-vs-4o/canary/max_p95_ms", "value": 30000}])
	not experiments.ab with input as fx.with_providers({"bucket": 7000}, slow) with data.gavel.ab_experiments as lat
	"canary:sonnet-vs-4o:b:p95_ms" in experiments.reasons with input as fx.with_providers({"bucket": 7000}, slow)
		with data.gavel.ab_experiments as lat
}

test_arm_without_available_target_gets_no_traffic if {
	no_anthropic := object.remove(fx.all_up, ["anthropic"])
	not experiments.ab with input as fx.with_providers({"bucket": 7000}, no_anthropic) with data.gavel.ab_experiments as exp
}

test_shadow_sampling if {
	experiments.shadow == [t("gemini", "gemini-2.5-pro")] with input as fx.input_with({"sample": 500})
		with data.gavel.ab_experiments as exp
	not experiments.shadow with input as fx.input_with({"sample": 5000}) with data.gavel.ab_experiments as exp
	"shadow:sonnet-vs-4o" in experiments.reasons with input as fx.input_with({"sample": 500})
		with data.gavel.ab_experiments as exp
}

test_no_shadow_with_pii_unless_allowed if {
	inp := object.union(fx.input_with({"sample": 500}), {"pii": {"ip": 1}})
	not experiments.shadow with input as inp with data.gavel.ab_experiments as exp
	allowed := json.patch(exp, [{"op": "add", "path": "/sonnet-vs-4o/shadow/allow_pii", "value": true}])
	experiments.shadow with input as inp with data.gavel.ab_experiments as allowed
}

test_unavailable_shadow_target if {
	no_gemini := object.remove(fx.all_up, ["gemini"])
	not experiments.shadow with input as fx.with_providers({"sample": 1}, no_gemini) with data.gavel.ab_experiments as exp
}
