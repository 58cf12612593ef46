# Compliance: what happens to personal data and forbidden content.
#
# gavel's Go detectors put counts of findings per type into input.pii (email, phone,
# credit_card, ssn, iban, ip, secret), so these rules never scan prompt text for PII. Per
# type and team the action is block, redact (the executor masks it before anything leaves
# the gateway) or allow; allowed PII may only go to providers carrying the tag in
# data.gavel.pii_policy.pii_requires_tag (gavel.route filters on it).
package gavel.compliance

import rego.v1

import data.gavel.pii_policy as cfg

# actions: the caller's team's PII actions over the default ones; a type neither lists is
# allowed. One object per request, looked up per type found, rather than a function
# evaluated per type by each rule below (OPA does not cache function calls).
actions := object.union(
	object.get(cfg.pii_actions, "default", {}),
	object.get(cfg.pii_actions, ["teams", input.caller.team], {}),
)

action(t) := object.get(actions, t, "allow")

found contains t if {
	some t, n in input.pii
	n > 0
}

blocked contains t if {
	some t, n in input.pii
	n > 0
	actions[t] == "block"
}

redact contains t if {
	some t, n in input.pii
	n > 0
	actions[t] == "redact"
}

# pii_present: personal data will leave the gateway as it is.
pii_present if {
	some t, n in input.pii
	n > 0
	action(t) == "allow"
}

# Deny-listed terms, matched case-insensitively in user messages. Only evaluated when the
# list is non-empty: lower() over a large prompt is not free.
denied_terms := [term |
	count(cfg.deny_terms) > 0
	some m in input.request.messages
	m.role == "user"
	text := lower(m.text)
	some term in cfg.deny_terms
	contains(text, term)
]

# Request parameters the operator does not allow (data.gavel.pii_policy.deny_fields), matched
# against input.request.fields: the body's top-level members, and nested unknown ones by
# path (messages[].content[].cache_control). Sorted, for a stable message.
denied_fields := sort([f |
	count(object.get(cfg, "deny_fields", [])) > 0
	some f in input.request.fields
	f in cfg.deny_fields
])

reasons contains concat("", ["compliance.blocked:", t]) if some t in blocked

reasons contains r if some r in notes

# notes are the reasons an allowed request can carry (gavel.allowed_reasons).
notes contains concat("", ["compliance.redact:", t]) if some t in redact

notes contains "compliance.pii_restricted_providers" if pii_present

reasons contains concat("", ["compliance.deny_term:", denied_terms[0]]) if denied_terms[0]

reasons contains concat("", ["compliance.deny_field:", f]) if some f in denied_fields
