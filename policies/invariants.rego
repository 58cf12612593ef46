# Invariants: promises the default library makes about every decision, whatever the input.
# `gavel policy test --properties N` evaluates them on N generated inputs (edge cases
# favoured: PII, exhausted budgets, open breakers, unhealthy providers, unknown models,
# huge token counts) and reports each input that breaks one, shrunk to a minimal
# counterexample. Each rule reads input and data.gavel.decision; a message names the broken
# promise.
package gavel.invariants

import rego.v1

import data.gavel.budget
import data.gavel.compliance

decision := data.gavel.decision

# targets is read through object.get: a bundle whose decision is a constant without targets
# (a deny-only policy) must still compile under the strict type checker.
targets := object.get(decision, "targets", [])

target_id(t) := concat("/", [t.provider, t.model])

# A request carrying PII of a type the caller's team blocks never reaches a provider.
invariant contains msg if {
	some t in compliance.blocked
	decision.allow
	msg := concat("", ["PII of blocked type ", t, " was allowed to ", target_id(targets[0])])
}

# PII that leaves unredacted goes only to providers with the required tag.
invariant contains msg if {
	compliance.pii_present
	decision.allow
	some t in targets
	not data.gavel.pii_policy.pii_requires_tag in object.get(data.gavel.providers, [t.provider, "tags"], [])
	msg := concat("", ["PII sent to ", target_id(t), ", a provider without the tag ", data.gavel.pii_policy.pii_requires_tag])
}

# A denied request carries no targets.
invariant contains "a denied request carries targets" if {
	decision.allow == false
	count(object.get(decision, "targets", [])) > 0
}

# A hard budget used up denies.
invariant contains msg if {
	some name in budget.exhausted
	decision.allow
	msg := concat("", ["hard budget ", name, " is exhausted, yet the request was allowed"])
}

# No target (primary or fallback) has an open circuit.
invariant contains msg if {
	decision.allow
	some t in targets
	open(t)
	msg := concat("", ["target ", target_id(t), " has an open circuit"])
}

open(t) if input.providers[t.provider].circuit == "open"

open(t) if input.providers[t.provider].models[t.model].circuit == "open"
