package tracing

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestEnabled(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{EnvEndpoint: "http://c:4318"}, true},
		{"traces endpoint", map[string]string{EnvTracesEndpoint: "http://c:4318/v1/traces"}, true},
		{"console", map[string]string{EnvExporter: "console"}, true},
		{"otlp without endpoint (SDK default localhost)", map[string]string{EnvExporter: "otlp"}, true},
		{"none beats an endpoint", map[string]string{EnvExporter: "none", EnvEndpoint: "http://c:4318"}, false},
		{"list", map[string]string{EnvExporter: "none, console"}, true},
		{"other OTEL variables alone", map[string]string{EnvServiceName: "x", EnvSampler: "always_on"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Enabled(env(tc.env)); got != tc.want {
				t.Errorf("Enabled = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFromEnvOffIsNil(t *testing.T) {
	tr, err := FromEnv(context.Background(), env(map[string]string{EnvExporter: "none"}), nil)
	if err != nil || tr != nil {
		t.Fatalf("FromEnv = %v, %v; want nil, nil", tr, err)
	}
	// Every method of the nil value is safe and does nothing.
	if tr.Tracer() != nil || tr.Propagator() != nil || tr.Shutdown(context.Background()) != nil {
		t.Error("nil Tracing is not inert")
	}
	rt := http.DefaultTransport
	if tr.Transport(rt) != rt {
		t.Error("nil Tracing wrapped the transport")
	}
}

func TestFromEnvRejectsBadValues(t *testing.T) {
	tests := []struct {
		name, wantErr string
		env           map[string]string
	}{
		{"exporter", "unknown exporter", map[string]string{EnvExporter: "zipkin"}},
		{"protocol", "unsupported protocol", map[string]string{EnvEndpoint: "http://c:4318", EnvProtocol: "http/json"}},
		{"sampler", "unknown sampler", map[string]string{EnvExporter: "console", EnvSampler: "sometimes"}},
		{"sampler ratio", "ratio between 0 and 1", map[string]string{EnvExporter: "console", EnvSampler: "traceidratio", EnvSamplerArg: "2"}},
		{"headers", "not key=value", map[string]string{EnvEndpoint: "http://c:4318", EnvHeaders: "secret-token"}},
		{"resource", "not key=value", map[string]string{EnvExporter: "console", EnvResourceAttrs: "a=1,,"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := FromEnv(context.Background(), env(tc.env), nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if tr != nil {
				t.Error("a Tracing came back with the error")
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Error("the error repeats the headers' value")
			}
		})
	}
}

func TestPairs(t *testing.T) {
	got, err := pairs(" a = 1 ,b=x%20y,service.name=svc")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["a"] != "1" || got["b"] != "x y" || got["service.name"] != "svc" {
		t.Errorf("pairs = %v", got)
	}
	if _, err := pairs("a=%zz"); err == nil {
		t.Error("bad percent-encoding accepted")
	}
}

func TestSampler(t *testing.T) {
	tests := []struct {
		name, arg string
		sampled   bool // a root span
	}{
		{"always_on", "", true},
		{"always_off", "", false},
		{"traceidratio", "0", false},
		{"traceidratio", "1", true},
		{"parentbased_always_on", "", true},
		{"parentbased_always_off", "", false},
		{"parentbased_traceidratio", "0", false},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.arg, func(t *testing.T) {
			s, err := sampler(tc.name, tc.arg)
			if err != nil {
				t.Fatal(err)
			}
			r := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: trace.TraceID{1}, Name: "x"})
			if got := r.Decision == sdktrace.RecordAndSample; got != tc.sampled {
				t.Errorf("sampled = %v, want %v", got, tc.sampled)
			}
		})
	}
}

func TestConsoleExporterAndResource(t *testing.T) {
	var buf bytes.Buffer
	consoleOut = &buf
	defer func() { consoleOut = os.Stdout }()
	tr, err := FromEnv(context.Background(), env(map[string]string{EnvExporter: "console",
		EnvResourceAttrs: "deployment.environment=test,service.name=ignored", EnvServiceName: "gw1"}), nil)
	if err != nil || tr == nil {
		t.Fatalf("FromEnv = %v, %v", tr, err)
	}
	_, span := tr.Tracer().Start(context.Background(), "hello")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil { // flushes the batch processor
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`"Name":"hello"`, `"Value":"gw1"`, `"Value":"test"`} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ignored") {
		t.Error("OTEL_RESOURCE_ATTRIBUTES' service.name beat OTEL_SERVICE_NAME")
	}
}

func TestTransportPropagatesOnlyTracedCalls(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Traceparent"))
	}))
	defer srv.Close()
	rec := tracetest.NewSpanRecorder()
	tr := New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	client := &http.Client{Transport: tr.Transport(http.DefaultTransport)}

	ctx, span := tr.Tracer().Start(context.Background(), "request")
	for _, c := range []context.Context{ctx, context.Background()} {
		req, _ := http.NewRequestWithContext(c, http.MethodGet, srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	span.End()
	if len(got) != 2 || !strings.Contains(got[0], span.SpanContext().TraceID().String()) {
		t.Errorf("traced call carried %q", got)
	}
	if got[1] != "" {
		t.Errorf("untraced call (a probe) carried traceparent %q", got[1])
	}
	client.CloseIdleConnections() // reaches the inner transport through the wrapper
	if _, ok := client.Transport.(interface{ CloseIdleConnections() }); !ok {
		t.Error("the wrapped transport lost CloseIdleConnections")
	}
}
