package gavel.remediation_test

import rego.v1

import data.gavel
import data.gavel.fixtures as fx

# 2026-12-07T12:00:00Z
noon := 1796644800000000000

test_pii_block_names_the_types_to_remove if {
	d := gavel.decision with input as object.union(fx.input_with({"model": "fast"}), {"pii": {"credit_card": 1, "ssn": 2, "email": 1}})
	d.deny.code == "pii_blocked"
	d.remediation == {"pii": ["credit_card", "ssn"]}
}

test_exhausted_budget_says_when_it_resets if {
	every tc in [
		{"period": "day", "resets": "2026-12-08T00:00:00Z", "retry": 43200},
		{"period": "month", "resets": "2027-01-01T00:00:00Z", "retry": 2116800},
	] {
		budgets := [{"name": "team", "scope": "team", "period": tc.period, "limit_musd": 1000}]
		d := gavel.decision with input as exhausted_at_noon with data.gavel.budgets as budgets
		d.deny.code == "insufficient_quota"
		d.remediation == {"budget": {"name": "team", "remaining_musd": 0, "resets_at": tc.resets}, "retry_after_s": tc.retry}
	}
}

exhausted_at_noon := object.union(fx.input_with({"model": "smart"}), {"now": noon, "spend": {"team": {"spent_musd": 1200, "reserved_musd": 0, "limit_musd": 1000}}})

test_exhausted_budget_without_a_clock if {
	budgets := [{"name": "team", "scope": "team", "period": "day", "limit_musd": 1000}]
	inp := object.union(fx.input_with({"model": "smart"}), {"spend": {"team": {"spent_musd": 1000, "reserved_musd": 0, "limit_musd": 1000}}})
	d := gavel.decision with input as inp with data.gavel.budgets as budgets
	d.remediation == {"budget": {"name": "team", "remaining_musd": 0}}
}

test_unknown_model_lists_the_aliases if {
	d := gavel.decision with input as fx.input_with({"model": "gpt-9"})
	d.deny.code == "model_not_found"
	"smart" in d.remediation.models
	"fast" in d.remediation.models
	not "embed" in d.remediation.models
}

test_context_length_gives_the_max_tokens_that_fit if {
	d := gavel.decision with input as fx.input_with({"model": "fast", "max_tokens": 100000000})
	d.deny.code == "context_length_exceeded"
	largest := max([c.context_window | some id, c in data.gavel.catalog; id in data.gavel.aliases.fast.candidates])
	d.remediation == {"max_tokens": largest - 10}
}

test_wrong_endpoint_lists_the_endpoint_aliases if {
	d := gavel.decision with input as fx.input_with({"model": "smart", "endpoint": "embeddings"})
	d.deny.code == "unsupported_endpoint"
	"embed" in d.remediation.models
	not "smart" in d.remediation.models
}

test_allowed_decisions_carry_none if {
	d := gavel.decision with input as fx.input_with({"model": "smart"})
	d.allow
	not d.remediation
}
