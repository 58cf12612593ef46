# Routing: which provider/model pairs may serve this request, best first.
#
# The ranking is precomputed per signal change in gavel.plan; what runs per request is a
# few constant-time lookups and, only when the request needs it, a filter over a handful of
# candidates. No float arithmetic, sprintf or regex on this path (see docs/performance.md).
package gavel.route

import rego.v1

import data.gavel.compliance
import data.gavel.plan as inline_plan
import input.request as req

# Hand-written inputs (gavel policy eval, opa eval) may leave fields out; gavel always sets
# them. Defaults keep such inputs meaningful.
endpoint := object.get(req, "endpoint", "chat")

est_tokens := object.get(req, "est_input_tokens", 0)

has_tools := object.get(req, "has_tools", false)

has_images := object.get(req, "has_images", false)

# Lookups into the plan go straight into input.plan: a rule whose value is the whole plan
# would make OPA copy that large object on every request. Without input.plan (opa test,
# opa eval) the plan is evaluated inline.
content_rules := r if {
	r := input.plan.content_routes[req.model]
} else := r if {
	not input.plan
	r := inline_plan.content_routes[req.model]
}

experiment := e if {
	e := input.plan.experiments[req.model]
} else := e if {
	not input.plan
	e := inline_plan.experiments[req.model]
}

max_targets := object.get(data.gavel.routing, "max_targets", 4)

# Content-based routing: the first content rule for the asked alias whose conditions hold
# sends the request to another alias (code to a code model, huge prompts to long context).
content_matches := [r | some r in content_rules; matches(r)]

name := content_matches[0].to if {
	content_matches[0]
} else := req.model

matches(r) if {
	task_ok(r)
	code_ok(r)
	est_tokens >= r.min_tokens
}

task_ok(r) if r.task == ""

task_ok(r) if r.task == req.metadata.task

code_ok(r) if not r.has_code

code_ok(_) if object.get(req, "has_code", false)

planned := r if {
	r := input.plan.routes[name]
} else := r if {
	not input.plan
	r := inline_plan.routes[name]
}

# "provider/any-model" outside the catalog passes through to a configured provider when the
# routing data allows it.
passthrough := {"provider": substring(req.model, 0, i), "model": substring(req.model, i + 1, -1)} if {
	not planned
	data.gavel.routing.passthrough_uncataloged
	i := indexof(req.model, "/")
	i > 0
	input.providers[substring(req.model, 0, i)]
}

# known: the model names something this policy can route, available or not.
known if planned

known if passthrough

# no_target: why a known model has no target for this request (see plan.no_target).
no_target := inline_plan.no_target(planned.unavailable, req.model) if {
	planned
} else := inline_plan.no_target([{"id": req.model, "why": inline_plan.why(passthrough)}], req.model)

# unknown_message says what is unknown: a provider/model names a provider this gateway
# does not have, or a model no catalog, alias or provider knows.
unknown_message := concat("", [
	"The model `", req.model, "` names provider `", substring(req.model, 0, i),
	"`, which is not configured here.",
]) if {
	i := indexof(req.model, "/")
	i > 0
	not input.providers[substring(req.model, 0, i)]
} else := concat("", ["The model `", req.model, "` does not exist or you do not have access to it."])

# The request's needs; when every candidate of the route meets them (the common case) the
# planned targets are used as they are.
tokens_needed := est_tokens + object.get(req, "max_tokens", 0)

tools_ok if not has_tools

tools_ok if planned.all_tools

vision_ok if not has_images

vision_ok if planned.all_vision

pii_ok if not compliance.pii_present

pii_ok if planned.all_pii_ok

unfiltered if {
	planned.endpoint_ok[endpoint]
	tools_ok
	vision_ok
	pii_ok
	tokens_needed <= planned.min_context
}

# Chat requests go to chat models, embeddings requests to embedding models. Anthropic
# Messages (and their count_tokens) and OpenAI Responses requests are chat in another
# wire format: the same models serve them (translated when the provider speaks another
# format).
kind_for := {"chat": "chat", "embeddings": "embedding", "messages": "chat", "count_tokens": "chat", "responses": "chat"}

fits(c) if {
	c.kind == kind_for[endpoint]
	fits_tools(c)
	fits_vision(c)
	fits_pii(c)
	tokens_needed <= c.context
}

fits_tools(_) if not has_tools

fits_tools(c) if c.tools

fits_vision(_) if not has_images

fits_vision(c) if c.vision

fits_pii(_) if not compliance.pii_present

fits_pii(c) if c.pii_ok

# unfit says why no available candidate of a known model fits this request, when the
# reason is the request's own: the client must change the request, so it gets a 400 naming
# what to change rather than a 503 its SDK would retry. Order: the endpoint, then size.
unfit := {
	"code": "unsupported_endpoint",
	"message": concat("", ["The model `", req.model, "` does not serve ", endpoint, " requests."]),
} if {
	planned.candidates[0]
	every c in planned.candidates {
		c.kind != kind_for[endpoint]
	}
} else := {
	"code": "context_length_exceeded",
	"message": concat("", [
		"This request needs about ", format_int(tokens_needed, 10),
		" tokens (its input and max_tokens); the largest context window of `", req.model,
		"` is ", format_int(max_context, 10), " tokens.",
	]),
} if {
	planned.candidates[0]
	every c in planned.candidates {
		tokens_needed > c.context
	}
}

max_context := max([c.context | some c in planned.candidates])

# pick returns the planned targets, or the candidates that fit this request.
pick(cands) := array.slice([c.target | some c in cands; fits(c)], 0, max_targets)

targets := planned.targets if {
	unfiltered
} else := pick(planned.candidates) if {
	planned
} else := [passthrough] if {
	inline_plan.usable(passthrough)
} else := []

reasons := array.concat(planned.reasons, extra_reasons) if {
	planned
} else := array.concat([concat("", ["route.passthrough:", req.model])], extra_reasons) if {
	passthrough
} else := ["route.unknown_model"]

extra_reasons := [r | some r in notes]

notes contains concat("", ["route.content:", content_matches[0].name]) if name != req.model

notes contains "route.filtered_by_capability" if {
	planned
	not unfiltered
}

notes contains "route.skipped_unavailable" if {
	passthrough
	not inline_plan.usable(passthrough)
}

# targets_for is the planned route of another alias, filtered for this request; budget
# degradation uses it.
targets_for(alias) := r.targets if {
	r := input.plan.routes[alias]
	unfiltered
} else := pick(r.candidates) if {
	r := input.plan.routes[alias]
} else := pick(r.candidates) if {
	not input.plan
	r := inline_plan.routes[alias]
}
