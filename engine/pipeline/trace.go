package pipeline

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/policy"
)

// Span attribute keys of the policy.decide span.
const (
	attrRevision     = attribute.Key("gavel.bundle_revision")
	attrAllow        = attribute.Key("gavel.decision.allow")
	attrReasons      = attribute.Key("gavel.decision.reasons")
	attrTargets      = attribute.Key("gavel.decision.targets")
	attrDenyCode     = attribute.Key("gavel.decision.deny_code")
	spanDecide       = "policy.decide"
	maxTracedTargets = 16 // a decision naming more targets is cut in the span, not in the walk
)

// traceDecide records the policy.decide span once the decision is known: started after
// the fact at the decision's start, with every attribute at once, because nothing below
// it makes spans and a span whose attributes are all given at Start costs the SDK no
// attribute growth or de-duplication at End. A no-op when tracing is off.
func (p *Pipeline) traceDecide(ctx context.Context, start time.Time, rev *policy.Revision, d *decision.Decision, err error) {
	if p.o.Tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		// Off, or the request's trace is not sampled: its child would not be either.
		return
	}
	var attrs [6]attribute.KeyValue
	n := 0
	if rev != nil {
		attrs[n] = attrRevision.String(rev.ID)
		n++
	}
	if err != nil {
		attrs[n] = semconv.ErrorTypeKey.String("policy_error")
		n++
	} else {
		targets := make([]string, 0, min(len(d.Targets), maxTracedTargets))
		for _, t := range d.Targets[:cap(targets)] {
			targets = append(targets, t.String())
		}
		attrs[n], attrs[n+1], attrs[n+2] = attrAllow.Bool(d.Allow), attrReasons.StringSlice(d.Reasons), attrTargets.StringSlice(targets)
		n += 3
		if !d.Allow && d.Deny != nil {
			attrs[n] = attrDenyCode.String(d.Deny.Code)
			n++
		}
	}
	_, span := p.o.Tracer.Start(ctx, spanDecide, trace.WithTimestamp(start), trace.WithAttributes(attrs[:n]...))
	if err != nil {
		span.SetStatus(codes.Error, "policy_error")
	}
	span.End()
}
