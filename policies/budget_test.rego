package gavel.budget_test

import rego.v1

import data.gavel
import data.gavel.budget
import data.gavel.fixtures as fx

budgets := [
	{"name": "team-daily", "scope": "team", "period": "day", "limit_musd": 1000000, "hard": true, "soft_bp": 8000, "degrade_to": "cheap"},
	{"name": "global-monthly", "scope": "global", "period": "month", "limit_musd": 100000000},
	{"name": "project-soft", "scope": "project", "period": "day", "limit_musd": 500, "hard": false},
]

with_spend(spend) := object.union(fx.input_with({"model": "smart"}), {"spend": spend})

test_budgets_named_for_the_caller if {
	d := gavel.decision with input as with_spend({}) with data.gavel.budgets as budgets
	d.allow
	{b.name: b.id | some b in d.budgets} == {"team-daily": "search", "global-monthly": "", "project-soft": "web"}
	some b in d.budgets
	b.name == "project-soft"
	b.hard == false
}

test_scope_without_caller_value_does_not_apply if {
	inp := object.union(with_spend({}), {"caller": {"team": ""}})
	not "team-daily" in {b.name | some b in budget.applicable} with input as inp with data.gavel.budgets as budgets
}

test_exhausted_hard_budget_denies_429 if {
	d := gavel.decision with input as with_spend({"team-daily": {"spent_musd": 900000, "reserved_musd": 100000, "limit_musd": 1000000}})
		with data.gavel.budgets as budgets
	d.allow == false
	d.deny.status == 429
	d.deny.code == "insufficient_quota"
	contains(d.deny.message, "team-daily")
	"budget.exhausted:team-daily" in d.reasons
}

test_soft_budget_never_denies if {
	d := gavel.decision with input as with_spend({"project-soft": {"spent_musd": 9000, "reserved_musd": 0, "limit_musd": 500}})
		with data.gavel.budgets as budgets
	d.allow
}

test_soft_threshold_degrades_to_cheaper_alias if {
	inp := with_spend({"team-daily": {"spent_musd": 850000, "reserved_musd": 0, "limit_musd": 1000000}})
	d := gavel.decision with input as inp with data.gavel.budgets as budgets
	d.allow
	d.targets[0] == {"provider": "openai", "model": "gpt-4o-mini"}
	"budget.soft:team-daily->cheap" in d.reasons
	d2 := gavel.decision with input as with_spend({"team-daily": {"spent_musd": 100, "reserved_musd": 0, "limit_musd": 1000000}}) with data.gavel.budgets as budgets
	d2.targets[0] != {"provider": "openai", "model": "gpt-4o-mini"}
}

test_rate_limits_named_for_the_caller if {
	d := gavel.decision with input as with_spend({}) with data.gavel.rate_limits as [{"scope": "key", "rpm": 60, "tpm": 10000}, {"scope": "team", "rpm": 600}]
	d.rate_limits == [{"scope": "key", "id": "k1", "rpm": 60, "tpm": 10000}, {"scope": "team", "id": "search", "rpm": 600, "tpm": 0}]
}

test_no_budgets_keeps_fast_path if {
	plan := data.gavel.plan with input as fx.input_with({"model": "smart"})
	d := gavel.decision with input as object.union(fx.input_with({"model": "smart"}), {"plan": plan})
	not d.budgets
	not d.rate_limits
}

test_fast_path_with_budgets_agrees_with_full_rules if {
	rl := [{"scope": "key", "rpm": 60}]
	inp := with_spend({"team-daily": {"spent_musd": 10, "reserved_musd": 0, "limit_musd": 1000000}})
	plan := data.gavel.plan with input as inp with data.gavel.budgets as budgets with data.gavel.rate_limits as rl
	inline := gavel.decision with input as inp with data.gavel.budgets as budgets with data.gavel.rate_limits as rl
	planned := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.budgets as budgets with data.gavel.rate_limits as rl
	planned == inline
	count(planned.budgets) == 3
	planned.rate_limits[0].scope == "key"
}

test_fast_path_denies_exhausted_budget if {
	inp := with_spend({"team-daily": {"spent_musd": 1000000, "reserved_musd": 0, "limit_musd": 1000000}})
	plan := data.gavel.plan with input as inp with data.gavel.budgets as budgets
	d := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.budgets as budgets
	d.deny.code == "insufficient_quota"
}
