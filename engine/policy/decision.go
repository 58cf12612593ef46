package policy

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/ledger"
)

// ErrInvalidDecision marks a policy result gavel refuses to act on.
var ErrInvalidDecision = errors.New("invalid decision")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidDecision}, args...)...)
}

// ParseDecision turns the value of data.gavel.decision into a Decision. It rejects unknown
// fields and wrong types: a policy that says something gavel cannot carry out must not be
// half-obeyed.
//
// It runs once per request: fields are looked up by key (no closures over the object), and
// error messages are only formatted when there is an error.
func ParseDecision(v ast.Value) (*decision.Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("decision must be an object, got %s", ast.ValueName(v))
	}
	d := &decision.Decision{Limits: decision.Limits{MaxRetries: -1}}
	found := 0
	for i := range decisionFields {
		f := &decisionFields[i]
		t := obj.Get(f.key)
		if t == nil {
			continue
		}
		found++
		if err := f.parse(d, t.Value); err != nil {
			return nil, err
		}
	}
	if found != obj.Len() {
		return nil, unknownField(obj, "", decisionKeys)
	}
	if obj.Get(kAllow) == nil {
		return nil, invalid("missing field \"allow\"")
	}
	if d.Allow {
		if len(d.Targets) == 0 {
			return nil, invalid("allow is true but targets is empty")
		}
		if d.Deny != nil {
			return nil, invalid("allow is true but deny is set")
		}
		if d.Remediation != nil {
			return nil, invalid("allow is true but remediation is set")
		}
	} else if d.Fault != nil {
		return nil, invalid("allow is false but fault is set")
	} else if d.Cache != nil {
		return nil, invalid("allow is false but cache is set")
	} else if d.Deny == nil {
		d.Deny = &decision.Deny{Status: decision.DefaultDenyStatus, Code: decision.DefaultDenyCode, Message: decision.DefaultDenyMessage}
	}
	return d, nil
}

var (
	kAllow    = ast.StringTerm("allow")
	kProvider = ast.StringTerm("provider")
)

// decisionFields are the fields of a decision, in key order (the order errors are found in).
var decisionFields = []struct {
	key   *ast.Term
	parse func(*decision.Decision, ast.Value) error
}{
	{ast.StringTerm("ab"), func(d *decision.Decision, v ast.Value) (err error) { d.AB, err = parseAB(v); return }},
	{kAllow, func(d *decision.Decision, v ast.Value) (err error) { d.Allow, err = asBool("allow", v); return }},
	{ast.StringTerm("budgets"), func(d *decision.Decision, v ast.Value) (err error) { d.Budgets, err = parseBudgets(v); return }},
	{ast.StringTerm("cache"), func(d *decision.Decision, v ast.Value) (err error) { d.Cache, err = parseCache(v); return }},
	{ast.StringTerm("degrade"), func(d *decision.Decision, v ast.Value) error { return parseDegrade(&d.Degrade, v) }},
	{ast.StringTerm("deny"), func(d *decision.Decision, v ast.Value) (err error) { d.Deny, err = parseDeny(v); return }},
	{ast.StringTerm("fault"), func(d *decision.Decision, v ast.Value) (err error) { d.Fault, err = parseFault(v); return }},
	{ast.StringTerm("hedge"), func(d *decision.Decision, v ast.Value) (err error) { d.Hedge, err = parseHedge(v); return }},
	{ast.StringTerm("labels"), func(d *decision.Decision, v ast.Value) (err error) { d.Labels, err = asStringMap("labels", v); return }},
	{ast.StringTerm("limits"), func(d *decision.Decision, v ast.Value) error { return parseLimits(&d.Limits, v) }},
	{ast.StringTerm("rate_limits"), func(d *decision.Decision, v ast.Value) (err error) {
		d.RateLimits, err = parseRateLimits(v)
		return
	}},
	{ast.StringTerm("reasons"), func(d *decision.Decision, v ast.Value) (err error) { d.Reasons, err = asStrings("reasons", v); return }},
	{ast.StringTerm("redact"), func(d *decision.Decision, v ast.Value) (err error) {
		if d.Redact, err = asStrings("redact", v); err != nil {
			return err
		}
		for _, t := range d.Redact {
			if !decision.RedactableTypes[t] {
				return invalid("redact: unknown PII type %q", t)
			}
		}
		return nil
	}},
	{ast.StringTerm("remediation"), func(d *decision.Decision, v ast.Value) (err error) {
		d.Remediation, err = parseRemediation(v)
		return
	}},
	{ast.StringTerm("shadow"), func(d *decision.Decision, v ast.Value) (err error) { d.Shadow, err = parseTargets("shadow", v); return }},
	{ast.StringTerm("targets"), func(d *decision.Decision, v ast.Value) (err error) {
		d.Targets, err = parseTargets("targets", v)
		return
	}},
}

// DecisionFields names the fields a decision may carry, sorted, reasons aside: the values
// ChangedFields can report besides "decision" (a bounded set, which is why metrics may use
// them as label values).
func DecisionFields() []string {
	out := make([]string, 0, len(decisionFields))
	for _, f := range decisionFields {
		if k := string(f.key.Value.(ast.String)); k != "reasons" {
			out = append(out, k)
		}
	}
	return out
}

var decisionKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range decisionFields {
		m[string(f.key.Value.(ast.String))] = true
	}
	return m
}()

// unknownField is the error for an object that has a key outside known (the first in key
// order). prefix names the object ("" for the decision itself).
func unknownField(obj ast.Object, prefix string, known map[string]bool) error {
	var err error
	obj.Until(func(k, _ *ast.Term) bool {
		key, ok := k.Value.(ast.String)
		switch {
		case !ok && prefix == "":
			err = invalid("decision keys must be strings")
		case !ok || !known[string(key)]:
			if prefix == "" {
				err = invalid("unknown field %q", keyOf(k))
			} else {
				err = invalid("unknown field %s.%s", prefix, keyOf(k))
			}
		}
		return err != nil
	})
	if err == nil {
		err = invalid("unknown field in %s", prefix) // unreachable: some key was not counted
	}
	return err
}

func parseDeny(v ast.Value) (*decision.Deny, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("deny must be an object")
	}
	d := &decision.Deny{Status: decision.DefaultDenyStatus, Code: decision.DefaultDenyCode, Message: decision.DefaultDenyMessage}
	var err error
	obj.Until(func(k, val *ast.Term) bool {
		switch keyOf(k) {
		case "status":
			d.Status, err = asInt("deny.status", val.Value)
			if err == nil && (d.Status < 400 || d.Status > 599) {
				err = invalid("deny.status must be 400–599, got %d", d.Status)
			}
		case "code":
			d.Code, err = asString("deny.code", val.Value)
		case "message":
			d.Message, err = asString("deny.message", val.Value)
		case "type":
			d.Type, err = asString("deny.type", val.Value)
		default:
			err = invalid("unknown field deny.%s", keyOf(k))
		}
		return err != nil
	})
	return d, err
}

// parseRemediation reads decision.remediation: what a denied caller can change.
func parseRemediation(v ast.Value) (*decision.Remediation, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("remediation must be an object")
	}
	r := &decision.Remediation{}
	var err error
	obj.Until(func(k, val *ast.Term) bool {
		switch keyOf(k) {
		case "models":
			r.Models, err = asStrings("remediation.models", val.Value)
			for _, m := range r.Models {
				if err == nil && m == "" {
					err = invalid("remediation.models: empty model name")
				}
			}
		case "budget":
			r.Budget, err = parseRemediationBudget(val.Value)
		case "max_tokens":
			r.MaxTokens, err = asNonNegInt("remediation.max_tokens", val.Value)
		case "retry_after_s":
			r.RetryAfterS, err = asNonNegInt("remediation.retry_after_s", val.Value)
		case "pii":
			r.PII, err = asStrings("remediation.pii", val.Value)
			for _, t := range r.PII {
				if err == nil && !decision.RedactableTypes[t] {
					err = invalid("remediation.pii: unknown PII type %q", t)
				}
			}
		default:
			err = invalid("unknown field remediation.%s", keyOf(k))
		}
		return err != nil
	})
	return r, err
}

func parseRemediationBudget(v ast.Value) (*decision.RemediationBudget, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("remediation.budget must be an object")
	}
	b := &decision.RemediationBudget{}
	var err error
	obj.Until(func(k, val *ast.Term) bool {
		switch keyOf(k) {
		case "name":
			b.Name, err = asString("remediation.budget.name", val.Value)
		case "remaining_musd":
			var n int
			n, err = asNonNegInt("remediation.budget.remaining_musd", val.Value)
			b.RemainingMUSD = int64(n)
		case "resets_at":
			b.ResetsAt, err = asString("remediation.budget.resets_at", val.Value)
			if err == nil {
				if _, perr := time.Parse(time.RFC3339, b.ResetsAt); perr != nil {
					err = invalid("remediation.budget.resets_at must be an RFC 3339 time, got %q", b.ResetsAt)
				}
			}
		default:
			err = invalid("unknown field remediation.budget.%s", keyOf(k))
		}
		return err != nil
	})
	if err == nil && b.Name == "" {
		err = invalid("remediation.budget needs a name")
	}
	return b, err
}

func parseTargets(field string, v ast.Value) ([]decision.Target, error) {
	ts, err := seqOf(v, field)
	if err != nil {
		return nil, err
	}
	if ts.Len() == 0 {
		return nil, nil
	}
	out := make([]decision.Target, ts.Len())
	for i := range out {
		obj, ok := ts.At(i).Value.(ast.Object)
		if !ok {
			return out[:i], invalid("%s[%d] must be an object", field, i)
		}
		tg := &out[i]
		n := 0
		if t := obj.Get(kProvider); t != nil {
			n++
			if tg.Provider, ok = stringOf(t.Value); !ok {
				return out[:i+1], invalid("%s.provider must be a string, got %s", field, ast.ValueName(t.Value))
			}
		}
		if t := obj.Get(kModel); t != nil {
			n++
			if tg.Model, ok = stringOf(t.Value); !ok {
				return out[:i+1], invalid("%s.model must be a string, got %s", field, ast.ValueName(t.Value))
			}
		}
		if n != obj.Len() {
			return out[:i+1], unknownField(obj, fmt.Sprintf("%s[%d]", field, i), targetKeys)
		}
		if tg.Provider == "" || tg.Model == "" {
			return out[:i+1], invalid("%s[%d] needs provider and model", field, i)
		}
	}
	return out, nil
}

var targetKeys = map[string]bool{"provider": true, "model": true}

func stringOf(v ast.Value) (string, bool) {
	s, ok := v.(ast.String)
	return string(s), ok
}

// seq is the elements of an array or a set (Rego partial rules produce sets), by index.
type seq struct {
	arr *ast.Array
	set []*ast.Term
}

func seqOf(v ast.Value, field string) (seq, error) {
	switch c := v.(type) {
	case *ast.Array:
		return seq{arr: c}, nil
	case ast.Set:
		return seq{set: c.Slice()}, nil
	}
	return seq{}, invalid("%s must be an array", field)
}

func (s seq) Len() int {
	if s.arr != nil {
		return s.arr.Len()
	}
	return len(s.set)
}

func (s seq) At(i int) *ast.Term {
	if s.arr != nil {
		return s.arr.Elem(i)
	}
	return s.set[i]
}

func parseAB(v ast.Value) (*decision.AB, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("ab must be an object")
	}
	ab := &decision.AB{}
	var err error
	obj.Until(func(k, val *ast.Term) bool {
		switch keyOf(k) {
		case "experiment":
			ab.Experiment, err = asString("ab.experiment", val.Value)
		case "arm":
			ab.Arm, err = asString("ab.arm", val.Value)
		default:
			err = invalid("unknown field ab.%s", keyOf(k))
		}
		return err != nil
	})
	if err == nil && (ab.Experiment == "" || ab.Arm == "") {
		err = invalid("ab needs experiment and arm")
	}
	return ab, err
}

func parseLimits(l *decision.Limits, v ast.Value) error {
	obj, ok := v.(ast.Object)
	if !ok {
		return invalid("limits must be an object")
	}
	var err error
	obj.Until(func(k, val *ast.Term) bool {
		switch keyOf(k) {
		case "max_tokens":
			l.MaxTokens, err = asNonNegInt("limits.max_tokens", val.Value)
		case "timeout_ms":
			l.TimeoutMS, err = asNonNegInt("limits.timeout_ms", val.Value)
		case "max_retries":
			l.MaxRetries, err = asNonNegInt("limits.max_retries", val.Value)
		case "midstream":
			l.Midstream, err = asString("limits.midstream", val.Value)
			if err == nil && l.Midstream != decision.MidstreamError && l.Midstream != decision.MidstreamContinue {
				err = invalid("limits.midstream must be %q or %q, got %q", decision.MidstreamError, decision.MidstreamContinue, l.Midstream)
			}
		default:
			err = invalid("unknown field limits.%s", keyOf(k))
		}
		return err != nil
	})
	return err
}

func parseDegrade(d *decision.Degrade, v ast.Value) error {
	obj, ok := v.(ast.Object)
	if !ok {
		return invalid("degrade must be an object")
	}
	var err error
	obj.Until(func(k, val *ast.Term) bool {
		switch keyOf(k) {
		case "stream":
			var b bool
			b, err = asBool("degrade.stream", val.Value)
			d.Stream = &b
		default:
			err = invalid("unknown field degrade.%s", keyOf(k))
		}
		return err != nil
	})
	return err
}

func parseHedge(v ast.Value) (*decision.Hedge, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("hedge must be an object")
	}
	h := &decision.Hedge{Max: decision.DefaultHedgeMax}
	var err error
	obj.Until(func(k, val *ast.Term) bool {
		switch keyOf(k) {
		case "delay_ms":
			h.DelayMS, err = asInt("hedge.delay_ms", val.Value)
			if err == nil && (h.DelayMS < 1 || h.DelayMS > decision.MaxHedgeDelayMS) {
				err = invalid("hedge.delay_ms must be 1–%d, got %d", decision.MaxHedgeDelayMS, h.DelayMS)
			}
		case "max":
			h.Max, err = asInt("hedge.max", val.Value)
			if err == nil && (h.Max < 1 || h.Max > decision.MaxHedgeMax) {
				err = invalid("hedge.max must be 1–%d, got %d", decision.MaxHedgeMax, h.Max)
			}
		default:
			err = invalid("unknown field hedge.%s", keyOf(k))
		}
		return err != nil
	})
	if err == nil && h.DelayMS == 0 {
		err = invalid("hedge needs delay_ms")
	}
	return h, err
}

// parseFault reads decision.fault, a chaos drill. Each kind takes only its own parameters:
// a field another kind uses is refused rather than ignored, so a drill does what it reads.
func parseFault(v ast.Value) (*decision.Fault, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("fault must be an object")
	}
	f := &decision.Fault{Attempt: decision.DefaultFaultAttempt}
	var err error
	seen := map[string]bool{}
	obj.Until(func(k, val *ast.Term) bool {
		key := keyOf(k)
		seen[key] = true
		switch key {
		case "kind":
			f.Kind, err = asString("fault.kind", val.Value)
			if err == nil && !slices.Contains(decision.FaultKinds, f.Kind) {
				err = invalid("fault.kind must be one of %q, got %q", decision.FaultKinds, f.Kind)
			}
		case "status":
			f.Status, err = asInt("fault.status", val.Value)
			if err == nil && (f.Status < 400 || f.Status > 599) {
				err = invalid("fault.status must be 400–599, got %d", f.Status)
			}
		case "delay_ms":
			f.DelayMS, err = asInt("fault.delay_ms", val.Value)
			if err == nil && (f.DelayMS < 1 || f.DelayMS > decision.MaxFaultDelayMS) {
				err = invalid("fault.delay_ms must be 1–%d, got %d", decision.MaxFaultDelayMS, f.DelayMS)
			}
		case "after_chunks":
			f.AfterChunks, err = asNonNegInt("fault.after_chunks", val.Value)
		case "attempt":
			f.Attempt, err = asInt("fault.attempt", val.Value)
			if err == nil && (f.Attempt < 1 || f.Attempt > decision.MaxFaultAttempt) {
				err = invalid("fault.attempt must be 1–%d, got %d", decision.MaxFaultAttempt, f.Attempt)
			}
		default:
			err = invalid("unknown field fault.%s", key)
		}
		return err != nil
	})
	if err != nil {
		return nil, err
	}
	own := map[string]string{"status": decision.FaultError, "delay_ms": decision.FaultLatency, "after_chunks": decision.FaultCutStream}
	switch {
	case f.Kind == "":
		return nil, invalid("fault needs kind")
	case f.Kind == decision.FaultLatency && f.DelayMS == 0:
		return nil, invalid("fault of kind \"latency\" needs delay_ms")
	}
	for _, field := range []string{"status", "delay_ms", "after_chunks"} {
		if seen[field] && own[field] != f.Kind {
			return nil, invalid("fault.%s does not apply to kind %q", field, f.Kind)
		}
	}
	if f.Kind == decision.FaultError && f.Status == 0 {
		f.Status = decision.DefaultFaultStatus
	}
	return f, nil
}

// parseCache reads decision.cache. min_similarity belongs to the semantic mode only: a
// field that does nothing for the mode is refused rather than ignored.
func parseCache(v ast.Value) (*decision.Cache, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("cache must be an object")
	}
	c := &decision.Cache{TTLS: decision.DefaultCacheTTLS, Scope: decision.DefaultCacheScope, MinSimilarityBP: -1}
	var err error
	obj.Until(func(k, val *ast.Term) bool {
		switch keyOf(k) {
		case "mode":
			c.Mode, err = asString("cache.mode", val.Value)
			if err == nil && !slices.Contains(decision.CacheModes, c.Mode) {
				err = invalid("cache.mode must be one of %q, got %q", decision.CacheModes, c.Mode)
			}
		case "ttl_s":
			c.TTLS, err = asInt("cache.ttl_s", val.Value)
			if err == nil && (c.TTLS < 1 || c.TTLS > decision.MaxCacheTTLS) {
				err = invalid("cache.ttl_s must be 1–%d, got %d", decision.MaxCacheTTLS, c.TTLS)
			}
		case "scope":
			c.Scope, err = asString("cache.scope", val.Value)
			if err == nil && !slices.Contains(decision.CacheScopes, c.Scope) {
				err = invalid("cache.scope must be one of %q, got %q", decision.CacheScopes, c.Scope)
			}
		case "min_similarity":
			c.MinSimilarityBP, err = asInt("cache.min_similarity", val.Value)
			if err == nil && (c.MinSimilarityBP < 0 || c.MinSimilarityBP > 10000) {
				err = invalid("cache.min_similarity must be 0–10000 (basis points), got %d", c.MinSimilarityBP)
			}
		case "coalesce":
			c.Coalesce, err = asBool("cache.coalesce", val.Value)
		case "charge_bp":
			c.ChargeBP, err = asInt("cache.charge_bp", val.Value)
			if err == nil && (c.ChargeBP < 0 || c.ChargeBP > 10000) {
				err = invalid("cache.charge_bp must be 0–10000, got %d", c.ChargeBP)
			}
		case "embed":
			c.Embed, err = parseEmbedTarget(val.Value)
		default:
			err = invalid("unknown field cache.%s", keyOf(k))
		}
		return err != nil
	})
	switch {
	case err != nil:
		return nil, err
	case c.Mode == "":
		return nil, invalid("cache needs mode")
	case c.MinSimilarityBP >= 0 && c.Mode != decision.CacheSemantic:
		return nil, invalid("cache.min_similarity applies to mode \"semantic\" only")
	case c.Embed != nil && c.Mode != decision.CacheSemantic:
		return nil, invalid("cache.embed applies to mode \"semantic\" only")
	case c.Embed == nil && c.Mode == decision.CacheSemantic:
		return nil, invalid("cache of mode \"semantic\" needs embed (the embeddings target)")
	case c.MinSimilarityBP < 0:
		c.MinSimilarityBP = decision.DefaultMinSimilarityBP
	}
	return c, nil
}

// parseEmbedTarget reads cache.embed: one target, {provider, model}, as in targets.
func parseEmbedTarget(v ast.Value) (*decision.Target, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("cache.embed must be an object")
	}
	t, n := &decision.Target{}, 0
	for _, f := range []struct {
		k   *ast.Term
		dst *string
	}{{kProvider, &t.Provider}, {kModel, &t.Model}} {
		if v := obj.Get(f.k); v != nil {
			n++
			if *f.dst, ok = stringOf(v.Value); !ok {
				return nil, invalid("cache.embed.%s must be a string, got %s", keyOf(f.k), ast.ValueName(v.Value))
			}
		}
	}
	if n != obj.Len() {
		return nil, unknownField(obj, "cache.embed", targetKeys)
	}
	if t.Provider == "" || t.Model == "" {
		return nil, invalid("cache.embed needs provider and model")
	}
	return t, nil
}

func keyOf(t *ast.Term) string {
	if s, ok := t.Value.(ast.String); ok {
		return string(s)
	}
	return t.String()
}

// each visits the elements of an array or a set (Rego partial rules produce sets).
func each(v ast.Value, fn func(int, *ast.Term) bool, errp *error, field string) {
	switch c := v.(type) {
	case *ast.Array:
		for i := 0; i < c.Len(); i++ {
			if fn(i, c.Elem(i)) {
				return
			}
		}
	case ast.Set:
		i := 0
		c.Until(func(t *ast.Term) bool {
			stop := fn(i, t)
			i++
			return stop
		})
	default:
		*errp = invalid("%s must be an array", field)
	}
}

func asBool(field string, v ast.Value) (bool, error) {
	b, ok := v.(ast.Boolean)
	if !ok {
		return false, invalid("%s must be a boolean, got %s", field, ast.ValueName(v))
	}
	return bool(b), nil
}

func asString(field string, v ast.Value) (string, error) {
	s, ok := v.(ast.String)
	if !ok {
		return "", invalid("%s must be a string, got %s", field, ast.ValueName(v))
	}
	return string(s), nil
}

func asInt(field string, v ast.Value) (int, error) {
	n, ok := v.(ast.Number)
	if !ok {
		return 0, invalid("%s must be a number, got %s", field, ast.ValueName(v))
	}
	i, ok := n.Int()
	if !ok {
		return 0, invalid("%s must be an integer", field)
	}
	return i, nil
}

func asNonNegInt(field string, v ast.Value) (int, error) {
	i, err := asInt(field, v)
	if err == nil && i < 0 {
		err = invalid("%s must not be negative", field)
	}
	return i, err
}

func asStrings(field string, v ast.Value) ([]string, error) {
	ts, err := seqOf(v, field)
	if err != nil {
		return nil, err
	}
	if ts.Len() == 0 {
		return nil, nil
	}
	out := make([]string, ts.Len())
	for i := range out {
		var ok bool
		if out[i], ok = stringOf(ts.At(i).Value); !ok {
			return out[:i+1], invalid("%s[%d] must be a string, got %s", field, i, ast.ValueName(ts.At(i).Value))
		}
	}
	return out, nil
}

func asStringMap(field string, v ast.Value) (map[string]string, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, invalid("%s must be an object", field)
	}
	out := make(map[string]string, obj.Len())
	var err error
	obj.Until(func(k, val *ast.Term) bool {
		var s string
		s, err = asString(field+"."+keyOf(k), val.Value)
		out[keyOf(k)] = s
		return err != nil
	})
	return out, err
}

func parseBudgets(v ast.Value) ([]decision.Budget, error) {
	var out []decision.Budget
	var err error
	each(v, func(i int, t *ast.Term) bool {
		obj, ok := t.Value.(ast.Object)
		if !ok {
			err = invalid("budgets[%d] must be an object", i)
			return true
		}
		b := decision.Budget{Budget: ledger.Budget{Hard: true}, SoftBP: decision.DefaultSoftBP}
		obj.Until(func(k, val *ast.Term) bool {
			f := "budgets." + keyOf(k)
			switch keyOf(k) {
			case "name":
				b.Name, err = asString(f, val.Value)
			case "scope":
				b.Scope, err = asString(f, val.Value)
			case "id":
				b.ID, err = asString(f, val.Value)
			case "period":
				b.Period, err = asString(f, val.Value)
			case "limit_musd":
				var n int
				n, err = asNonNegInt(f, val.Value)
				b.LimitMicroUSD = int64(n)
			case "hard":
				b.Hard, err = asBool(f, val.Value)
			case "soft_bp":
				b.SoftBP, err = asNonNegInt(f, val.Value)
			default:
				err = invalid("unknown field budgets[%d].%s", i, keyOf(k))
			}
			return err != nil
		})
		if err == nil && !b.Valid(false) {
			err = invalid("budgets[%d] needs name, scope, period (day|month) and limit_musd > 0", i)
		}
		out = append(out, b)
		return err != nil
	}, &err, "budgets")
	return out, err
}

func parseRateLimits(v ast.Value) ([]ledger.RateLimit, error) {
	var out []ledger.RateLimit
	var err error
	each(v, func(i int, t *ast.Term) bool {
		obj, ok := t.Value.(ast.Object)
		if !ok {
			err = invalid("rate_limits[%d] must be an object", i)
			return true
		}
		var r ledger.RateLimit
		obj.Until(func(k, val *ast.Term) bool {
			f := "rate_limits." + keyOf(k)
			var n int
			switch keyOf(k) {
			case "scope":
				r.Scope, err = asString(f, val.Value)
			case "id":
				r.ID, err = asString(f, val.Value)
			case "rpm":
				n, err = asNonNegInt(f, val.Value)
				r.RequestsPerMinute = int64(n)
			case "tpm":
				n, err = asNonNegInt(f, val.Value)
				r.TokensPerMinute = int64(n)
			default:
				err = invalid("unknown field rate_limits[%d].%s", i, keyOf(k))
			}
			return err != nil
		})
		if err == nil && !ledger.CallerScope(r.Scope) {
			err = invalid("rate_limits[%d] needs a scope", i)
		}
		out = append(out, r)
		return err != nil
	}, &err, "rate_limits")
	return out, err
}
