# A/B experiments and shadow traffic.
#
# An experiment (data.gavel.ab_experiments) applies to requests for one model or alias, for
# all teams or the listed ones. Arms split input.request.bucket (0–9999, sticky per user)
# into ranges by weight (gavel.plan computes the ranges and zeroes an arm whose canary
# tripped); requests outside every range get the normal route. A shadow copy goes, for
# input.request.sample < sample_bp, to the experiment's shadow target — never for a request
# carrying personal data unless the experiment allows it.
package gavel.experiments

import rego.v1

import data.gavel.compliance
import data.gavel.route

exp := route.experiment

in_scope if count(exp.teams) == 0

in_scope if input.caller.team in exp.teams

arm := a if {
	in_scope
	some a in exp.arms
	a.lo <= input.request.bucket
	input.request.bucket < a.hi
}

ab := {"experiment": exp.name, "arm": arm.name} if arm

# The arm's targets first, then the normal route's as fallbacks.
targets := array.concat(picked, [t | some t in route.targets; not t in picked]) if {
	picked := route.pick(arm.candidates)
	picked[0]
}

shadow := [exp.shadow.target] if {
	in_scope
	input.request.sample < exp.shadow.sample_bp
	shadow_pii_ok
}

shadow_pii_ok if not compliance.pii_present

shadow_pii_ok if exp.shadow.allow_pii

reasons contains concat("", ["experiment:", exp.name, ":", arm.name]) if arm

reasons contains concat("", ["shadow:", exp.name]) if shadow

# A rolled-back canary arm says so, and on which signal, in every decision of its experiment.
reasons contains concat("", ["canary:", exp.name, ":", a.name, ":", a.canary]) if {
	in_scope
	some a in exp.arms
	a.canary != ""
}
