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
