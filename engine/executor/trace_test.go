package executor

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/signals"
)

func tracedExec(t *testing.T, provs ...*fake) (*Executor, *tracetest.SpanRecorder, trace.Tracer) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tracer := tp.Tracer("test")
	m := map[string]adapters.Provider{}
	rs := map[string]Resilience{}
	for _, p := range provs {
		m[p.name] = p
		rs[p.name] = fast()
	}
	ex := New(Options{Providers: m, Resilience: rs, Tracker: signals.New(0), Tracer: tracer})
	t.Cleanup(ex.Close)
	return ex, rec, tracer
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

func TestAttemptSpans(t *testing.T) {
	maxTok, temp := 64, 0.5
	tests := []struct {
		name     string
		a, b     []step
		stream   bool
		want     []string // per attempt span: provider/retry/outcome
		wantTTFC bool
	}{
		{"one attempt", nil, nil, false, []string{"a/0/ok"}, false},
		{"retry then ok", []step{{err: status(500)}}, nil, false, []string{"a/0/server", "a/1/ok"}, false},
		{"failover", []step{{err: status(401)}}, nil, false, []string{"a/0/auth", "b/0/ok"}, false},
		{"stream retried before its first chunk", []step{{err: status(502)}}, nil, true, []string{"a/0/server", "a/1/ok"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex, rec, tracer := tracedExec(t, &fake{name: "a", steps: tc.a}, &fake{name: "b", steps: tc.b})
			ctx, parent := tracer.Start(context.Background(), "request")
			req := &adapters.ChatRequest{Model: "alias", MaxTokens: &maxTok, Temperature: &temp}
			if tc.stream {
				res, err := ex.OpenStream(ctx, req, decide("a", "b"))
				if err != nil {
					t.Fatal(err)
				}
				res.Stream.Close()
			} else if _, err := ex.Chat(ctx, req, decide("a", "b")); err != nil {
				t.Fatal(err)
			}
			parent.End()
			var got []string
			for _, s := range rec.Ended() {
				if s.Name() == "request" {
					continue
				}
				a := spanAttrs(s)
				got = append(got, a["gavel.provider"].AsString()+"/"+a["gavel.retry"].String()+"/"+a["gavel.outcome"].AsString())
				if s.Name() != "chat m" || s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindClient {
					t.Errorf("span %q parent %s kind %v", s.Name(), s.Parent().SpanID(), s.SpanKind())
				}
				if a["gen_ai.request.max_tokens"].AsInt64() != 64 || a["gen_ai.request.temperature"].AsFloat64() != 0.5 ||
					a["gen_ai.operation.name"].AsString() != "chat" || a["gen_ai.request.model"].AsString() != "m" {
					t.Errorf("request attributes %v", s.Attributes())
				}
				ok := a["gavel.outcome"].AsString() == "ok"
				if ok != (s.Status().Code != codes.Error) || ok == (a["error.type"].AsString() != "") {
					t.Errorf("status %v / error.type %q for outcome %s", s.Status(), a["error.type"].AsString(), a["gavel.outcome"].AsString())
				}
				if ok && tc.wantTTFC != (a["gen_ai.response.time_to_first_chunk"].AsFloat64() > 0) {
					t.Errorf("time_to_first_chunk = %v", a["gen_ai.response.time_to_first_chunk"])
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("attempt spans %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("attempt %d = %s, want %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestShadowSpanIsALinkedRoot(t *testing.T) {
	ex, rec, tracer := tracedExec(t, &fake{name: "a"}, &fake{name: "s"})
	_, parent := tracer.Start(context.Background(), "request")
	if q, _ := ex.ShadowWith(&adapters.ChatRequest{Model: "alias"},
		&ShadowRequest{Targets: []decision.Target{{Provider: "s", Model: "m"}}, Experiment: "exp", Link: parent.SpanContext()}); q != 1 {
		t.Fatal("shadow not queued")
	}
	parent.End() // the request ends before its shadow runs, as it usually does
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range rec.Ended() {
			if s.Name() != "shadow s/m" {
				continue
			}
			a := spanAttrs(s)
			if s.Parent().IsValid() || len(s.Links()) != 1 || s.Links()[0].SpanContext.SpanID() != parent.SpanContext().SpanID() ||
				!a["gavel.shadow"].AsBool() || a["gavel.experiment"].AsString() != "exp" || a["gavel.outcome"].AsString() != "ok" {
				t.Errorf("shadow span: parent %v links %v attrs %v", s.Parent(), s.Links(), s.Attributes())
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no shadow span")
}
