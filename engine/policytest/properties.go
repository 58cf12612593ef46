package policytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/gavel-gw/gavel/engine/policy"
)

// InvariantQuery is the set of broken promises a bundle reports for an input: the
// messages of its `invariant contains msg if …` rules in package gavel.invariants.
const InvariantQuery = "data.gavel.invariants.invariant"

// PropertyOptions configure a property run.
type PropertyOptions struct {
	N    int    // generated inputs
	Seed uint64 // the generator's seed: a failure is reproduced with the same seed
	Out  io.Writer
}

// Failure is an input that breaks an invariant, gets a decision gavel's parser refuses, or
// fails to evaluate, shrunk to a minimal counterexample.
type Failure struct {
	Problem string         // the invariant's message, or the parse or evaluation error
	Input   map[string]any // the shrunk input (input.plan left out: it is computed from providers)
}

// PropertySummary is a property run's outcome.
type PropertySummary struct {
	Inputs     int
	Invariants bool // the bundle declares invariants
	Failures   []Failure
}

// Properties generates inputs walked from docs/schema/input.json with the bundle's own
// data laid over them (its aliases, catalog, keys, budgets, rate limits and tier access),
// biased towards edge cases, evaluates data.gavel.decision and the bundle's invariants on each as gavel would
// (input.plan computed over the generated providers, so the fast path is exercised), and
// reports every distinct problem once, with the smallest input that still shows it.
func Properties(ctx context.Context, b *bundle.Bundle, o PropertyOptions) (PropertySummary, error) {
	var sum PropertySummary
	rev, err := policy.Prepare(ctx, b, "properties")
	if err != nil {
		return sum, err
	}
	inv, err := rego.New(rego.Query(InvariantQuery), rego.ParsedBundle("gavel", b)).PrepareForEval(ctx)
	if err != nil {
		return sum, fmt.Errorf("invariants: %w", err)
	}
	for _, m := range b.Modules {
		if m.Parsed != nil && m.Parsed.Package.Path.String() == "data.gavel.invariants" {
			sum.Invariants = true
		}
	}
	g := newGenerator(b, o.Seed)
	plans := map[string]ast.Value{} // by provider snapshot: generated inputs share a few
	check := func(in map[string]any) string { return problem(ctx, rev, inv, plans, in) }
	seen := map[string]bool{}
	for i := 0; i < o.N; i++ {
		in := g.input()
		sum.Inputs++
		p := check(in)
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		small := shrink(in, p, check)
		sum.Failures = append(sum.Failures, Failure{Problem: p, Input: small})
		if o.Out != nil {
			raw, _ := json.MarshalIndent(small, "    ", "  ")
			fmt.Fprintf(o.Out, "FAIL: %s\n  minimal input:\n    %s\n", p, raw)
		}
	}
	if o.Out != nil {
		fmt.Fprintf(o.Out, "PROPERTIES: %d generated inputs, %d problems (seed %d)\n", sum.Inputs, len(sum.Failures), o.Seed)
	}
	return sum, nil
}

// problem evaluates one input: "" when the decision parses and no invariant is broken.
func problem(ctx context.Context, rev *policy.Revision, inv rego.PreparedEvalQuery, plans map[string]ast.Value, in map[string]any) string {
	v, err := ast.InterfaceToValue(in)
	if err != nil {
		return "input: " + err.Error()
	}
	obj := v.(ast.Object)
	providers := obj.Get(ast.StringTerm("providers")).Value
	plan, ok := plans[providers.String()]
	if !ok {
		if plan, err = rev.Plan(ctx, providers); err != nil {
			return "plan: " + err.Error()
		}
		plans[providers.String()] = plan
	}
	if plan != nil {
		obj.Insert(ast.StringTerm("plan"), ast.NewTerm(plan))
	}
	d, err := rev.Evaluate(ctx, obj)
	if err != nil {
		return "evaluation: " + err.Error()
	}
	if _, err := policy.ParseDecision(d); err != nil {
		return "decision: " + err.Error()
	}
	rs, err := inv.Eval(ctx, rego.EvalParsedInput(obj))
	if err != nil {
		return "invariants: " + err.Error()
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return ""
	}
	msgs, _ := rs[0].Expressions[0].Value.([]any)
	var out []string
	for _, m := range msgs {
		out = append(out, fmt.Sprint(m))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return ""
	}
	return "invariant: " + out[0]
}

// shrink simplifies in one step at a time, keeping each step that still shows the same
// problem, until no step does.
func shrink(in map[string]any, p string, check func(map[string]any) string) map[string]any {
	cur := in
	for changed := true; changed; {
		changed = false
		for _, next := range simpler(cur) {
			if check(next) == p {
				cur, changed = next, true
				break
			}
		}
	}
	return cur
}

// simpler lists the inputs one step simpler than in.
func simpler(in map[string]any) []map[string]any {
	var out []map[string]any
	with := func(f func(m map[string]any)) {
		c := clone(in)
		f(c)
		out = append(out, c)
	}
	req := in["request"].(map[string]any)
	for k, zero := range map[string]any{"stream": false, "has_tools": false, "has_images": false, "has_code": false,
		"max_tokens": 0, "est_input_tokens": 10, "metadata": map[string]any{}, "endpoint": "chat", "bucket": 0, "sample": 9999} {
		if fmt.Sprint(req[k]) != fmt.Sprint(zero) {
			with(func(m map[string]any) { m["request"].(map[string]any)[k] = zero })
		}
	}
	// The schema walk's optional members go, and its free-form ones shrink to the plainest.
	for _, k := range []string{"protocol", "temperature", "seed"} {
		if _, ok := req[k]; ok {
			with(func(m map[string]any) { delete(m["request"].(map[string]any), k) })
		}
	}
	for k, plain := range map[string]any{"n": 1, "fields": []any{}, "messages": []any{map[string]any{"role": "user", "text": "hello"}}} {
		if fmt.Sprint(req[k]) != fmt.Sprint(plain) {
			with(func(m map[string]any) {
				r := m["request"].(map[string]any)
				r[k] = plain
				if k == "messages" {
					r["turns"] = 1
				}
			})
		}
	}
	if len(asMap(in["caller"].(map[string]any)["labels"])) > 0 {
		with(func(m map[string]any) { m["caller"].(map[string]any)["labels"] = map[string]any{} })
	}
	for t := range in["pii"].(map[string]any) {
		with(func(m map[string]any) { delete(m["pii"].(map[string]any), t) })
	}
	for name := range in["spend"].(map[string]any) {
		with(func(m map[string]any) { delete(m["spend"].(map[string]any), name) })
	}
	for scope := range in["rate"].(map[string]any) {
		with(func(m map[string]any) { delete(m["rate"].(map[string]any), scope) })
	}
	for name, p := range in["providers"].(map[string]any) {
		if !isPlainHealthy(p.(map[string]any)) {
			with(func(m map[string]any) { m["providers"].(map[string]any)[name] = healthyProvider() })
		}
	}
	if c := in["caller"].(map[string]any); c["tier"] != "" || c["team"] != "" {
		with(func(m map[string]any) {
			m["caller"] = map[string]any{"key_id": "k", "user": "", "team": "", "project": "", "tier": "", "labels": map[string]any{},
				"models": []any{}, "rpm": 0, "tpm": 0, "budget_musd": 0, "budget_period": ""}
		})
	}
	return out
}

func clone(m map[string]any) map[string]any {
	raw, _ := json.Marshal(m)
	var c map[string]any
	json.Unmarshal(raw, &c)
	return c
}

func healthyProvider() map[string]any {
	return map[string]any{"healthy": true, "circuit": "closed", "requests": 0, "error_rate_bp": 0, "p50_ms": 0, "p95_ms": 0, "ttft_p95_ms": 0, "in_flight": 0, "models": map[string]any{}}
}

func isPlainHealthy(p map[string]any) bool {
	h, _ := json.Marshal(healthyProvider())
	q, _ := json.Marshal(p)
	return string(h) == string(q)
}

// generator draws inputs from a bundle's data.
type generator struct {
	r *rand.Rand
	// kr draws the keys' own limits: a stream of its own, so that adding them left the
	// inputs drawn from r (and the counterexamples a seed finds) as they were.
	kr *rand.Rand
	// sw walks docs/schema/input.json for each input's base, on a stream of its own for
	// the same reason.
	sw                *schemaWalker
	models, providers []string
	callers           []map[string]any
	budgets           []map[string]any
	rateLimits        []map[string]any
	tasks, piiTypes   []string
}

// rateScopes are the scopes input.rate may hold (docs/schema/input.json, rate's
// propertyNames): a policy may read a scope the bundle declares no limit for.
var rateScopes = []string{"key", "user", "team", "project", "global"}

func newGenerator(b *bundle.Bundle, seed uint64) *generator {
	g := &generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), kr: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)),
		sw:       &schemaWalker{root: inputSchema, r: rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))},
		piiTypes: []string{"email", "phone", "credit_card", "ssn", "iban", "ip", "secret"}}
	data, _ := b.Data["gavel"].(map[string]any)
	provs := map[string]bool{}
	for id, e := range asMap(data["catalog"]) {
		g.models = append(g.models, id)
		if p, ok := asMap(e)["provider"].(string); ok {
			provs[p] = true
		}
	}
	for name := range asMap(data["aliases"]) {
		g.models = append(g.models, name)
	}
	for p := range provs {
		g.providers = append(g.providers, p)
	}
	sort.Strings(g.models)
	sort.Strings(g.providers)
	if len(g.providers) > 0 {
		g.models = append(g.models, "unknown-model", g.providers[0]+"/not-in-the-catalog")
	}
	for _, k := range asMap(data["keys"]) {
		g.callers = append(g.callers, asMap(k))
	}
	sort.Slice(g.callers, func(i, j int) bool { return fmt.Sprint(g.callers[i]) < fmt.Sprint(g.callers[j]) })
	teams := []string{"search"}
	for t := range asMap(asMap(asMap(data["pii_policy"])["pii_actions"])["teams"]) {
		teams = append(teams, t)
	}
	tiers := []string{"gold", "silver", "bronze"}
	for t := range asMap(data["tier_access"]) {
		tiers = append(tiers, t)
	}
	sort.Strings(teams)
	sort.Strings(tiers)
	for _, team := range teams {
		for _, tier := range tiers {
			g.callers = append(g.callers, map[string]any{"key_id": "k-" + team + "-" + tier, "user": "u", "team": team, "project": "p", "tier": tier, "labels": map[string]any{}})
		}
	}
	if bs, ok := data["budgets"].([]any); ok {
		for _, b := range bs {
			g.budgets = append(g.budgets, asMap(b))
		}
	}
	for _, rl := range asSlice(data["rate_limits"]) {
		g.rateLimits = append(g.rateLimits, asMap(rl))
	}
	for _, cr := range asSlice(data["content_routes"]) {
		if t, ok := asMap(asMap(cr)["when"])["task"].(string); ok {
			g.tasks = append(g.tasks, t)
		}
	}
	return g
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func (g *generator) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *generator) chance(pct int) bool { return g.r.IntN(100) < pct }

// input draws one input: its base walked from docs/schema/input.json (every member the
// schema allows, at its edges), then the choices that need the bundle's data laid over it
// (models and aliases of the catalog, the keys' callers, budgets, rate limits, the
// catalog's providers' health, PII), so that the input both validates against the schema
// and reaches the policy's interesting branches.
func (g *generator) input() map[string]any {
	base := g.sw.walk(inputSchema).(map[string]any)
	delete(base, "plan") // computed over providers, as gavel does (problem)
	endpoint := "chat"
	if g.chance(15) {
		endpoint = "embeddings"
	}
	meta := asMap(base["request"].(map[string]any)["metadata"])
	if len(g.tasks) > 0 && g.chance(30) {
		meta["task"] = g.pick(g.tasks)
	}
	req := base["request"].(map[string]any)
	if g.sw.r.IntN(2) == 0 {
		endpoint = req["endpoint"].(string) // the schema's: messages, count_tokens, responses too
	}
	// turns counts the user messages, as gavel computes it.
	turns := 0
	for _, m := range req["messages"].([]any) {
		if asMap(m)["role"] == "user" {
			turns++
		}
	}
	for k, v := range map[string]any{
		"id": fmt.Sprintf("prop-%d", g.r.Uint32()), "endpoint": endpoint, "model": g.pick(g.models),
		"stream": g.chance(40), "has_tools": g.chance(25), "has_images": g.chance(15), "has_code": g.chance(20),
		"max_tokens":       []int{0, 0, 1, 256, 4096, 100000000}[g.r.IntN(6)],
		"est_input_tokens": []int{0, 10, 1000, 150000, 2000000}[g.r.IntN(5)],
		"metadata":         meta, "bucket": g.r.IntN(10000), "sample": g.r.IntN(10000), "turns": turns,
	} {
		req[k] = v
	}
	pii := map[string]any{}
	if g.chance(50) {
		for _, t := range g.piiTypes {
			if g.chance(30) {
				pii[t] = 1 + g.r.IntN(3)
			}
		}
	}
	providers := map[string]any{}
	allDown := g.chance(10)
	provSchema := asMap(asMap(asMap(inputSchema["properties"])["providers"])["additionalProperties"])
	for _, p := range g.providers {
		st := healthyProvider()
		if g.sw.r.IntN(2) == 0 {
			// The schema's stats at their edges (latencies, error rate, in-flight, a
			// provider catalog and per-model stats), healthy and closed unless drawn below.
			st = g.sw.walk(provSchema).(map[string]any)
			st["healthy"], st["circuit"] = true, "closed"
		}
		switch {
		case allDown:
			st["healthy"], st["circuit"] = false, "open"
		case g.chance(25):
			st["circuit"] = []string{"open", "half_open"}[g.r.IntN(2)]
			st["healthy"] = st["circuit"] != "open"
		case g.chance(15):
			st["error_rate_bp"] = 6000
		}
		providers[p] = st
	}
	spend := map[string]any{}
	for _, b := range g.budgets {
		name, _ := b["name"].(string)
		limit, _ := b["limit_musd"].(json.Number)
		l, _ := limit.Int64()
		if f, ok := b["limit_musd"].(float64); ok {
			l = int64(f)
		}
		spent := []int64{0, l / 2, l, 2 * l}[g.r.IntN(4)]
		spend[name] = map[string]any{"spent_musd": spent, "reserved_musd": 0, "limit_musd": l}
	}
	// The caller's usage this minute: for each declared rate limit none, half, all or
	// twice its rpm and tpm (the edges a limit rule gets wrong), and now and then a scope
	// with no declared limit.
	rate := map[string]any{}
	for _, rl := range g.rateLimits {
		scope, _ := rl["scope"].(string)
		if scope == "" {
			continue
		}
		rate[scope] = map[string]any{"requests": g.around(number(rl["rpm"])), "tokens": g.around(number(rl["tpm"]))}
	}
	if g.chance(20) {
		if scope := g.pick(rateScopes); rate[scope] == nil {
			rate[scope] = map[string]any{"requests": g.r.IntN(1000), "tokens": g.r.IntN(1000000)}
		}
	}
	labels := base["caller"].(map[string]any)["labels"]
	caller := map[string]any{"key_id": "anonymous", "user": "", "team": "", "project": "", "tier": "anonymous", "labels": labels}
	if len(g.callers) > 0 && g.chance(90) {
		c := g.callers[g.r.IntN(len(g.callers))]
		caller = map[string]any{"labels": labels}
		for _, k := range []string{"key_id", "user", "team", "project", "tier"} {
			s, _ := c[k].(string)
			caller[k] = s
		}
	}
	// The key's own limits, as gavel always sends them; some keys restrict models or
	// carry a budget or rate limit of their own (the keys API sets these).
	models := []any{}
	if caller["key_id"] != "anonymous" && len(g.models) > 0 && g.kr.IntN(100) < 20 {
		picked := map[string]bool{g.models[g.kr.IntN(len(g.models))]: true, g.models[g.kr.IntN(len(g.models))]: true}
		for _, m := range slices.Sorted(maps.Keys(picked)) {
			models = append(models, m)
		}
	}
	caller["models"] = models
	caller["rpm"], caller["tpm"], caller["budget_musd"], caller["budget_period"] = 0, 0, 0, ""
	if caller["key_id"] != "anonymous" && g.kr.IntN(100) < 20 {
		caller["rpm"], caller["tpm"] = 60, 100000
	}
	if caller["key_id"] != "anonymous" && g.kr.IntN(100) < 10 {
		caller["budget_musd"], caller["budget_period"] = 1000000, "day"
	}
	for k, v := range map[string]any{"request": req, "caller": caller, "providers": providers, "pii": pii,
		"spend": spend, "rate": rate, "now": int64(1796644800000000000)} {
		base[k] = v
	}
	return base
}

// around draws 0, half, all, one past or twice limit (0 when there is no limit).
func (g *generator) around(limit int64) int64 {
	return []int64{0, limit / 2, limit, limit + 1, 2 * limit}[g.r.IntN(5)]
}

// number reads an integer of the bundle's data (json.Number or float64).
func number(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return i
	case float64:
		return int64(n)
	}
	return 0
}

// Describe renders failures for an error message.
func Describe(fs []Failure) string {
	var b strings.Builder
	for _, f := range fs {
		raw, _ := json.Marshal(f.Input)
		fmt.Fprintf(&b, "\n  %s\n    input: %s", f.Problem, raw)
	}
	return b.String()
}
