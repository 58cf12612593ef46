package gavel.compliance_test

import rego.v1

import data.gavel.compliance
import data.gavel.fixtures as fx

with_pii(pii) := object.union(fx.input_with({}), {"pii": pii})

test_no_pii_no_action if {
	count(compliance.found) == 0 with input as with_pii({})
	not compliance.pii_present with input as with_pii({})
}

test_default_actions if {
	inp := with_pii({"credit_card": 1, "email": 2, "ip": 1, "phone": 0})
	compliance.blocked == {"credit_card"} with input as inp
	compliance.redact == {"email"} with input as inp
	compliance.pii_present with input as inp
	"compliance.blocked:credit_card" in compliance.reasons with input as inp
	"compliance.redact:email" in compliance.reasons with input as inp
	"compliance.pii_restricted_providers" in compliance.reasons with input as inp
}

test_team_override if {
	inp := with_pii({"email": 1})
	compliance.redact == {"email"} with input as inp
	count(compliance.redact) == 0 with input as inp
		with data.gavel.pii_policy.pii_actions.teams as {"search": {"email": "allow"}}
	compliance.pii_present with input as inp
		with data.gavel.pii_policy.pii_actions.teams as {"search": {"email": "allow"}}
}

test_unknown_type_is_allowed if {
	compliance.pii_present with input as with_pii({"passport": 1})
}

test_deny_terms_match_user_messages_case_insensitively if {
	inp := fx.input_with({"messages": [{"role": "system", "text": "Project Falcon is secret"}, {"role": "user", "text": "Tell me about PROJECT FALCON"}]})
	compliance.denied_terms == ["project falcon"] with input as inp
		with data.gavel.pii_policy.deny_terms as ["project falcon"]
	"compliance.deny_term:project falcon" in compliance.reasons with input as inp
		with data.gavel.pii_policy.deny_terms as ["project falcon"]
	compliance.denied_terms == [] with input as fx.input_with({"messages": [{"role": "system", "text": "project falcon"}]})
		with data.gavel.pii_policy.deny_terms as ["project falcon"]
}

test_deny_fields_match_the_fields_the_request_carries if {
	inp := fx.input_with({"fields": ["messages", "model", "top_k", "verbosity"]})
	compliance.denied_fields == ["top_k", "verbosity"] with input as inp
		with data.gavel.pii_policy.deny_fields as ["verbosity", "top_k", "logit_bias"]
	"compliance.deny_field:verbosity" in compliance.reasons with input as inp
		with data.gavel.pii_policy.deny_fields as ["verbosity"]
	compliance.denied_fields == [] with input as inp
	compliance.denied_fields == [] with input as fx.input_with({})
		with data.gavel.pii_policy.deny_fields as ["verbosity"]
}
