package tracing

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// canned answers without a network, so the benchmark sees only the wrapper's cost.
type canned struct{}

func (canned) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
}

// BenchmarkTransport compares what tracing adds to one upstream call: otelhttp's
// transport (a client span per call) against gavel's propagation-only transport (the
// attempt span is the client span).
func BenchmarkTransport(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discard{}))
	defer tp.Shutdown(context.Background())
	tr := New(tp)
	ctx, span := tr.Tracer().Start(context.Background(), "attempt")
	defer span.End()
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"none", canned{}},
		{"otelhttp", otelhttp.NewTransport(canned{}, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(tr.propagator),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()))},
		{"gavel", tr.Transport(canned{})},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://upstream/v1/chat/completions", nil)
				req.Header.Set("Authorization", "Bearer k")
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
