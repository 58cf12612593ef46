package tracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/adapters"
)

// The environment variables gavel itself reads (through getenv). The SDK reads the rest
// (OTEL_BSP_*, OTEL_EXPORTER_OTLP_TIMEOUT, certificates, compression) from the process
// environment as usual.
const (
	EnvExporter        = "OTEL_TRACES_EXPORTER"
	EnvEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvHeaders         = "OTEL_EXPORTER_OTLP_HEADERS"
	EnvTracesHeaders   = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
	EnvServiceName     = "OTEL_SERVICE_NAME"
	EnvResourceAttrs   = "OTEL_RESOURCE_ATTRIBUTES"
	EnvSampler         = "OTEL_TRACES_SAMPLER"
	EnvSamplerArg      = "OTEL_TRACES_SAMPLER_ARG"
	DefaultServiceName = "gavel"
	// InstrumentationName names gavel's tracer.
	InstrumentationName = "github.com/gavel-gw/gavel"
)

// Tracing is a configured tracer provider. A nil *Tracing is tracing off; every method is
// nil-safe.
type Tracing struct {
	provider   trace.TracerProvider
	sdk        *sdktrace.TracerProvider // owned (built from the environment); nil when the caller owns the provider
	propagator propagation.TextMapPropagator
	tracer     trace.Tracer
}

// Enabled reports whether the environment asks for traces.
func Enabled(getenv func(string) string) bool {
	kinds, err := exporters(getenv)
	return err != nil || len(kinds) > 0 // a bad value is on, so FromEnv reports it
}

// exporters lists the exporters OTEL_TRACES_EXPORTER names (a comma-separated list), or
// otlp when only an endpoint is set.
func exporters(getenv func(string) string) ([]string, error) {
	v := strings.TrimSpace(getenv(EnvExporter))
	if v == "" {
		if getenv(EnvEndpoint) != "" || getenv(EnvTracesEndpoint) != "" {
			return []string{"otlp"}, nil
		}
		return nil, nil
	}
	var kinds []string
	for _, k := range strings.Split(v, ",") {
		switch k = strings.TrimSpace(k); k {
		case "none":
		case "otlp", "console":
			kinds = append(kinds, k)
		default:
			return nil, fmt.Errorf("%s: unknown exporter %q (use otlp, console or none)", EnvExporter, k)
		}
	}
	return kinds, nil
}

// FromEnv builds tracing from the OTEL_* environment; nil (tracing off) when it asks for
// none. log receives the SDK's export errors.
func FromEnv(ctx context.Context, getenv func(string) string, log *slog.Logger) (*Tracing, error) {
	kinds, err := exporters(getenv)
	if err != nil || len(kinds) == 0 {
		return nil, err
	}
	opts := make([]sdktrace.TracerProviderOption, 0, len(kinds)+2)
	for _, k := range kinds {
		exp, err := newExporter(ctx, k, getenv)
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	res, err := newResource(getenv)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	opts = append(opts, sdktrace.WithResource(res))
	if getenv(EnvSampler) != "" {
		s, err := sampler(getenv(EnvSampler), getenv(EnvSamplerArg))
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		opts = append(opts, sdktrace.WithSampler(s))
	}
	if log != nil {
		// The SDK's default handler prints to stderr; gavel's log is where operators look.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "err", err) }))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	t := New(tp)
	t.sdk = tp
	return t, nil
}

// New wraps a tracer provider the caller owns (tests inject a span recorder this way);
// Shutdown leaves it running.
func New(tp trace.TracerProvider) *Tracing {
	if tp == nil {
		return nil
	}
	return &Tracing{provider: tp, tracer: tp.Tracer(InstrumentationName),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
}

// Tracer returns gavel's tracer, or nil when tracing is off.
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.tracer
}

// Propagator returns the W3C trace-context and baggage propagator, or nil when off.
func (t *Tracing) Propagator() propagation.TextMapPropagator {
	if t == nil {
		return nil
	}
	return t.propagator
}

// Transport wraps an upstream transport so a call made for a traced request carries the
// W3C traceparent (and tracestate, baggage) of the span in its context to the provider.
//
// It makes no span of its own: the executor's attempt span is the client span of the
// call (GenAI semconv), and otelhttp's transport, which adds an HTTP span under it, cost
// ~7 µs and 25 allocations per call in BenchmarkTransport against ~1 µs and 6 for this
// one — a large share of the budget tracing has on the request path.
func (t *Tracing) Transport(rt http.RoundTripper) http.RoundTripper {
	if t == nil {
		return rt
	}
	return &propagating{next: rt, prop: t.propagator}
}

// propagating injects the context's trace headers into a copy of each request.
type propagating struct {
	next http.RoundTripper
	prop propagation.TextMapPropagator
}

func (p *propagating) RoundTrip(r *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(r.Context()).IsValid() {
		// A call made for no traced request (a health probe) carries nothing.
		return p.next.RoundTrip(r)
	}
	// A RoundTripper must not modify the request it is given: copy it and its header.
	r2 := *r
	r2.Header = make(http.Header, len(r.Header)+2)
	for k, v := range r.Header {
		r2.Header[k] = v
	}
	p.prop.Inject(r.Context(), propagation.HeaderCarrier(r2.Header))
	return p.next.RoundTrip(&r2)
}

// CloseIdleConnections keeps http.Client.CloseIdleConnections reaching the wrapped
// transport: a closed provider must not leave idle connections behind.
func (p *propagating) CloseIdleConnections() {
	if ci, ok := p.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// Instrument makes a provider's upstream calls traced when it allows its transport to be
// wrapped; a no-op when tracing is off.
func (t *Tracing) Instrument(p adapters.Provider) {
	if t == nil {
		return
	}
	if w, ok := p.(adapters.TransportWrapper); ok {
		w.WrapTransport(t.Transport)
	}
}

// Shutdown flushes pending spans and stops the exporters, within ctx's deadline.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

func newExporter(ctx context.Context, kind string, getenv func(string) string) (sdktrace.SpanExporter, error) {
	if kind == "console" {
		return stdouttrace.New(stdouttrace.WithWriter(consoleOut))
	}
	protocol := first(getenv(EnvTracesProtocol), getenv(EnvProtocol), "http/protobuf")
	headers, err := pairs(first(getenv(EnvTracesHeaders), getenv(EnvHeaders)))
	if err != nil {
		// The value may hold a collector's credentials: name the variable, not its value.
		return nil, fmt.Errorf("%s: %w", EnvHeaders, err)
	}
	// The exporters read the same variables from the process environment; passing what
	// getenv says keeps one source of truth when the gateway is given another environment.
	switch protocol {
	case "grpc":
		var opts []otlptracegrpc.Option
		if u := first(getenv(EnvTracesEndpoint), getenv(EnvEndpoint)); u != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(u))
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	case "http/protobuf":
		var opts []otlptracehttp.Option
		if u := getenv(EnvTracesEndpoint); u != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(u))
		} else if u := getenv(EnvEndpoint); u != "" {
			// The generic endpoint is a base URL: the signal's path is appended (OTLP spec).
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimRight(u, "/")+"/v1/traces"))
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(headers))
		}
		return otlptracehttp.New(ctx, opts...)
	}
	return nil, fmt.Errorf("%s: unsupported protocol %q (use grpc or http/protobuf)", EnvProtocol, protocol)
}

// consoleOut is where the console exporter writes.
var consoleOut io.Writer = os.Stdout

func newResource(getenv func(string) string) (*resource.Resource, error) {
	attrs, err := pairs(getenv(EnvResourceAttrs))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvResourceAttrs, err)
	}
	kv := make([]attribute.KeyValue, 0, len(attrs)+1)
	for k, v := range attrs {
		kv = append(kv, attribute.String(k, v))
	}
	// OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (OTel spec).
	name := first(getenv(EnvServiceName), attrs[string(semconv.ServiceNameKey)], DefaultServiceName)
	kv = append(kv, semconv.ServiceName(name))
	return resource.Merge(resource.Default(), resource.NewSchemaless(kv...))
}

// pairs parses the OTel key=value,key=value format (values percent-encoded) of
// OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES.
func pairs(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for i, p := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): bad percent-encoding", i+1, k)
		}
		out[k] = dv
	}
	return out, nil
}

// sampler maps OTEL_TRACES_SAMPLER and its argument to a sampler, as the SDK does.
func sampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if strings.HasSuffix(name, "traceidratio") && arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("%s=%q: want a ratio between 0 and 1", EnvSamplerArg, arg)
		}
		ratio = r
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, errors.New(EnvSampler + ": unknown sampler " + strconv.Quote(name))
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
