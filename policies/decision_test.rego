package gavel_test

import rego.v1

import data.gavel

up := {"healthy": true, "circuit": "closed", "models": {}}

test_allow_with_targets if {
	d := gavel.decision with input as {"request": {"model": "fast"}, "providers": {"mock": up}}
	d.allow == true
	d.targets == [{"provider": "mock", "model": "mock-small"}]
	"route.alias:fast" in d.reasons
}

test_unknown_model_is_404 if {
	d := gavel.decision with input as {"request": {"model": "nope"}, "providers": {"mock": up}}
	d.allow == false
	d.deny.status == 404
	d.deny.code == "model_not_found"
}

test_no_available_target_is_503 if {
	d := gavel.decision with input as {"request": {"model": "gpt-4o"}, "providers": {"mock": {"healthy": true, "circuit": "closed", "models": {"mock-large": {"circuit": "open"}}}}}
	d.allow == false
	d.deny.status == 503
	d.deny.code == "no_available_target"
}
