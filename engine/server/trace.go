package server

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys of gavel's own.
const (
	attrDecisionID = attribute.Key("gavel.decision_id")
	attrRoute      = attribute.Key("gavel.route")
	attrCache      = attribute.Key("gavel.cache")
	attrSimilarity = attribute.Key("gavel.cache.similarity_bp")
	attrArm        = attribute.Key("gavel.arm")
	attrExperiment = attribute.Key("gavel.experiment")
	attrRevision   = attribute.Key("gavel.bundle_revision")
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
		attrs := [11]attribute.KeyValue{semconv.HTTPRequestMethodKey.String(r.Method), semconv.HTTPRoute(route),
			semconv.URLPath(r.URL.Path), semconv.HTTPResponseStatusCode(resp.Status)}
		n := 4
		for _, a := range [...]struct {
			k      attribute.Key
			header string
		}{{attrDecisionID, HeaderDecisionID}, {attrRoute, HeaderRoute}, {attrArm, HeaderArm}, {attrExperiment, HeaderExperiment}, {attrRevision, HeaderRevision}, {attrCache, HeaderCache}, {attrSimilarity, HeaderCacheSimilarity}} {
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
