package signals

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// t0 is aligned to a 5 s bucket boundary (window 1 min / 12 buckets), so tests can reason
// about exactly which bucket a recording lands in.
var t0 = time.Unix(1_700_000_000, 0)

// fakeClock is a settable clock for Tracker.now. Tests that share it across goroutines
// only read it, so it needs no lock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTracker() (*Tracker, *fakeClock) {
	c := &fakeClock{t: t0}
	tr := New(0)
	tr.now = c.now
	return tr, c
}

// changed reports whether Changed is signalled, consuming the signal.
func changed(tr *Tracker) bool {
	select {
	case <-tr.Changed():
		return true
	default:
		return false
	}
}

// record is one whole attempt, as the executor brackets it.
func record(tg *Target, lat, ttft time.Duration, failed bool) {
	tg.Begin()
	tg.End(lat, ttft, failed)
}

// snapshotOf finds one provider in Snapshot; Snapshot is a slice so policies get a stable order.
func snapshotOf(t *testing.T, tr *Tracker, name string) ProviderStats {
	t.Helper()
	for _, p := range tr.Snapshot() {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("provider %q not in snapshot", name)
	return ProviderStats{}
}

// ProvidersValue is policy.ProvidersValue, set by policy_test.go (package signals_test):
// this package cannot import engine/policy, which imports it, but its tests check the
// snapshot as the policy sees it.
var ProvidersValue func([]ProviderStats) ast.Value

func value(tr *Tracker) ast.Value { return ProvidersValue(tr.Snapshot()) }

// get walks an OPA object along keys, failing the test when a key is missing.
func get(t *testing.T, v ast.Value, keys ...string) ast.Value {
	t.Helper()
	for _, k := range keys {
		obj, ok := v.(ast.Object)
		if !ok {
			t.Fatalf("at %q: %T is not an object", k, v)
		}
		term := obj.Get(ast.StringTerm(k))
		if term == nil {
			t.Fatalf("key %q missing in %v", k, v)
		}
		v = term.Value
	}
	return v
}

func getInt(t *testing.T, v ast.Value, keys ...string) int {
	t.Helper()
	n, ok := get(t, v, keys...).(ast.Number)
	if !ok {
		t.Fatalf("%v: not a number", keys)
	}
	i, ok := n.Int()
	if !ok {
		t.Fatalf("%v = %v: not an integer (the policy must never see floats)", keys, n)
	}
	return i
}

func keysOf(t *testing.T, v ast.Value) []string {
	t.Helper()
	obj, ok := v.(ast.Object)
	if !ok {
		t.Fatalf("%T is not an object", v)
	}
	var out []string
	for _, k := range obj.Keys() {
		s, ok := k.Value.(ast.String)
		if !ok {
			t.Fatalf("non-string key %v", k)
		}
		out = append(out, string(s))
	}
	sort.Strings(out)
	return out
}

func TestRegister(t *testing.T) {
	tr, _ := newTracker()
	if changed(tr) {
		t.Fatal("a new tracker must not start signalled")
	}
	tr.Register("openai")
	if !changed(tr) {
		t.Error("Register did not signal Changed: the planner would not see the provider until the next refresh")
	}
	tr.Register("openai") // idempotent: must not reset anything
	p := snapshotOf(t, tr, "openai")
	if !p.Healthy || p.Stats.Circuit != Closed || len(p.Models) != 0 {
		t.Errorf("registered provider = %+v, want healthy, closed, no models", p)
	}
	v := value(tr)
	if b, ok := get(t, v, "openai", "healthy").(ast.Boolean); !ok || !bool(b) {
		t.Errorf("healthy = %v, want true", b)
	}
	if c := get(t, v, "openai", "circuit"); c.Compare(ast.String("closed")) != 0 {
		t.Errorf("circuit = %v, want closed", c)
	}
	if n := get(t, v, "openai", "models").(ast.Object).Len(); n != 0 {
		t.Errorf("models has %d entries, want 0", n)
	}
}

func TestTargetCreatesProvider(t *testing.T) {
	// The executor may record for a provider before anyone registered it; it must still
	// show up, healthy, rather than being dropped from the snapshot.
	tr, _ := newTracker()
	tg := tr.Target("anthropic", "claude")
	if tg != tr.Target("anthropic", "claude") {
		t.Error("Target returned a different *Target for the same provider+model")
	}
	if tg.Provider != "anthropic" || tg.Model != "claude" {
		t.Errorf("target = %s/%s", tg.Provider, tg.Model)
	}
	p := snapshotOf(t, tr, "anthropic")
	if !p.Healthy {
		t.Error("implicitly registered provider is unhealthy")
	}
	if _, ok := p.Models["claude"]; !ok {
		t.Error("model missing from snapshot")
	}
}

func TestStats(t *testing.T) {
	ms := time.Millisecond
	type rec struct {
		lat, ttft time.Duration
		failed    bool
	}
	tests := []struct {
		name     string
		recs     []rec
		inFlight int // extra Begin() without End()
		want     Stats
	}{
		{name: "idle", want: Stats{Circuit: Closed}},
		{
			name: "one success",
			recs: []rec{{120 * ms, 0, false}},
			want: Stats{Requests: 1, P50MS: 120, P95MS: 120, Circuit: Closed},
		},
		{
			name: "errors count as requests but not latency",
			recs: []rec{{100 * ms, 10 * ms, false}, {9000 * ms, 0, true}, {200 * ms, 30 * ms, false}},
			// 1 error in 3 is 3333 bp, truncated: the policy compares integers only.
			want: Stats{Requests: 3, Errors: 1, ErrorRateBP: 3333, P50MS: 100, P95MS: 200, TTFTP95MS: 30, Circuit: Closed},
		},
		{
			name: "all failed",
			recs: []rec{{time.Second, 0, true}, {time.Second, 0, true}},
			want: Stats{Requests: 2, Errors: 2, ErrorRateBP: 10000, Circuit: Closed},
		},
		{
			name:     "in flight",
			inFlight: 2,
			want:     Stats{InFlight: 2, Circuit: Closed},
		},
		{
			name: "sub-millisecond and negative latencies clamp",
			recs: []rec{{500 * time.Microsecond, 0, false}, {-time.Second, 0, false}},
			want: Stats{Requests: 2, Circuit: Closed},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTracker()
			tg := tr.Target("p", "m")
			for _, r := range tc.recs {
				record(tg, r.lat, r.ttft, r.failed)
			}
			for range tc.inFlight {
				tg.Begin()
			}
			if got := tg.Stats(); got != tc.want {
				t.Errorf("stats = %+v\nwant    %+v", got, tc.want)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	// 1..100 ms in scrambled order: nearest-rank percentiles are exact, so any off-by-one
	// in the index shows.
	tr, _ := newTracker()
	tg := tr.Target("p", "m")
	for i := range 100 {
		v := time.Duration((i*37)%100+1) * time.Millisecond
		record(tg, v, v/2, false)
	}
	s := tg.Stats()
	if s.P50MS != 50 || s.P95MS != 95 {
		t.Errorf("p50, p95 = %d, %d; want 50, 95", s.P50MS, s.P95MS)
	}
	// ttft is v/2 truncated to ms: the 95th of {0,1,1,2,2,...,50} is 47.
	if s.TTFTP95MS != 47 {
		t.Errorf("ttft p95 = %d, want 47", s.TTFTP95MS)
	}
	if s.Requests != 100 || s.ErrorRateBP != 0 {
		t.Errorf("requests, error rate = %d, %d", s.Requests, s.ErrorRateBP)
	}
}

func TestLatencySamplesAreARing(t *testing.T) {
	// Only the last `samples` latencies count, so a slow past does not outweigh the
	// present forever once traffic is steady.
	tr, _ := newTracker()
	tg := tr.Target("p", "m")
	for range samples {
		record(tg, 5*time.Second, 0, false)
	}
	for range samples {
		record(tg, 10*time.Millisecond, 0, false)
	}
	if s := tg.Stats(); s.P95MS != 10 {
		t.Errorf("p95 = %d after %d fast requests, want 10", s.P95MS, samples)
	}
}

func TestWindowForgets(t *testing.T) {
	tr, clk := newTracker()
	tg := tr.Target("p", "m")
	record(tg, 10*time.Millisecond, 0, true) // bucket 0
	clk.advance(30 * time.Second)
	record(tg, 10*time.Millisecond, 0, false) // bucket 6
	record(tg, 10*time.Millisecond, 0, false)

	steps := []struct {
		name      string
		advance   time.Duration // from the previous step
		requests  int
		errorRate int
	}{
		{"both buckets in window", 0, 3, 3333},
		// t0+55s is the 12th bucket: the oldest one is still inside the window.
		{"oldest bucket still in window", 25 * time.Second, 3, 3333},
		// t0+60s: the first bucket (holding the error) slid out.
		{"first bucket forgotten", 5 * time.Second, 2, 0},
		// t0+90s: everything slid out, though the slots were never overwritten.
		{"all forgotten", 30 * time.Second, 0, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.advance(st.advance)
			s := tg.Stats()
			if s.Requests != st.requests || s.ErrorRateBP != st.errorRate {
				t.Errorf("requests, error_rate_bp = %d, %d; want %d, %d", s.Requests, s.ErrorRateBP, st.requests, st.errorRate)
			}
		})
	}

	// A slot reused a whole window later must start from zero, not add to stale counts.
	record(tg, 10*time.Millisecond, 0, false)
	if s := tg.Stats(); s.Requests != 1 || s.Errors != 0 {
		t.Errorf("after reuse: requests, errors = %d, %d; want 1, 0", s.Requests, s.Errors)
	}
}

func TestCustomWindow(t *testing.T) {
	// A 12 s window has 1 s buckets.
	c := &fakeClock{t: t0}
	tr := New(12 * time.Second)
	tr.now = c.now
	tg := tr.Target("p", "m")
	record(tg, 0, 0, false)
	c.advance(11 * time.Second)
	if n := tg.Stats().Requests; n != 1 {
		t.Errorf("requests at +11s = %d, want 1", n)
	}
	c.advance(time.Second)
	if n := tg.Stats().Requests; n != 0 {
		t.Errorf("requests at +12s = %d, want 0", n)
	}
}

func TestSetHealthy(t *testing.T) {
	tr, _ := newTracker()
	tr.Register("openai")
	tr.Target("openai", "gpt-4o")
	changed(tr) // drain Register's signals

	steps := []struct {
		name    string
		prov    string
		ok      bool
		healthy bool // openai's health afterwards
		signal  bool
	}{
		{"flip down", "openai", false, false, true},
		{"repeat is no change", "openai", false, false, false},
		{"flip up", "openai", true, true, true},
		{"unknown provider ignored", "nope", false, true, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			tr.SetHealthy(st.prov, st.ok)
			if got := changed(tr); got != st.signal {
				t.Errorf("Changed signalled = %v, want %v", got, st.signal)
			}
			v := value(tr)
			for _, keys := range [][]string{{"openai", "healthy"}, {"openai", "models", "gpt-4o", "healthy"}} {
				if b := get(t, v, keys...); b.Compare(ast.Boolean(st.healthy)) != 0 {
					t.Errorf("%v = %v, want %v", keys, b, st.healthy)
				}
			}
		})
	}
	for _, p := range tr.Snapshot() {
		if p.Name == "nope" {
			t.Error("SetHealthy on an unknown provider registered it")
		}
	}
}

func TestKickCoalesces(t *testing.T) {
	// Changed has room for one signal: a burst of breaker moves wakes the planner once, and
	// kicking never blocks the request path.
	tr, _ := newTracker()
	for range 10 {
		tr.Kick()
	}
	if !changed(tr) {
		t.Fatal("Kick did not signal")
	}
	if changed(tr) {
		t.Error("kicks were not coalesced")
	}
}

func TestCircuits(t *testing.T) {
	state := func(c Circuit) func() Circuit { return func() Circuit { return c } }
	tests := []struct {
		name   string
		models map[string]Circuit // "" leaves the breaker uninstalled
		want   Circuit            // provider-level
	}{
		{"no breakers", map[string]Circuit{"a": "", "b": ""}, Closed},
		{"one open", map[string]Circuit{"a": Open, "b": Closed}, Closed},
		{"open and half open", map[string]Circuit{"a": Open, "b": HalfOpen}, Closed},
		{"all open", map[string]Circuit{"a": Open, "b": Open}, Open},
		{"single open", map[string]Circuit{"a": Open}, Open},
		{"all half open", map[string]Circuit{"a": HalfOpen, "b": HalfOpen}, Closed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTracker()
			for m, c := range tc.models {
				tg := tr.Target("p", m)
				if c != "" {
					tg.SetCircuit(state(c))
				}
			}
			v := value(tr)
			if got := get(t, v, "p", "circuit"); got.Compare(ast.String(tc.want)) != 0 {
				t.Errorf("provider circuit = %v, want %s", got, tc.want)
			}
			for m, c := range tc.models {
				if c == "" {
					c = Closed
				}
				if got := get(t, v, "p", "models", m, "circuit"); got.Compare(ast.String(c)) != 0 {
					t.Errorf("model %s circuit = %v, want %s", m, got, c)
				}
			}
		})
	}

	// The breaker is read live, not copied at SetCircuit time.
	tr, _ := newTracker()
	tg := tr.Target("p", "m")
	c := Open
	tg.SetCircuit(func() Circuit { return c })
	c = HalfOpen
	if got := tg.Circuit(); got != HalfOpen {
		t.Errorf("circuit = %s, want half_open", got)
	}
}

func TestValueShape(t *testing.T) {
	tr, _ := newTracker()
	tr.Register("idle")
	a := tr.Target("openai", "gpt-4o")
	b := tr.Target("openai", "gpt-4o-mini")
	record(a, 100*time.Millisecond, 20*time.Millisecond, false)
	record(a, 300*time.Millisecond, 40*time.Millisecond, true)
	record(b, 900*time.Millisecond, 0, false)
	record(b, 50*time.Millisecond, 0, false)
	b.Begin()
	a.SetCircuit(func() Circuit { return Open })

	v := value(tr)
	if got := keysOf(t, v); fmt.Sprint(got) != "[idle openai]" {
		t.Fatalf("providers = %v", got)
	}
	statKeys := "[circuit error_rate_bp healthy in_flight p50_ms p95_ms requests ttft_p95_ms]"
	provKeys := "[circuit error_rate_bp healthy in_flight models p50_ms p95_ms requests ttft_p95_ms]"
	for _, p := range []string{"idle", "openai"} {
		if got := fmt.Sprint(keysOf(t, get(t, v, p))); got != provKeys {
			t.Errorf("%s keys = %s\nwant %s", p, got, provKeys)
		}
	}
	if got := fmt.Sprint(keysOf(t, get(t, v, "openai", "models"))); got != "[gpt-4o gpt-4o-mini]" {
		t.Errorf("models = %s", got)
	}
	for _, m := range []string{"gpt-4o", "gpt-4o-mini"} {
		if got := fmt.Sprint(keysOf(t, get(t, v, "openai", "models", m))); got != statKeys {
			t.Errorf("%s keys = %s\nwant %s", m, got, statKeys)
		}
	}

	ints := []struct {
		path []string
		want int
	}{
		{[]string{"openai", "models", "gpt-4o", "requests"}, 2},
		{[]string{"openai", "models", "gpt-4o", "error_rate_bp"}, 5000},
		{[]string{"openai", "models", "gpt-4o", "p50_ms"}, 100},
		{[]string{"openai", "models", "gpt-4o", "p95_ms"}, 100}, // the failure's latency is not a sample
		{[]string{"openai", "models", "gpt-4o", "ttft_p95_ms"}, 20},
		{[]string{"openai", "models", "gpt-4o", "in_flight"}, 0},
		{[]string{"openai", "models", "gpt-4o-mini", "requests"}, 2},
		{[]string{"openai", "models", "gpt-4o-mini", "p50_ms"}, 50},
		{[]string{"openai", "models", "gpt-4o-mini", "p95_ms"}, 900},
		{[]string{"openai", "models", "gpt-4o-mini", "in_flight"}, 1},
		// Provider level: counts summed, latencies the worst model's, rate recomputed.
		{[]string{"openai", "requests"}, 4},
		{[]string{"openai", "error_rate_bp"}, 2500},
		{[]string{"openai", "p50_ms"}, 100},
		{[]string{"openai", "p95_ms"}, 900},
		{[]string{"openai", "ttft_p95_ms"}, 20},
		{[]string{"openai", "in_flight"}, 1},
		{[]string{"idle", "requests"}, 0},
		{[]string{"idle", "error_rate_bp"}, 0},
		{[]string{"idle", "p95_ms"}, 0},
	}
	for _, tc := range ints {
		if got := getInt(t, v, tc.path...); got != tc.want {
			t.Errorf("%v = %d, want %d", tc.path, got, tc.want)
		}
	}
	strs := []struct {
		path []string
		want ast.Value
	}{
		{[]string{"openai", "circuit"}, ast.String("closed")},
		{[]string{"openai", "models", "gpt-4o", "circuit"}, ast.String("open")},
		{[]string{"openai", "models", "gpt-4o-mini", "circuit"}, ast.String("closed")},
		{[]string{"openai", "healthy"}, ast.Boolean(true)},
		{[]string{"openai", "models", "gpt-4o", "healthy"}, ast.Boolean(true)},
		{[]string{"idle", "healthy"}, ast.Boolean(true)},
	}
	for _, tc := range strs {
		if got := get(t, v, tc.path...); got.Compare(tc.want) != 0 {
			t.Errorf("%v = %v, want %v", tc.path, got, tc.want)
		}
	}

	// The rendering must be a plain, ground OPA value the policy can be compiled against.
	if !v.IsGround() {
		t.Error("value is not ground")
	}
	if _, err := ast.ParseTerm(v.String()); err != nil {
		t.Errorf("value does not round-trip through the Rego parser: %v", err)
	}
}

func TestConcurrentRecording(t *testing.T) {
	// Meant for -race: the request path records while the planner renders and probes flip
	// health. The clock is fixed so the totals are exact.
	tr, _ := newTracker()
	const (
		workers = 16
		iters   = 200
	)
	provs := []string{"a", "b", "c"}
	models := []string{"m1", "m2"}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range iters {
				tg := tr.Target(provs[(w+i)%len(provs)], models[i%len(models)])
				tg.Begin()
				tg.End(time.Duration(i)*time.Millisecond, time.Duration(i/2)*time.Millisecond, i%10 == 0)
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = value(tr).String()
		}
	})
	readers.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tr.SetHealthy(provs[i%len(provs)], i%2 == 0)
			tr.Target("a", "m1").SetCircuit(func() Circuit { return Closed })
			tr.Register(fmt.Sprintf("late-%d", i%4))
			select {
			case <-tr.Changed():
			default:
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()

	total, errs, inFlight := 0, 0, 0
	for _, p := range tr.Snapshot() {
		total += p.Stats.Requests
		errs += p.Stats.Errors
		inFlight += p.Stats.InFlight
	}
	if total != workers*iters {
		t.Errorf("requests = %d, want %d", total, workers*iters)
	}
	if errs != workers*iters/10 {
		t.Errorf("errors = %d, want %d", errs, workers*iters/10)
	}
	if inFlight != 0 {
		t.Errorf("in_flight = %d after every request ended", inFlight)
	}
}

// BenchmarkTargetEnd is the per-request recording cost on the hot path, contended the way
// a busy model is.
func BenchmarkTargetEnd(b *testing.B) {
	tr := New(0)
	tg := tr.Target("openai", "gpt-4o")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tg.Begin()
			tg.End(time.Duration(100+i%400)*time.Millisecond, 80*time.Millisecond, i%50 == 0)
			i++
		}
	})
}

// BenchmarkValue renders a full snapshot, as the planner does on every change.
func BenchmarkValue(b *testing.B) {
	tr := New(0)
	for p := range 6 {
		for m := range 4 {
			tg := tr.Target(fmt.Sprintf("provider-%d", p), fmt.Sprintf("model-%d", m))
			for i := range samples {
				tg.Begin()
				tg.End(time.Duration(50+i)*time.Millisecond, time.Duration(10+i/2)*time.Millisecond, i%20 == 0)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = value(tr)
	}
}

func TestLatencyAgesOutWithTheWindow(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tr := New(time.Minute)
	tr.now = func() time.Time { return now }
	tg := tr.Target("p", "m")
	tg.Begin()
	tg.End(5*time.Second, time.Second, false)
	if s := tg.Stats(); s.P95MS != 5000 || s.TTFTP95MS != 1000 {
		t.Fatalf("stats = %+v", s)
	}
	now = now.Add(2 * time.Minute)
	if s := tg.Stats(); s.P95MS != 0 || s.TTFTP95MS != 0 || s.Requests != 0 {
		t.Errorf("a slow spell two windows ago still shows: %+v", s)
	}
}

func TestProbeFeedsHealthy(t *testing.T) {
	tr := New(0)
	tr.Register("p")
	// Each probe takes its result from the channel, so the test paces the prober: when
	// result i+1 is taken, the verdict of probe i has been applied.
	results, ack := make(chan error), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Probe(ctx, "p", ProbeConfig{Interval: time.Millisecond, FailureThreshold: 2}, func(c context.Context) error {
			select {
			case err := <-results:
				<-ack
				return err
			case <-c.Done():
				return c.Err()
			}
		}, nil)
	}()
	down := errors.New("down")
	results <- down
	ack <- struct{}{}
	var states []bool
	for _, next := range []error{down, nil, nil} {
		results <- next // the previous probe's verdict is applied before the next probe runs
		states = append(states, healthyOf(tr, "p"))
		ack <- struct{}{}
	}
	cancel()
	<-done
	if states[0] != true || states[1] != false || states[2] != true {
		t.Errorf("healthy after probes = %v, want [true false true] (threshold 2)", states)
	}
}

func healthyOf(tr *Tracker, name string) bool {
	for _, p := range tr.Snapshot() {
		if p.Name == name {
			return p.Healthy
		}
	}
	return false
}
