package canary

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/signals"
)

// recorder keeps what the canary reports.
type recorder struct {
	mu      sync.Mutex
	events  []decisionlog.Canary
	kinds   map[string]int
	evals   int
	dropped int
}

func (r *recorder) LogCanary(c decisionlog.Canary) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, c)
	return true
}

func (r *recorder) CanaryEvaluated(kinds []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evals++
	if r.kinds == nil {
		r.kinds = map[string]int{}
	}
	for _, k := range kinds {
		r.kinds[k]++
	}
}

func (r *recorder) CanaryDropped() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped++
}

func embedded(t *testing.T, revision string, edit func(data map[string]any)) *bundle.Bundle {
	t.Helper()
	b, err := policy.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	b.Manifest.Revision = revision
	if edit != nil {
		edit(b.Data["gavel"].(map[string]any))
	}
	return b
}

// mod is a bundle of one module and no data: quick to prepare.
func mod(rego string) *bundle.Bundle {
	return &bundle.Bundle{Data: map[string]any{}, Modules: []bundle.ModuleFile{{URL: "/p.rego", Path: "/p.rego", Raw: []byte(rego),
		Parsed: ast.MustParseModule(rego)}}}
}

const allowMock = `package gavel
decision := {"allow": true, "targets": [{"provider": "mock", "model": "m"}]}`

// request is one live request as the pipeline hands it over: the input with the active
// bundle's plan, and the active result.
type request struct {
	id            string
	input, result ast.Value
}

func live(t *testing.T, active *policy.Revision, providers ast.Value, id, model string) request {
	t.Helper()
	ctx := context.Background()
	plan, err := active.Plan(ctx, providers)
	if err != nil {
		t.Fatal(err)
	}
	in := policy.Input{Request: policy.Request{ID: id, Endpoint: "chat", Protocol: "openai", Model: model,
		Messages: []policy.Message{{Role: "user", Text: "hello"}}, EstInputTokens: 8},
		Caller: ast.NewObject(), Providers: providers, Plan: plan, NowNS: 1}
	v := in.Value()
	res, err := active.Evaluate(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	return request{id: id, input: v, result: res}
}

func mockProviders() ast.Value {
	return policy.ProvidersValue([]signals.ProviderStats{{Name: "mock", Healthy: true, Stats: signals.Stats{Circuit: signals.Closed}}})
}

// wait polls until the canary evaluated n requests.
func wait(t *testing.T, c *Canary, n int64) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := c.Status()
		if st.Evaluated >= n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("evaluated %d of %d: %+v", st.Evaluated, n, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A candidate that moves one alias disagrees on exactly that alias's requests, by the
// field that moved, and records each disagreement with both results.
func TestCanaryCountsDisagreements(t *testing.T) {
	ctx := context.Background()
	active, err := policy.Prepare(ctx, embedded(t, "active", nil), "active")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	c := New(Config{Sample: 1, Source: "candidate"}, rec, rec, nil)
	c.Start(ctx)
	defer c.Close()
	if _, err := c.Activate(ctx, embedded(t, "cand", func(d map[string]any) {
		d["aliases"].(map[string]any)["fast"] = map[string]any{"strategy": "ordered", "candidates": []any{"mock/mock-large"}}
	}), "candidate"); err != nil {
		t.Fatal(err)
	}
	providers := mockProviders()
	var fast []string
	for i, model := range []string{"fast", "smart", "fast", "no-such-model", "smart", "fast"} {
		r := live(t, active, providers, "d"+string(rune('0'+i)), model)
		if model == "fast" {
			fast = append(fast, r.id)
		}
		c.Offer(r.id, time.Unix(int64(i), 0), active, r.input, r.result)
	}
	st := wait(t, c, 6)
	if st.Revision != "cand" || st.Agreed != 3 || st.Disagreed != 3 || !reflect.DeepEqual(st.Disagreements, map[string]int64{"targets": 3}) ||
		st.AgreementRate == nil || *st.AgreementRate != 0.5 || st.Dropped != 0 {
		t.Errorf("status %+v, want 3 of 6 agreed, 3 targets disagreements", st)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var ids []string
	for _, e := range rec.events {
		ids = append(ids, e.DecisionID)
		if e.ActiveRevision != "active" || e.CandidateRevision != "cand" || !reflect.DeepEqual(e.Kinds, []string{"targets"}) ||
			e.Active == nil || e.Candidate == nil || e.Error != "" || !strings.Contains(e.Candidate.String(), "mock-large") {
			t.Errorf("event %+v", e)
		}
	}
	if strings.Join(ids, ",") != strings.Join(fast, ",") {
		t.Errorf("events for %v, want the fast requests %v", ids, fast)
	}
	if rec.evals != 6 || !reflect.DeepEqual(rec.kinds, map[string]int{"targets": 3}) {
		t.Errorf("metrics: %d evaluations, kinds %v", rec.evals, rec.kinds)
	}
}

// The candidate decides with its own plan: a candidate whose plan differs from the active
// bundle's agrees when its decisions do, although the input carries the active plan.
func TestCanaryUsesItsOwnPlan(t *testing.T) {
	ctx := context.Background()
	active, err := policy.Prepare(ctx, embedded(t, "active", nil), "active")
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{Sample: 1}, nil, nil, nil)
	c.Start(ctx)
	defer c.Close()
	// The same policy under another revision: equal decisions, its own (equal) plan; the
	// active plan in the input is replaced, never reused.
	if _, err := c.Activate(ctx, embedded(t, "same", nil), "same"); err != nil {
		t.Fatal(err)
	}
	r := live(t, active, mockProviders(), "p1", "fast")
	// A bogus plan in the input: if the candidate read it, it could not route "fast".
	in := policy.WithPlan(r.input.(ast.Object), ast.MustParseTerm(`{"aliases": {}}`).Value)
	c.Offer(r.id, time.Now(), active, in, r.result)
	if st := wait(t, c, 1); st.Agreed != 1 {
		t.Errorf("status %+v: the candidate did not plan for itself", st)
	}
}

// Offer never blocks and never allocates: with the workers stopped, a full queue drops
// and counts; an unsampled request and a canary without a candidate cost nothing.
func TestOfferNeverBlocks(t *testing.T) {
	ctx := context.Background()
	active, err := policy.Prepare(ctx, mod(allowMock), "active")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r := live(t, active, mockProviders(), "q", "fast")

	none := New(Config{Sample: 1, Queue: 2}, rec, nil, nil) // no candidate loaded
	none.Offer(r.id, time.Now(), active, r.input, r.result)
	if len(none.jobs) != 0 {
		t.Error("a canary without a candidate queued a request")
	}
	var nilCanary *Canary
	nilCanary.Offer(r.id, time.Now(), active, r.input, r.result)

	c := New(Config{Sample: 1, Queue: 2}, rec, nil, nil) // never started
	if _, err := c.Activate(ctx, mod(allowMock), "cand"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for range 5 {
			c.Offer(r.id, time.Now(), active, r.input, r.result)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Offer blocked on a full queue")
	}
	if st := c.Status(); st.Dropped != 3 || rec.dropped != 3 {
		t.Errorf("dropped %d (metric %d), want 3", st.Dropped, rec.dropped)
	}
	if n := testing.AllocsPerRun(100, func() { c.Offer(r.id, time.Now(), active, r.input, r.result) }); n != 0 {
		t.Errorf("Offer allocates %v times per call", n)
	}
}

// The sample ratio holds: none at 0, all at 1, about half at 0.5.
func TestSampleRatio(t *testing.T) {
	ctx := context.Background()
	active, err := policy.Prepare(ctx, mod(allowMock), "active")
	if err != nil {
		t.Fatal(err)
	}
	r := live(t, active, mockProviders(), "s", "fast")
	for _, tc := range []struct {
		sample   float64
		min, max int
	}{{0, 0, 0}, {1, 10000, 10000}, {0.5, 4500, 5500}, {0.01, 50, 150}} {
		c := New(Config{Sample: tc.sample, Queue: 10000}, nil, nil, nil)
		if _, err := c.Activate(ctx, mod(allowMock), "cand"); err != nil {
			t.Fatal(err)
		}
		for range 10000 {
			c.Offer(r.id, time.Now(), active, r.input, r.result)
		}
		if n := len(c.jobs); n < tc.min || n > tc.max {
			t.Errorf("sample %v: %d of 10000 sampled, want %d..%d", tc.sample, n, tc.min, tc.max)
		}
	}
}

// A candidate that cannot decide a request is a disagreement of kind error, with the
// reason; one that fails to load or compile is reported and keeps the previous candidate.
func TestCandidateFailures(t *testing.T) {
	ctx := context.Background()
	active, err := policy.Prepare(ctx, mod(allowMock), "active")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	c := New(Config{Sample: 1, Source: "cand"}, rec, rec, nil)
	c.Start(ctx)
	defer c.Close()
	if _, err := c.Activate(ctx, mod(`package gavel
default decision := {"allow": true, "targets": [{"provider": "mock", "model": "m"}]}
decision := {"allow": true, "targets": [{"provider": "mock", "model": "m"}], "bogus": 1} if input.request.model == "weird"`), "cand"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"weird", "normal"} {
		r := live(t, active, mockProviders(), m, m)
		c.Offer(r.id, time.Now(), active, r.input, r.result)
	}
	st := wait(t, c, 2)
	if st.Agreed != 1 || !reflect.DeepEqual(st.Disagreements, map[string]int64{KindError: 1}) ||
		!strings.Contains(st.LastEvaluationError, "bogus") {
		t.Errorf("status %+v, want one error disagreement naming the unknown field", st)
	}
	rec.mu.Lock()
	if len(rec.events) != 1 || rec.events[0].DecisionID != "weird" || !strings.Contains(rec.events[0].Error, "bogus") {
		t.Errorf("events %+v", rec.events)
	}
	rec.mu.Unlock()

	// A candidate that does not compile, then one that is not there: the loaded one
	// stays, and the status says why.
	if _, err := c.Activate(ctx, &bundle.Bundle{Data: map[string]any{}, Modules: []bundle.ModuleFile{{URL: "/p.rego", Path: "/p.rego",
		Raw: []byte("package gavel\ndecision := x"), Parsed: ast.MustParseModule("package gavel\ndecision := x")}}}, "broken"); err == nil {
		t.Fatal("a bundle that does not compile activated")
	}
	st = c.Status()
	if st.Revision == "" || !strings.Contains(st.LastError, "compile") || st.LastErrorAt == nil {
		t.Errorf("after a broken candidate: %+v", st)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if err := c.Load(ctx, missing, policy.Limits{}); err == nil {
		t.Fatal("a missing candidate loaded")
	}
	if st = c.Status(); !strings.Contains(st.LastError, missing) || st.Evaluated != 2 {
		t.Errorf("after a missing candidate: %+v", st)
	}
	// A good one from disk clears the error and starts counting afresh.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(allowMock), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(ctx, dir, policy.Limits{}); err != nil {
		t.Fatal(err)
	}
	if st = c.Status(); st.LastError != "" || st.Evaluated != 0 || st.Revision == "" || st.AgreementRate != nil {
		t.Errorf("after a good candidate: %+v", st)
	}
}
