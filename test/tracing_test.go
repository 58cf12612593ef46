package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/gavel-gw/gavel/engine/app"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// tracedDecision routes like the default policy and adds an A/B arm and a shadow to b, so
// one request produces every kind of span gavel makes.
const tracedDecision = `package gavel

import rego.v1

import data.gavel.route

decision := {
	"allow": true,
	"targets": route.targets,
	"reasons": route.reasons,
	"ab": {"experiment": "exp1", "arm": "b"},
	"shadow": [{"provider": "b", "model": "m1"}],
} if route.targets[0]

# Every request gets a decision: gavel refuses a bundle that leaves one undefined.
else := {"allow": false, "deny": {"status": 404, "code": "model_not_found", "message": "No route."}}
`

// tracedGateway starts fakes a and b and a gateway routing "chat" to a (one retry) then b,
// shadowing to b, with extra options and environment.
func tracedGateway(t *testing.T, env map[string]string, opts ...app.Option) (*gw, *fakeupstream.Server, *fakeupstream.Server) {
	t.Helper()
	a, b := fakeupstream.New(), fakeupstream.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	dir := bundle(t, "trace-1", twoProviders(nil))
	writeFile(t, dir+"/decision.rego", tracedDecision)
	yaml := fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: openai, base_url: "%s", max_retries: 1, backoff: 1ms, max_backoff: 2ms}
  - {name: b, type: openai, base_url: "%s"}
`, dir, a.URL(), b.URL())
	return startWith(t, yaml, env, true, opts...), a, b
}

// waitSpans waits until the recorder holds ended spans satisfying done.
func waitSpans(t *testing.T, rec *tracetest.SpanRecorder, done func([]sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans := rec.Ended()
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			for _, s := range spans {
				t.Logf("span %q parent=%s attrs=%v", s.Name(), s.Parent().SpanID(), s.Attributes())
			}
			t.Fatalf("spans did not arrive (%d ended)", len(spans))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func named(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func TestTracingOneTracePerRequest(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	g, a, b := tracedGateway(t, nil, app.WithTracerProvider(tp))
	a.Script("m1", fakeupstream.Step{Status: 503}) // one retry on a, then success

	var resp *http.Response
	out, err := g.client("k", option.WithHeader("traceparent", traceparent)).Chat.Completions.New(context.Background(),
		userParams("chat", "hi"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	spans := waitSpans(t, rec, func(s []sdktrace.ReadOnlySpan) bool {
		return len(named(s, "POST /v1/chat/completions")) == 1 && len(named(s, "shadow b/m1")) == 1
	})

	server := named(spans, "POST /v1/chat/completions")[0]
	t.Run("server span continues the client's trace", func(t *testing.T) {
		if got := server.SpanContext().TraceID().String(); got != clientTraceID {
			t.Errorf("trace id = %s, want the client's %s", got, clientTraceID)
		}
		if got := server.Parent().SpanID().String(); got != clientSpanID || !server.Parent().IsRemote() {
			t.Errorf("parent = %s (remote %v), want the client's span %s", got, server.Parent().IsRemote(), clientSpanID)
		}
		if server.SpanKind() != trace.SpanKindServer {
			t.Errorf("kind = %v", server.SpanKind())
		}
		want := map[string]any{
			"gavel.decision_id": resp.Header.Get("X-Gavel-Decision-Id"), "gavel.route": "a/m1", "gavel.arm": "b",
			"gavel.experiment": "exp1", "gavel.bundle_revision": "trace-1", "http.response.status_code": int64(200),
			"http.route": "/v1/chat/completions",
		}
		for k, v := range want {
			if got := attr(server, k).AsInterface(); got != v {
				t.Errorf("%s = %v, want %v", k, got, v)
			}
		}
	})

	t.Run("policy.decide is a child with the decision", func(t *testing.T) {
		d := named(spans, "policy.decide")
		if len(d) != 1 {
			t.Fatalf("%d policy.decide spans", len(d))
		}
		if d[0].Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("policy.decide parent = %s, want the server span", d[0].Parent().SpanID())
		}
		if !attr(d[0], "gavel.decision.allow").AsBool() || attr(d[0], "gavel.bundle_revision").AsString() != "trace-1" {
			t.Errorf("attributes = %v", d[0].Attributes())
		}
		if got := attr(d[0], "gavel.decision.targets").AsStringSlice(); len(got) != 2 || got[0] != "a/m1" || got[1] != "b/m1" {
			t.Errorf("targets = %v", got)
		}
		if len(attr(d[0], "gavel.decision.reasons").AsStringSlice()) == 0 {
			t.Error("no reasons recorded")
		}
	})

	var attempts []sdktrace.ReadOnlySpan
	for _, s := range named(spans, "chat m1") {
		if s.SpanContext().TraceID() == server.SpanContext().TraceID() {
			attempts = append(attempts, s)
		}
	}
	t.Run("a retry is two attempt spans with gen_ai attributes", func(t *testing.T) {
		if len(attempts) != 2 {
			t.Fatalf("%d attempt spans in the request's trace, want 2", len(attempts))
		}
		for i, s := range attempts {
			if s.Parent().SpanID() != server.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindClient {
				t.Errorf("attempt %d: parent %s kind %v", i, s.Parent().SpanID(), s.SpanKind())
			}
			if attr(s, "gavel.retry").AsInt64() != int64(i) {
				t.Errorf("attempt %d: gavel.retry = %d", i, attr(s, "gavel.retry").AsInt64())
			}
			for k, v := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
				"gen_ai.system": "openai", "gen_ai.request.model": "m1"} {
				if got := attr(s, k).AsString(); got != v {
					t.Errorf("attempt %d: %s = %q, want %q", i, k, got, v)
				}
			}
		}
		failed, ok := attempts[0], attempts[1]
		if failed.Status().Code.String() != "Error" || attr(failed, "error.type").AsString() != "overloaded" ||
			attr(failed, "gavel.outcome").AsString() != "overloaded" {
			t.Errorf("failed attempt: status %v attrs %v", failed.Status(), failed.Attributes())
		}
		if attr(ok, "gavel.outcome").AsString() != "ok" || attr(ok, "gen_ai.response.model").AsString() != "m1" {
			t.Errorf("good attempt attrs %v", ok.Attributes())
		}
		if attr(ok, "gen_ai.usage.input_tokens").AsInt64() != out.Usage.PromptTokens ||
			attr(ok, "gen_ai.usage.output_tokens").AsInt64() != out.Usage.CompletionTokens || out.Usage.CompletionTokens == 0 {
			t.Errorf("usage attrs %v, response usage %+v", ok.Attributes(), out.Usage)
		}
	})

	t.Run("the upstream receives the request's traceparent", func(t *testing.T) {
		reqs := a.Requests()
		if len(reqs) != 2 {
			t.Fatalf("a got %d requests", len(reqs))
		}
		for i, r := range reqs {
			tp := r.Header.Get("Traceparent")
			if !strings.HasPrefix(tp, "00-"+clientTraceID+"-") || strings.Contains(tp, clientSpanID) {
				t.Errorf("request %d traceparent = %q, want the client's trace with gavel's span", i, tp)
			}
		}
	})

	t.Run("the shadow is a root span linked to the request", func(t *testing.T) {
		sh := named(spans, "shadow b/m1")[0]
		if sh.Parent().IsValid() {
			t.Errorf("shadow span has parent %s; it must be a root", sh.Parent().SpanID())
		}
		if sh.SpanContext().TraceID() == server.SpanContext().TraceID() {
			t.Error("shadow span shares the client's trace")
		}
		links := sh.Links()
		if len(links) != 1 || links[0].SpanContext.TraceID().String() != clientTraceID ||
			links[0].SpanContext.SpanID() != server.SpanContext().SpanID() {
			t.Errorf("links = %+v, want the request's server span", links)
		}
		if !attr(sh, "gavel.shadow").AsBool() || attr(sh, "gavel.experiment").AsString() != "exp1" {
			t.Errorf("shadow attrs %v", sh.Attributes())
		}
		var child bool
		for _, s := range named(spans, "chat m1") {
			child = child || s.Parent().SpanID() == sh.SpanContext().SpanID()
		}
		if !child {
			t.Error("the shadow's upstream attempt is not a child of the shadow span")
		}
		if tp := b.Requests()[0].Header.Get("Traceparent"); !strings.Contains(tp, sh.SpanContext().TraceID().String()) {
			t.Errorf("shadow upstream traceparent = %q, want the shadow's trace", tp)
		}
	})
}

func TestTracingStreamAttemptEndsAtFirstChunk(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	g, _, _ := tracedGateway(t, nil, app.WithTracerProvider(tp))
	s := g.client("k", option.WithHeader("traceparent", traceparent)).Chat.Completions.NewStreaming(context.Background(), userParams("chat", "hi"))
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	spans := waitSpans(t, rec, func(s []sdktrace.ReadOnlySpan) bool { return len(named(s, "POST /v1/chat/completions")) == 1 })
	server := named(spans, "POST /v1/chat/completions")[0]
	var attempt sdktrace.ReadOnlySpan
	for _, s := range named(spans, "chat m1") {
		if s.Parent().SpanID() == server.SpanContext().SpanID() {
			attempt = s
		}
	}
	if attempt == nil {
		t.Fatal("no attempt span under the server span")
	}
	if ttfc := attr(attempt, "gen_ai.response.time_to_first_chunk").AsFloat64(); ttfc <= 0 {
		t.Errorf("time_to_first_chunk = %v", ttfc)
	}
	if attempt.EndTime().After(server.EndTime()) || attr(attempt, "gavel.outcome").AsString() != "ok" {
		t.Errorf("attempt ends %v after the request (%v) or is not ok: %v", attempt.EndTime(), server.EndTime(), attempt.Attributes())
	}
}

// otlpSink is a minimal OTLP/HTTP collector that keeps the spans it receives.
type otlpSink struct {
	mu    sync.Mutex
	names []string
	svc   []string
	auth  []string // Authorization headers of the exports
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	for _, rs := range req.ResourceSpans {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				s.svc = append(s.svc, kv.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				s.names = append(s.names, sp.Name)
			}
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Write(out)
}

func TestTracingConfiguredFromEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     func(sink string) map[string]string
		traced  bool
		sampled bool
	}{
		{"no OTEL variables: off", func(string) map[string]string { return nil }, false, false},
		{"exporter none wins over an endpoint: off", func(sink string) map[string]string {
			return map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": sink}
		}, false, false},
		{"OTLP endpoint: on", func(sink string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink, "OTEL_SERVICE_NAME": "gavel-e2e",
				"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20t"}
		}, true, true},
		{"sampler always_off: the trace id still travels, nothing is recorded", func(sink string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink, "OTEL_TRACES_SAMPLER": "always_off"}
		}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &otlpSink{}
			srv := httptest.NewServer(sink)
			defer srv.Close()
			g, a, _ := tracedGateway(t, tc.env(srv.URL))
			if _, err := g.client("k", option.WithHeader("traceparent", traceparent)).Chat.Completions.New(context.Background(), userParams("chat", "hi")); err != nil {
				t.Fatal(err)
			}
			g.stop() // Close flushes the batch processor
			tp := a.Requests()[0].Header.Get("Traceparent")
			sink.mu.Lock()
			defer sink.mu.Unlock()
			if !tc.traced {
				if tp != "" || len(sink.names) > 0 {
					t.Errorf("tracing off, yet upstream saw traceparent %q and the collector got %v", tp, sink.names)
				}
				return
			}
			if !strings.Contains(tp, clientTraceID) {
				t.Errorf("upstream traceparent = %q", tp)
			}
			if !tc.sampled {
				if len(sink.names) > 0 {
					t.Errorf("unsampled request exported %v", sink.names)
				}
				return
			}
			joined := strings.Join(sink.names, ",")
			for _, want := range []string{"POST /v1/chat/completions", "policy.decide", "chat m1"} {
				if !strings.Contains(joined, want) {
					t.Errorf("collector got spans %v, missing %q", sink.names, want)
				}
			}
			if len(sink.svc) == 0 || sink.svc[0] != "gavel-e2e" {
				t.Errorf("service.name = %v", sink.svc)
			}
			if len(sink.auth) == 0 || sink.auth[0] != "Bearer t" {
				t.Errorf("OTEL_EXPORTER_OTLP_HEADERS not sent: Authorization = %q", sink.auth)
			}
		})
	}
}

func TestTracingClientErrorsAndUnknownRoutes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	g, a, _ := tracedGateway(t, nil, app.WithTracerProvider(tp))
	tests := []struct {
		name, method, path, body string
		status                   int
		span                     string
	}{
		{"bad JSON is a 400 with no upstream attempt", http.MethodPost, "/v1/chat/completions", `{"model":`, 400, "POST /v1/chat/completions"},
		{"unknown route: method only, no path in the name", http.MethodGet, "/v1/nope/123", "", 404, "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec.Reset()
			req, _ := http.NewRequest(tc.method, g.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("traceparent", traceparent)
			resp, body := do(t, req)
			if resp.StatusCode != tc.status || body["error"] == nil {
				t.Fatalf("status %d body %v", resp.StatusCode, body)
			}
			spans := waitSpans(t, rec, func(s []sdktrace.ReadOnlySpan) bool { return len(named(s, tc.span)) == 1 })
			sp := named(spans, tc.span)[0]
			if attr(sp, "http.response.status_code").AsInt64() != int64(tc.status) || sp.SpanContext().TraceID().String() != clientTraceID {
				t.Errorf("span %q: attrs %v trace %s", sp.Name(), sp.Attributes(), sp.SpanContext().TraceID())
			}
			if sp.Status().Code.String() == "Error" {
				t.Error("a client error marked the server span as failed")
			}
			if len(named(spans, "chat m1")) != 0 || len(a.Requests()) != 0 {
				t.Error("a rejected request reached the upstream")
			}
		})
	}
}

func TestTracingDeniedDecision(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	dir := bundle(t, "deny-1", twoProviders(nil))
	writeFile(t, dir+"/decision.rego", `package gavel

decision := {"allow": false, "deny": {"status": 403, "code": "not_today", "message": "No."}, "reasons": ["deny:test"]}
`)
	g := startWith(t, fmt.Sprintf("policy: %s\nproviders:\n  - {name: a, type: openai, base_url: %q}\n", dir, up.URL()), nil, true,
		app.WithTracerProvider(tp))
	_, err := g.client("k").Chat.Completions.New(context.Background(), userParams("chat", "hi"))
	if err == nil {
		t.Fatal("a denied request succeeded")
	}
	spans := waitSpans(t, rec, func(s []sdktrace.ReadOnlySpan) bool { return len(named(s, "POST /v1/chat/completions")) == 1 })
	d := named(spans, "policy.decide")
	if len(d) != 1 {
		t.Fatalf("%d policy.decide spans", len(d))
	}
	if attr(d[0], "gavel.decision.allow").AsBool() || attr(d[0], "gavel.decision.deny_code").AsString() != "not_today" ||
		fmt.Sprint(attr(d[0], "gavel.decision.reasons").AsStringSlice()) != "[deny:test]" {
		t.Errorf("policy.decide attrs %v", d[0].Attributes())
	}
	if got := attr(named(spans, "POST /v1/chat/completions")[0], "http.response.status_code").AsInt64(); got != 403 {
		t.Errorf("server span status = %d, want 403", got)
	}
}

func TestTracingEmbeddings(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	g := startWith(t, "", map[string]string{"OPENAI_API_KEY": "sk-e", "OPENAI_BASE_URL": up.URL()}, true, app.WithTracerProvider(tp))
	out, err := g.client("k", option.WithHeader("traceparent", traceparent)).Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	spans := waitSpans(t, rec, func(s []sdktrace.ReadOnlySpan) bool { return len(named(s, "POST /v1/embeddings")) == 1 })
	at := named(spans, "embeddings text-embedding-3-small")
	if len(at) != 1 {
		t.Fatalf("%d embeddings attempt spans", len(at))
	}
	if attr(at[0], "gen_ai.operation.name").AsString() != "embeddings" || attr(at[0], "gen_ai.usage.input_tokens").AsInt64() != out.Usage.PromptTokens ||
		at[0].SpanContext().TraceID().String() != clientTraceID {
		t.Errorf("attempt span attrs %v", at[0].Attributes())
	}
	if tp := up.Requests()[0].Header.Get("Traceparent"); !strings.Contains(tp, clientTraceID) {
		t.Errorf("upstream traceparent = %q", tp)
	}
}

// A Responses request is one trace too: the server span names the route, the attempt span
// is a GenAI chat operation (gen_ai.operation.name "chat", the usage of the answer), for
// a translated target and for one the request passes through to.
func TestTracingResponses(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	yaml := fmt.Sprintf("policy: %s\nproviders:\n  - {name: a, type: openai, base_url: %q}\n  - {name: b, type: openai, base_url: %q, responses_api: true}\n",
		bundle(t, "trace-r", twoProviders(nil)), up.URL(), up.URL())
	g := startWith(t, yaml, nil, true, app.WithTracerProvider(tp))
	for i, model := range []string{"solo", "b/m1"} {
		out, err := g.client("k", option.WithHeader("traceparent", traceparent)).Responses.New(context.Background(), responses.ResponseNewParams{
			Model: model, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}, Store: openai.Bool(false)})
		if err != nil {
			t.Fatal(err)
		}
		spans := waitSpans(t, rec, func(s []sdktrace.ReadOnlySpan) bool { return len(named(s, "POST /v1/responses")) == i+1 })
		at := named(spans, "chat m1")
		if len(at) != i+1 {
			t.Fatalf("%s: %d chat attempt spans", model, len(at))
		}
		if a := at[i]; attr(a, "gen_ai.operation.name").AsString() != "chat" || attr(a, "gen_ai.usage.input_tokens").AsInt64() != out.Usage.InputTokens ||
			a.SpanContext().TraceID().String() != clientTraceID {
			t.Errorf("%s: attempt span attrs %v", model, a.Attributes())
		}
	}
	if r := up.Requests(); len(r) != 2 || r[0].Path != "/v1/chat/completions" || r[1].Path != "/v1/responses" {
		t.Errorf("upstream paths %v", r)
	}
}
