package gavel.chaos_test

import rego.v1

import data.gavel
import data.gavel.fixtures

drill := {"alias": "smart", "sample_bp": 500, "kind": "error", "status": 503}

test_no_drill_by_default if {
	d := gavel.decision with input as fixtures.input_with({})
	d.allow
	not d.fault
}

test_drill_in_sample_faults_the_alias if {
	d := gavel.decision with input as fixtures.input_with({"sample": 499}) with data.gavel.faults as [drill]
	d.allow
	d.fault == {"kind": "error", "status": 503}
	"faults.drill:error" in d.reasons
}

test_drill_outside_sample_leaves_request_alone if {
	d := gavel.decision with input as fixtures.input_with({"sample": 500}) with data.gavel.faults as [drill]
	not d.fault
}

test_drill_other_alias_untouched if {
	d := gavel.decision with input as fixtures.input_with({"model": "fast", "sample": 0}) with data.gavel.faults as [drill]
	not d.fault
}

test_first_matching_drill_wins if {
	second := {"alias": "smart", "kind": "latency", "delay_ms": 200}
	d := gavel.decision with input as fixtures.input_with({"sample": 9999}) with data.gavel.faults as [drill, second]
	d.fault == {"kind": "latency", "delay_ms": 200}
}

test_drill_carries_attempt_and_chunks if {
	cut := {"alias": "smart", "kind": "cut_stream", "after_chunks": 2, "attempt": 1}
	d := gavel.decision with input as fixtures.input_with({"stream": true}) with data.gavel.faults as [cut]
	d.fault == {"kind": "cut_stream", "after_chunks": 2, "attempt": 1}
}

test_denied_request_gets_no_fault if {
	d := gavel.decision with input as fixtures.input_with({"model": "no-such-model", "sample": 0}) with data.gavel.faults as [object.union(drill, {"alias": "no-such-model"})]
	not d.allow
	not d.fault
}

# A drilled alias leaves the plan's fast path, so the per-request rules sample it; other
# aliases keep theirs.
test_drilled_alias_has_no_fast_path if {
	fast := data.gavel.plan.fast with input as {"providers": fixtures.all_up} with data.gavel.faults as [drill]
	not fast.smart
	fast.fast
}
