package executor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

// prefilling is a fake whose upstream continues a trailing assistant message.
type prefilling struct{ *fake }

func (prefilling) Prefills() bool { return true }

func TestContinuationRequest(t *testing.T) {
	req := &adapters.ChatRequest{Model: "m", Messages: []adapters.Message{
		{Role: "system", Content: adapters.TextContent("be brief")},
		{Role: "user", Content: adapters.TextContent("hi")},
	}}
	type turn struct{ role, text string }
	for _, tc := range []struct {
		name string
		prov adapters.Provider
		text string
		want []turn // the turns after the conversation
	}{
		{"prefill", prefilling{&fake{name: "p"}}, "Hello, wor", []turn{{"assistant", "Hello, wor"}}},
		{"prefill without trailing whitespace", prefilling{&fake{name: "p"}}, "Hello, \n", []turn{{"assistant", "Hello,"}}},
		{"prefill of whitespace only", prefilling{&fake{name: "p"}}, " \n", nil},
		{"instruction", &fake{name: "o"}, "Hello, ", []turn{{"assistant", "Hello, "}, {"user", ContinueInstruction}}},
		{"nothing relayed asks again", &fake{name: "o"}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := continuationRequest(req, tc.prov, tc.text)
			if len(req.Messages) != 2 {
				t.Fatalf("the client's request was changed: %+v", req.Messages)
			}
			if len(r.Messages) != 2+len(tc.want) {
				t.Fatalf("messages %+v", r.Messages)
			}
			for i, w := range tc.want {
				m := r.Messages[2+i]
				if m.Role != w.role || m.Content.String() != w.text {
					t.Errorf("turn %d = %s %q, want %s %q", i, m.Role, m.Content.String(), w.role, w.text)
				}
			}
		})
	}
}

func TestContinueStreamWalksTheTargetsAfterTheCutOne(t *testing.T) {
	for _, tc := range []struct {
		name    string
		after   string
		steps   map[string][]step
		want    string
		wantErr error
	}{
		{"next target", "a", nil, "b", nil},
		{"skips a failing one", "a", map[string][]step{"b": {{err: status(503)}}}, "c", nil},
		{"none after the last", "c", nil, "", ErrNoContinuation},
		{"not among the targets", "z", nil, "", ErrNoContinuation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := &fake{name: "a", steps: tc.steps["a"]}, &fake{name: "b", steps: tc.steps["b"]}, &fake{name: "c", steps: tc.steps["c"]}
			r := fast()
			r.MaxRetries = 0
			ex, _ := newExec(r, a, b, c)
			d := decide("a", "b", "c")
			d.Fault = &decision.Fault{Kind: decision.FaultError, Status: 503, Attempt: 1} // the first walk's: not applied again
			sr, err := ex.ContinueStream(context.Background(), &adapters.ChatRequest{Model: "alias", Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent("hi")}}},
				d, Continuation{After: decision.Target{Provider: tc.after, Model: "m"}, Text: "partial"})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer sr.Stream.Close()
			if sr.Target.Provider != tc.want || sr.First == nil {
				t.Errorf("continued on %s (first %v), want %s", sr.Target, sr.First, tc.want)
			}
			if a.calls.Load() != 0 {
				t.Errorf("the cut target was asked again")
			}
		})
	}
}

// An open breaker is skipped, as failover skips it.
func TestContinueStreamSkipsOpenBreakers(t *testing.T) {
	a, b, c := &fake{name: "a"}, &fake{name: "b", steps: []step{{err: status(503)}}}, &fake{name: "c"}
	r := fast()
	r.MaxRetries = 0
	r.Breaker.FailureThreshold = 1
	r.Breaker.Delay = time.Minute
	ex, _ := newExec(r, a, b, c)
	d := decide("a", "b", "c")
	if _, err := ex.Chat(context.Background(), &adapters.ChatRequest{Model: "alias"}, decide("b")); err == nil {
		t.Fatal("b should have failed and opened its breaker")
	}
	sr, err := ex.ContinueStream(context.Background(), &adapters.ChatRequest{Model: "alias"}, d, Continuation{After: decision.Target{Provider: "a", Model: "m"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Stream.Close()
	if sr.Target.Provider != "c" || b.calls.Load() != 1 {
		t.Errorf("continued on %s, b called %d times", sr.Target, b.calls.Load())
	}
}

// The request's span and the continuation's attempt spans carry gavel.continued=true; the
// first walk's attempts do not.
func TestContinuationTraced(t *testing.T) {
	ex, rec, tracer := tracedExec(t, &fake{name: "a"}, &fake{name: "b"})
	ctx, parent := tracer.Start(context.Background(), "request")
	d := decide("a", "b")
	req := &adapters.ChatRequest{Model: "alias"}
	first, err := ex.OpenStream(ctx, req, d)
	if err != nil {
		t.Fatal(err)
	}
	first.Stream.Close()
	sr, err := ex.ContinueStream(ctx, req, d, Continuation{After: first.Target, Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	sr.Stream.Close()
	parent.End()
	continued := map[string]bool{}
	for _, s := range rec.Ended() {
		v, ok := spanAttrs(s)[attrContinued]
		name := s.Name()
		if p, ok := spanAttrs(s)[attrProvider]; ok {
			name = p.AsString()
		}
		continued[name] = ok && v.AsBool()
	}
	if !continued["request"] || continued["a"] || !continued["b"] {
		t.Errorf("gavel.continued by span: %v", continued)
	}
}
