package gavel.access_test

import rego.v1

import data.gavel
import data.gavel.fixtures as fx

tiers := {"silver": ["standard", "economy"]}

as_tier(over, tier) := object.union(fx.input_with(over), {"caller": {"tier": tier}})

# live evaluates as gavel does: with the plan, so the fast path is taken when it may be.
live(inp) := d if {
	plan := data.gavel.plan with input as inp with data.gavel.tier_access as tiers
	d := gavel.decision with input as object.union(inp, {"plan": plan}) with data.gavel.tier_access as tiers
}

test_restricted_tier_denied_premium_with_the_aliases_it_may_use if {
	every model in ["smart", "gpt-4o"] {
		inp := as_tier({"model": model}, "silver")
		denied_with_aliases(gavel.decision) with input as inp with data.gavel.tier_access as tiers
		denied_with_aliases(live(inp))
	}
}

denied_with_aliases(d) if {
	d.allow == false
	d.deny.status == 403
	d.deny.code == "tier_not_allowed"
	contains(d.deny.message, "`silver` tier")
	"fast" in d.remediation.models
	"cheap" in d.remediation.models
	not "smart" in d.remediation.models
	not "embed" in d.remediation.models
}

test_restricted_tier_keeps_its_own_models if {
	d := live(as_tier({"model": "fast"}, "silver"))
	d.allow
	d.targets[0] == {"provider": "openai", "model": "gpt-4o-mini"}
}

test_unlisted_tier_is_unrestricted if {
	d := live(as_tier({"model": "smart"}, "gold"))
	d.allow
	not data.gavel.access.denied with input as as_tier({"model": "smart"}, "silver") # no tier_access data: nobody is restricted
}
