package gavel.keys_test

import rego.v1

import data.gavel
import data.gavel.fixtures as fx

# A key's own limits (input.caller.models, rpm, tpm, budget_musd, budget_period), on the
# inline rules and on the plan's fast path alike.

with_caller(req, extra) := object.union(fx.input_with(req), {"caller": object.union(fx.input_with(req).caller, extra)})

# planned is the decision on the fast path: the plan computed for the input, as gavel does.
inline(inp) := d if {
	d := gavel.decision with input as inp
}

planned(inp) := d if {
	plan := data.gavel.plan with input as inp
	d := gavel.decision with input as object.union(inp, {"plan": plan})
}

test_key_models_allow_listed_model if {
	inp := with_caller({"model": "smart"}, {"models": ["fast", "smart"]})
	inline(inp).allow
	planned(inp).allow
}

test_key_models_deny_other_model_403 if {
	inp := with_caller({"model": "smart"}, {"models": ["fast"]})
	every d in [inline(inp), planned(inp)] {
		d.allow == false
		d.deny.status == 403
		d.deny.code == "model_not_allowed"
		contains(d.deny.message, "`smart`")
		d.remediation.models == ["fast"]
		"access.key_model_denied:smart" in d.reasons
	}
}

test_no_key_models_allows_any if {
	inp := with_caller({"model": "smart"}, {"models": []})
	planned(inp).allow
}

test_key_budget_enforced_on_both_paths if {
	inp := with_caller({"model": "smart"}, {"budget_musd": 2000000, "budget_period": "month"})
	want := {"name": "key_budget", "scope": "key", "id": "k1", "period": "month", "limit_musd": 2000000, "hard": true, "soft_bp": 10000}
	every d in [inline(inp), planned(inp)] {
		d.allow
		want in d.budgets
	}
}

test_key_rate_limit_enforced_on_both_paths if {
	inp := with_caller({"model": "smart"}, {"rpm": 5, "tpm": 0})
	every d in [inline(inp), planned(inp)] {
		d.allow
		d.rate_limits == [{"scope": "key", "id": "k1", "rpm": 5, "tpm": 0}]
	}
}

test_key_limits_join_bundle_limits if {
	inp := with_caller({"model": "smart"}, {"tpm": 1000})
	d := planned(inp) with data.gavel.rate_limits as [{"scope": "team", "rpm": 600}]
	d.rate_limits == [{"scope": "team", "id": "search", "rpm": 600, "tpm": 0}, {"scope": "key", "id": "k1", "rpm": 0, "tpm": 1000}]
}

test_no_key_limits_keeps_the_fast_path_limit_free if {
	inp := with_caller({"model": "smart"}, {"rpm": 0, "tpm": 0, "budget_musd": 0})
	d := planned(inp)
	d.allow
	not d.budgets
	not d.rate_limits
}
