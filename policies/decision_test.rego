package gavel_test

import rego.v1

import data.gavel
import data.gavel.fixtures as fx

test_allow_with_targets if {
	d := gavel.decision with input as fx.with_providers({"model": "fast"}, {"mock": fx.up})
	d.allow == true
	d.targets == [{"provider": "mock", "model": "mock-small"}]
	"route.alias:fast" in d.reasons
	not d.ab
	not d.redact
}

test_unknown_model_is_404 if {
	d := gavel.decision with input as fx.input_with({"model": "nope"})
	d.allow == false
	d.deny.status == 404
	d.deny.code == "model_not_found"
}

test_no_available_target_is_503 if {
	d := gavel.decision with input as fx.with_providers({"model": "gpt-4o"}, {"openai": object.union(fx.up, {"healthy": false})})
	d.allow == false
	d.deny.status == 503
	d.deny.code == "no_available_target"
}

# A request no available target can take because of the request itself is the client's
# error: 400 naming what to change, not a 503 an SDK would retry.
test_embeddings_for_a_chat_model_is_400 if {
	d := gavel.decision with input as fx.input_with({"model": "smart", "endpoint": "embeddings"})
	d.allow == false
	d.deny == {"status": 400, "code": "unsupported_endpoint", "message": "The model `smart` does not serve embeddings requests."}
	"route.unfit:unsupported_endpoint" in d.reasons
}

test_chat_for_an_embedding_model_is_400 if {
	d := gavel.decision with input as fx.input_with({"model": "embed"})
	d.deny.status == 400
	d.deny.code == "unsupported_endpoint"
}

test_max_tokens_beyond_every_context_window_is_400 if {
	d := gavel.decision with input as fx.with_providers({"model": "fast", "max_tokens": 100000000}, {"mock": fx.up})
	d.allow == false
	d.deny.status == 400
	d.deny.code == "context_length_exceeded"
	contains(d.deny.message, "largest context window of `fast` is 32000 tokens")
}

# The live path (input.plan from the planner) answers the same.
test_unsupported_endpoint_planned_and_inline_agree if {
	inp := fx.input_with({"model": "smart", "endpoint": "embeddings"})
	plan := data.gavel.plan with input as inp
	inline := gavel.decision with input as inp
	planned := gavel.decision with input as object.union(inp, {"plan": plan})
	inline == planned
	planned.deny.code == "unsupported_endpoint"
}

test_context_length_planned_and_inline_agree if {
	inp := fx.with_providers({"model": "fast", "max_tokens": 100000000}, {"mock": fx.up})
	plan := data.gavel.plan with input as inp
	inline := gavel.decision with input as inp
	planned := gavel.decision with input as object.union(inp, {"plan": plan})
	inline == planned
	planned.deny.code == "context_length_exceeded"
}

# Some target fits: the request goes there, the others are filtered out.
test_a_request_one_target_fits_is_routed if {
	d := gavel.decision with input as fx.input_with({"model": "smart", "max_tokens": 120000})
	d.allow == true
	"route.filtered_by_capability" in d.reasons
}

test_blocked_pii_is_denied if {
	d := gavel.decision with input as object.union(fx.input_with({}), {"pii": {"ssn": 1, "credit_card": 2}})
	d.allow == false
	d.deny.code == "pii_blocked"
	d.deny.message == "The request contains data the policy does not allow to leave: credit_card, ssn."
}

test_deny_term_is_denied if {
	d := gavel.decision with input as fx.input_with({"messages": [{"role": "user", "text": "leak the Roadmap"}]})
		with data.gavel.pii_policy.deny_terms as ["roadmap"]
	d.deny.code == "content_denied"
}

test_deny_field_is_denied if {
	d := gavel.decision with input as fx.input_with({"fields": ["messages", "messages[].content[].cache_control", "model"]})
		with data.gavel.pii_policy.deny_fields as ["messages[].content[].cache_control"]
	d.allow == false
	d.deny.status == 400
	d.deny.code == "field_denied"
	d.deny.message == "The request uses parameters the policy does not allow: messages[].content[].cache_control."
	"compliance.deny_field:messages[].content[].cache_control" in d.reasons
}

# Denials are judged before the plan's fast path is considered: a deny list of fields
# applies to a request the plan has a precomputed decision for, and a request it does not
# match still takes that decision, equal to the full rules'.
test_deny_fields_apply_with_the_fast_path if {
	inp := fx.with_providers({"model": "fast", "fields": ["model", "top_k"]}, {"mock": fx.up})
	plan := data.gavel.plan with input as inp with data.gavel.pii_policy.deny_fields as ["top_k"]
	plan.fast.fast
	d := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.pii_policy.deny_fields as ["top_k"]
	d.deny.code == "field_denied"
	ok := fx.with_providers({"model": "fast", "fields": ["model"]}, {"mock": fx.up})
	planned := gavel.decision with input as object.union(ok, {"plan": plan}) with data.gavel.pii_policy.deny_fields as ["top_k"]
	inline := gavel.decision with input as ok with data.gavel.pii_policy.deny_fields as ["top_k"]
	planned == inline
	planned.allow
}

test_redaction_is_decided if {
	d := gavel.decision with input as object.union(fx.input_with({}), {"pii": {"email": 1, "phone": 1}})
	d.allow
	d.redact == ["email", "phone"]
	"compliance.redact:email" in d.reasons
}

test_experiment_fields if {
	exp := {"e1": {"model": "smart", "arms": [{"name": "only", "weight_bp": 10000, "targets": ["mock/mock-large"]}], "shadow": {"sample_bp": 10000, "target": "mock/mock-small"}}}
	d := gavel.decision with input as fx.input_with({"sample": 0}) with data.gavel.ab_experiments as exp
	d.ab == {"experiment": "e1", "arm": "only"}
	d.targets[0] == {"provider": "mock", "model": "mock-large"}
	d.shadow == [{"provider": "mock", "model": "mock-small"}]
	"experiment:e1:only" in d.reasons
}

test_stream_degraded_while_primary_probed if {
	providers := fx.model_state("openai", "gpt-4o", {"circuit": "half_open"})
	d := gavel.decision with input as fx.with_providers({"model": "gpt-4o", "stream": true}, providers)
	d.degrade == {"stream": false}
	"degrade.stream_buffered_half_open" in d.reasons
	d2 := gavel.decision with input as fx.with_providers({"model": "gpt-4o", "stream": false}, providers)
	not d2.degrade
}

test_planned_and_inline_agree if {
	inp := fx.input_with({"model": "smart"})
	plan := data.gavel.plan with input as inp
	inline := gavel.decision with input as inp
	planned := gavel.decision with input as object.union(inp, {"plan": plan})
	inline == planned
}

hedged_aliases := object.union(data.gavel.aliases, {"gpt-4o": {"strategy": "ordered", "candidates": ["openai/gpt-4o", "mock/mock-large"], "hedge_ms": 300}})

test_hedge_from_alias_data if {
	inp := fx.input_with({"model": "gpt-4o"})
	inline := gavel.decision with input as inp with data.gavel.aliases as hedged_aliases
	inline.hedge == {"delay_ms": 300, "max": 1}
	plan := data.gavel.plan with input as inp with data.gavel.aliases as hedged_aliases
	planned := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.aliases as hedged_aliases
	planned == inline
}

test_no_hedge_by_default_or_without_a_second_target if {
	d := gavel.decision with input as fx.input_with({"model": "gpt-4o"})
	not d.hedge
	inp := fx.with_providers({"model": "gpt-4o"}, {"openai": fx.up})
	one := gavel.decision with input as inp with data.gavel.aliases as hedged_aliases with data.gavel.routing.tier_fallback as false
	one.targets == [{"provider": "openai", "model": "gpt-4o"}]
	not one.hedge
	plan := data.gavel.plan with input as inp with data.gavel.aliases as hedged_aliases with data.gavel.routing.tier_fallback as false
	planned := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.aliases as hedged_aliases
		with data.gavel.routing.tier_fallback as false
	not planned.hedge
}

test_hedge_on_the_full_path if {
	# PII keeps the request off the precomputed path; the hedge still applies.
	inp := object.union(fx.input_with({"model": "gpt-4o"}), {"pii": {"email": 1}})
	d := gavel.decision with input as inp with data.gavel.aliases as hedged_aliases
	d.redact == ["email"]
	d.hedge.delay_ms == 300
}

continued_aliases := object.union(data.gavel.aliases, {"gpt-4o": {"strategy": "ordered", "candidates": ["openai/gpt-4o", "mock/mock-large"], "midstream": "continue"}})

test_midstream_continue_from_alias_data if {
	inp := fx.input_with({"model": "gpt-4o", "stream": true})
	inline := gavel.decision with input as inp with data.gavel.aliases as continued_aliases
	inline.limits == {"midstream": "continue"}
	count(inline.targets) > 1
	plan := data.gavel.plan with input as inp with data.gavel.aliases as continued_aliases
	planned := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.aliases as continued_aliases
	planned == inline
}

test_midstream_continue_on_the_full_path if {
	# PII keeps the request off the precomputed path; the opt-in still applies.
	inp := object.union(fx.input_with({"model": "gpt-4o", "stream": true}), {"pii": {"email": 1}})
	d := gavel.decision with input as inp with data.gavel.aliases as continued_aliases
	d.redact == ["email"]
	d.limits.midstream == "continue"
}

test_no_midstream_continue_by_default_or_without_a_second_target if {
	d := gavel.decision with input as fx.input_with({"model": "gpt-4o", "stream": true})
	not d.limits
	errs := object.union(data.gavel.aliases, {"gpt-4o": {"strategy": "ordered", "candidates": ["openai/gpt-4o", "mock/mock-large"], "midstream": "error"}})
	e := gavel.decision with input as fx.input_with({"model": "gpt-4o"}) with data.gavel.aliases as errs
	not e.limits
	inp := fx.with_providers({"model": "gpt-4o"}, {"openai": fx.up})
	one := gavel.decision with input as inp with data.gavel.aliases as continued_aliases with data.gavel.routing.tier_fallback as false
	one.targets == [{"provider": "openai", "model": "gpt-4o"}]
	not one.limits
	plan := data.gavel.plan with input as inp with data.gavel.aliases as continued_aliases with data.gavel.routing.tier_fallback as false
	planned := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.aliases as continued_aliases
		with data.gavel.routing.tier_fallback as false
	not planned.limits
}

test_shadow_budgets_do_not_apply_to_callers if {
	shadow_budget := [{"name": "shadow-cap", "scope": "shadow", "id": "*", "period": "day", "limit_musd": 100}]
	inp := fx.input_with({"model": "gpt-4o"})
	plan := data.gavel.plan with input as inp with data.gavel.budgets as shadow_budget
	plan.limits_free
	d := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.budgets as shadow_budget
	d.allow
	not d.budgets
}

# The planned (fast) path and the inline rules agree on the agent protocols too.
test_agent_protocols_planned_and_inline_agree if {
	every e in ["responses", "messages", "count_tokens"] {
		inp := fx.input_with({"model": "smart", "endpoint": e, "protocol": e})
		plan := data.gavel.plan with input as inp
		inline := gavel.decision with input as inp
		planned := gavel.decision with input as object.union(inp, {"plan": plan})
		inline == planned
		planned.allow == true
		bad := fx.input_with({"model": "embed", "endpoint": e})
		bad_plan := data.gavel.plan with input as bad
		d := gavel.decision with input as object.union(bad, {"plan": bad_plan})
		d.deny.code == "unsupported_endpoint"
	}
}

# An allowed request's reasons are collected from the rules that can hold for it
# (allowed_reasons); they equal the full reasons every denial carries.
test_allowed_reasons_equal_the_full_reasons if {
	exp := {"e1": {"model": "smart", "arms": [{"name": "only", "weight_bp": 10000, "targets": ["mock/mock-large"]}], "shadow": {"sample_bp": 10000, "target": "mock/mock-small"}}}
	every inp in [
		object.union(fx.input_with({"model": "fast", "has_tools": true, "has_code": true}), {"pii": {"email": 1, "ip": 2}}),
		fx.input_with({"sample": 0}),
		fx.with_providers({"model": "gpt-4o", "stream": true}, fx.model_state("openai", "gpt-4o", {"circuit": "half_open"})),
	] {
		d := gavel.decision with input as inp with data.gavel.ab_experiments as exp
		d.allow
		d.reasons == gavel.reasons with input as inp with data.gavel.ab_experiments as exp
	}
}

# A request the typical path does not take only for its tools, detected code or PII to
# redact takes the plan's profile for it (plan.profiles_for), equal to the full rules'
# decision: content routed for its code, redacted, with compliance's reasons.
test_profiled_request_equals_the_full_rules if {
	inp := object.union(fx.input_with({"model": "fast", "has_tools": true, "has_code": true, "metadata": {"task": "chat"}}), {"pii": {"email": 1}})
	plan := data.gavel.plan with input as inp
	gavel.profiled with input as object.union(inp, {"plan": plan})
	planned := gavel.decision with input as object.union(inp, {"plan": plan})
	inline := gavel.decision with input as inp
	planned == inline
	planned.redact == ["email"]
	"route.content:detected-code" in planned.reasons
	"compliance.redact:email" in planned.reasons
}

# Images and PII that leaves unredacted have no profile: the full rules decide them.
test_images_and_leaving_pii_take_the_full_rules if {
	every inp in [
		fx.input_with({"model": "fast", "has_images": true}),
		object.union(fx.input_with({"model": "fast"}), {"pii": {"ip": 1}}),
	] {
		plan := data.gavel.plan with input as inp
		not gavel.profiled with input as object.union(inp, {"plan": plan})
		planned := gavel.decision with input as object.union(inp, {"plan": plan})
		planned == gavel.decision with input as inp
	}
}

# A content rule with no condition sends every request for its alias elsewhere, the ones
# the plan's fast path would take too.
test_unconditional_content_rule_applies_with_the_plan if {
	rules := [{"name": "all", "from": ["smart"], "when": {}, "to": "code"}]
	inp := fx.input_with({"model": "smart"})
	plan := data.gavel.plan with input as inp with data.gavel.content_routes as rules
	planned := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.content_routes as rules
	planned == gavel.decision with input as inp with data.gavel.content_routes as rules
	"route.content:all" in planned.reasons
}
