package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/gavel-gw/gavel/engine/decision"
)

// Query is the per-request query.
const Query = "data.gavel.decision"

// PlanQuery is evaluated when provider signals change or a bundle activates; its result is
// every request's input.plan. A bundle without a gavel.plan package simply has no plan.
const PlanQuery = "data.gavel.plan"

// ErrNoBundle means no bundle has been activated yet.
var ErrNoBundle = errors.New("no policy bundle is active")

// ErrUndefined means the bundle does not define data.gavel.decision for this input.
var ErrUndefined = errors.New("data.gavel.decision is undefined for this input")

// Engine holds the active bundle revision. It is safe for concurrent use; Activate swaps
// revisions atomically, and a request keeps the revision it started with.
type Engine struct {
	active   atomic.Pointer[Revision]
	onChange []func(*Revision)
	faults   bool

	mu      sync.Mutex
	history []Activation // the most recent MaxHistory activations, oldest first
}

// MaxHistory bounds the activation history an Engine keeps (History).
const MaxHistory = 50

// Activation is one bundle revision made active.
type Activation struct {
	Revision  string    `json:"revision"`
	Source    string    `json:"source"`
	Activated time.Time `json:"activated"`
}

// History returns the most recent activations (at most MaxHistory), newest first.
func (e *Engine) History() []Activation {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Activation, len(e.history))
	for i, a := range e.history {
		out[len(out)-1-i] = a
	}
	return out
}

// ErrFaultsDisabled marks a decision (or a bundle whose decisions) carry a chaos-drill
// fault while the operator has not enabled faults in gavel.yaml (faults.enabled).
var ErrFaultsDisabled = errors.New("the decision injects a fault but faults are disabled (set faults.enabled: true in gavel.yaml to run chaos drills)")

// EnableFaults says whether decisions may carry a fault (gavel.yaml faults.enabled). Off,
// the default, Activate refuses a bundle that injects faults and a revision it activated
// refuses such decisions at request time. Call before the first Activate.
func (e *Engine) EnableFaults(on bool) { e.faults = on }

// New returns an engine with no active bundle.
func New() *Engine { return &Engine{} }

// OnActivate registers fn to run after each activation (metrics, key reload). Register
// before the first Activate.
func (e *Engine) OnActivate(fn func(*Revision)) { e.onChange = append(e.onChange, fn) }

// Revision is one compiled bundle: its prepared query and the typed view of its data.
type Revision struct {
	ID        string
	Source    string
	Activated time.Time
	Data      *Data
	// FaultExample names the first representative input (CheckInputs) whose decision
	// carried a fault; empty when none did.
	FaultExample string
	// refuseFaults is set by an Engine whose faults are disabled: decisions carrying a
	// fault are then invalid. A revision that is only prepared (gavel policy test) shows
	// them as the bundle says.
	refuseFaults bool
	plan         rego.PreparedEvalQuery

	// The decision query, evaluated by OPA's evaluator (topdown) directly: rego's Eval
	// around it costs a store transaction, a goroutine that watches the context, a
	// metrics object and a result set per request (see Evaluate).
	compiler *ast.Compiler
	store    storage.Store
	txn      storage.Transaction // one read transaction for the revision's life
	data     *dataReads          // the store's data as one value: see dataReads
	body     ast.Body            // the compiled query: result = data.gavel.decision
	result   ast.Var
}

// Active returns the active revision, or nil before the first activation.
func (e *Engine) Active() *Revision { return e.active.Load() }

// Activate compiles b, prepares the decision query and makes it the active revision. On
// error the previous revision stays active.
func (e *Engine) Activate(ctx context.Context, b *bundle.Bundle, source string) (*Revision, error) {
	rev, err := Prepare(ctx, b, source)
	if err != nil {
		return nil, err
	}
	if !e.faults {
		// Two ways a bundle shows it drills: the default library's data.gavel.faults,
		// and any decision on the representative inputs. A rule that faults only a
		// sample may still escape both; its decisions are refused per request (Admit).
		switch {
		case len(rev.Data.Faults) > 0:
			return nil, fmt.Errorf("bundle %s: %w: data.gavel.faults lists %d drill(s)", source, ErrFaultsDisabled, len(rev.Data.Faults))
		case rev.FaultExample != "":
			return nil, fmt.Errorf("bundle %s: %w: the decision for a %s carries fault", source, ErrFaultsDisabled, rev.FaultExample)
		}
		rev.refuseFaults = true
	}
	e.active.Store(rev)
	e.mu.Lock()
	if len(e.history) == MaxHistory {
		e.history = append(e.history[:0], e.history[1:]...)
	}
	e.history = append(e.history, Activation{Revision: rev.ID, Source: rev.Source, Activated: rev.Activated.UTC()})
	e.mu.Unlock()
	for _, fn := range e.onChange {
		fn(rev)
	}
	return rev, nil
}

// noMetrics skips OPA's per-evaluation timers: gavel measures decisions itself, and the
// timers cost allocations on every request.
var noMetrics = metrics.NoOp()

// asTerm hands results back as OPA values: ParseDecision reads the AST directly, which
// skips converting every decision to Go maps first.
func asTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }

// Prepare compiles a bundle into a Revision without activating it.
func Prepare(ctx context.Context, b *bundle.Bundle, source string) (*Revision, error) {
	if b.Manifest.Roots == nil {
		// OPA dereferences the roots of every activated bundle; a hand-built bundle
		// without a manifest claims the whole data tree, as opa build does.
		b.Manifest.Init()
	}
	data, err := parseData(b.Data)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", source, err)
	}
	// The bundle's data is kept as OPA values (StoreReadAST), so that a rule reading
	// data.gavel.* does not convert Go maps on every evaluation. The compiler and store are
	// gavel's own so that Evaluate can run the compiled query without rego's wrapper.
	compiler := ast.NewCompiler().WithUseTypeCheckAnnotations(true)
	store := inmem.NewWithOpts(inmem.OptReturnASTValuesOnRead(true))
	wtxn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", source, err)
	}
	_, err = rego.New(
		rego.Query(Query),
		rego.ParsedBundle("gavel", b),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.Transaction(wtxn),
	).PrepareForEval(ctx)
	if err != nil {
		store.Abort(ctx, wtxn)
		return nil, fmt.Errorf("bundle %s: compile: %w", source, err)
	}
	if err := store.Commit(ctx, wtxn); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", source, err)
	}
	// Nothing writes to the store after this: one read transaction serves every
	// evaluation of the revision (an inmem read transaction only reads the store's data).
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", source, err)
	}
	planQ, err := rego.New(
		rego.Query(PlanQuery),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.Transaction(txn),
		rego.GenerateJSON(asTerm),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: compile plan: %w", source, err)
	}
	id := b.Manifest.Revision
	if id == "" {
		id = contentRevision(b)
	}
	reads, err := newDataReads(ctx, store, txn)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", source, err)
	}
	rev := &Revision{ID: id, Source: source, Activated: time.Now(), Data: data, plan: planQ,
		compiler: compiler, store: &readStore{Store: store, data: reads}, txn: txn, data: reads}
	if rev.body, rev.result, err = rev.compileQuery(Query); err != nil {
		return nil, fmt.Errorf("bundle %s: compile: %w", source, err)
	}
	// A bundle that cannot decide the requests gavel will send it must not become active:
	// it would answer 500 to each of them while /readyz says ready.
	if err := rev.Check(ctx); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", source, err)
	}
	return rev, nil
}

func contentRevision(b *bundle.Bundle) string {
	h := sha256.New()
	for _, m := range b.Modules {
		h.Write([]byte(m.Path))
		h.Write(m.Raw)
	}
	if raw, err := json.Marshal(b.Data); err == nil {
		h.Write(raw)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Decide evaluates data.gavel.decision on input and parses the result.
func (r *Revision) Decide(ctx context.Context, input ast.Value) (*decision.Decision, error) {
	v, err := r.Evaluate(ctx, input)
	if err != nil {
		return nil, err
	}
	d, err := ParseDecision(v)
	if err == nil {
		err = r.Admit(d)
	}
	return d, err
}

// Admit refuses a parsed decision this revision must not act on: one carrying a fault
// while the engine that activated it has faults disabled. Deny when in doubt: the request
// gets 500 policy_error rather than a drill nobody enabled.
func (r *Revision) Admit(d *decision.Decision) error {
	if d.Fault != nil && r.refuseFaults {
		return fmt.Errorf("%w: %w", ErrInvalidDecision, ErrFaultsDisabled)
	}
	return nil
}

// Evaluate returns the raw value of data.gavel.decision, for tools that show what the
// policy said before gavel interprets it.
func (r *Revision) Evaluate(ctx context.Context, input ast.Value) (ast.Value, error) {
	v, err := r.eval(ctx, r.body, r.result, input)
	if err != nil {
		return nil, fmt.Errorf("policy evaluation: %w", err)
	}
	if v == nil {
		return nil, ErrUndefined
	}
	return v, nil
}

// compileQuery compiles `result = ref` against the revision's policies, for eval.
func (r *Revision) compileQuery(ref string) (ast.Body, ast.Var, error) {
	t, err := ast.ParseTerm(ref)
	if err != nil {
		return nil, "", err
	}
	result := ast.Var("gavel_result")
	body, err := r.compiler.QueryCompiler().Compile(ast.NewBody(ast.Equality.Expr(ast.NewTerm(result), t)))
	return body, result, err
}

// eval runs a compiled query on input and returns result's value, nil when undefined.
func (r *Revision) eval(ctx context.Context, body ast.Body, result ast.Var, input ast.Value) (ast.Value, error) {
	vc := getRuleCache()
	defer vc.release()
	q := topdown.NewQuery(body).
		WithCompiler(r.compiler).
		WithStore(r.store).
		WithTransaction(r.txn).
		WithMetrics(noMetrics).
		WithIndexing(true).
		WithEarlyExit(true).
		WithVirtualCache(vc).
		WithBaseCache(r.data).
		WithInput(ast.NewTerm(input))
	// A cancelled request stops its evaluation, as rego's Eval does, without a goroutine
	// per evaluation watching the context.
	if ctx.Done() != nil {
		c := topdown.NewCancel()
		stop := context.AfterFunc(ctx, c.Cancel)
		defer stop()
		q = q.WithCancel(c)
	}
	var v ast.Value
	err := q.Iter(ctx, func(qr topdown.QueryResult) error {
		if t := qr[result]; t != nil {
			v = t.Value
		}
		return nil
	})
	return v, err
}

// Plan evaluates data.gavel.plan over a provider snapshot. It returns nil when the bundle
// defines no plan, in which case requests evaluate without input.plan. opts are added to
// the evaluation's (the planner passes one that makes a long evaluation yield the CPU).
func (r *Revision) Plan(ctx context.Context, providers ast.Value, opts ...rego.EvalOption) (ast.Value, error) {
	if providers == nil {
		providers = emptyObject
	}
	in := ast.NewObject(ast.Item(kProviders, ast.NewTerm(providers)))
	rs, err := r.plan.Eval(ctx, append(opts, rego.EvalParsedInput(in))...)
	if err != nil {
		return nil, fmt.Errorf("plan evaluation: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	v, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return nil, fmt.Errorf("plan evaluation: unexpected result type %T", rs[0].Expressions[0].Value)
	}
	if obj, ok := v.(ast.Object); ok && obj.Len() == 0 {
		return nil, nil
	}
	return v, nil
}
