# Chaos drills by policy (docs/reliability.md, "Running a chaos drill"). Each entry of
# data.gavel.faults puts a fault into a sample of one alias's traffic:
#   {"alias": "chat", "sample_bp": 500, "kind": "error", "status": 503, "attempt": 1}
# sample_bp (0–10000, default 10000) is the share of the alias's requests drilled, in basis
# points of input.request.sample; the other fields are the decision's fault as the policy
# contract documents it. The list is empty by default: no drill runs. gavel honours a fault
# only with faults.enabled in gavel.yaml, and refuses to activate a bundle that lists
# drills otherwise.
package gavel.chaos

import rego.v1

# drills are the entries that apply to this request, in data order: the first one wins.
drills := [d |
	some d in data.gavel.faults
	d.alias == input.request.model
	input.request.sample < object.get(d, "sample_bp", 10000)
]

# fault is the decision's fault: the first applicable drill without its selectors.
fault := object.remove(drills[0], {"alias", "sample_bp"})

reasons contains concat("", ["faults.drill:", fault.kind]) if fault
