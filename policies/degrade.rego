# Graceful degradation beyond the plan's tier fallbacks: a stream whose primary target is
# being probed after an outage (its breaker is half-open) is served buffered, so that if
# the probe fails gavel can still fail over before the client has seen a byte.
package gavel.degrade

import rego.v1

import data.gavel.experiments
import data.gavel.route

stream_off if {
	input.request.stream
	data.gavel.routing.degrade_stream_on_half_open
	t := primary
	input.providers[t.provider].models[t.model].circuit == "half_open"
}

primary := t if {
	t := experiments.targets[0]
} else := route.targets[0]

reasons contains "degrade.stream_buffered_half_open" if stream_off
