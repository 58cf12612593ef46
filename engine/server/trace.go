package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/engine/policy"
)

// Span attribute keys of gavel's own.
const (
	attrDecisionID   = attribute.Key("gavel.decision_id")
	attrRoute        = attribute.Key("gavel.route")
	attrArm          = attribute.Key("gavel.arm")
	attrExperiment   = attribute.Key("gavel.experiment")
	attrRevision     = attribute.Key("gavel.bundle_revision")
	attrAllow        = attribute.Key("gavel.decision.allow")
	attrReasons      = attribute.Key("gavel.decision.reasons")
	attrTargets      = attribute.Key("gavel.decision.targets")
	attrDenyCode     = attribute.Key("gavel.decision.deny_code")
	spanDecide       = "policy.decide"
	maxTracedTargets = 16 // a decision naming more targets is cut in the span, not in the walk
)

var serverKind = trace.WithSpanKind(trace.SpanKindServer)

// tracer is the server's tracing state; nil when tracing is off, and then no middleware
// is installed and no span started.
type tracer struct {
	t     trace.Tracer
	prop  propagation.TextMapPropagator
	names map[routeKey]string // "METHOD route", built once for the routes
}

type routeKey struct{ method, path string }

// traced is the server-span middleware: the client's W3C traceparent/tracestate are
// continued, the span is named after the route (not the path, which may carry ids), and
// the gateway's answer (decision id, route, arm, revision, status) is copied from the
// response headers every request carries.
func (tr *tracer) traced(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		ctx := tr.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		route := c.Path()
		name, ok := tr.names[routeKey{r.Method, route}]
		if !ok {
			name = r.Method // unknown route or method: no route in the name (HTTP semconv)
		}
		ctx, span := tr.t.Start(ctx, name, serverKind)
		c.SetRequest(r.WithContext(ctx))
		if err := next(c); err != nil {
			// Write the error now, so the span sees the status the client gets.
			c.Error(err)
		}
		if !span.IsRecording() {
			span.End() // not sampled: nothing to record
			return nil
		}
		resp := c.Response()
		h := resp.Header()
		// One SetAttributes at the end: the span's attribute slice is allocated once.
		attrs := [9]attribute.KeyValue{semconv.HTTPRequestMethodKey.String(r.Method), semconv.HTTPRoute(route),
			semconv.URLPath(r.URL.Path), semconv.HTTPResponseStatusCode(resp.Status)}
		n := 4
		for _, a := range [...]struct {
			k      attribute.Key
			header string
		}{{attrDecisionID, HeaderDecisionID}, {attrRoute, HeaderRoute}, {attrArm, HeaderArm}, {attrExperiment, HeaderExperiment}, {attrRevision, HeaderRevision}} {
			if v := h.Get(a.header); v != "" {
				attrs[n] = a.k.String(v)
				n++
			}
		}
		span.SetAttributes(attrs[:n]...)
		if resp.Status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, strconv.Itoa(resp.Status))
		}
		span.End()
		return nil
	}
}

// traceDecide records the policy.decide span once the decision is known: started after
// the fact at the decision's start, with every attribute at once, because nothing below
// it makes spans and a span whose attributes are all given at Start costs the SDK no
// attribute growth or de-duplication at End. A no-op when tracing is off.
func (s *Server) traceDecide(ctx context.Context, start time.Time, rev *policy.Revision, d *policy.Decision, err error) {
	if s.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
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
	_, span := s.tracer.t.Start(ctx, spanDecide, trace.WithTimestamp(start), trace.WithAttributes(attrs[:n]...))
	if err != nil {
		span.SetStatus(codes.Error, "policy_error")
	}
	span.End()
}

// shadowLink is the request's span context, which the shadows' own root spans link to;
// zero when tracing is off.
func (s *Server) shadowLink(ctx context.Context) trace.SpanContext {
	if s.tracer == nil {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(ctx)
}
