package canary

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/policy/remote"
)

// Defaults for what gavel.yaml leaves unset.
const (
	// DefaultQueue bounds the sampled requests waiting for the candidate: beyond it
	// samples are dropped and counted, never waited for.
	DefaultQueue = 256
	// DefaultWorkers evaluate the candidate. One keeps the canary's CPU to one core's
	// share at most, whatever the traffic: a sample ratio too high for it shows as drops.
	DefaultWorkers = 1
	// DefaultEvalTimeout bounds one evaluation of the candidate (plan and decision), so a
	// pathological candidate cannot hold a worker.
	DefaultEvalTimeout = 5 * time.Second
)

// KindError is the disagreement kind of a candidate that could not decide: its evaluation
// failed or its decision does not parse (a decision gavel would refuse to carry out).
const KindError = "error"

// Kinds are the disagreement kinds, a bounded set (metric label values): every decision
// field but reasons (policy.DecisionFields), and KindError.
func Kinds() []string { return append(policy.DecisionFields(), KindError) }

// Config sets up a canary. Zero values take the defaults above.
type Config struct {
	// Sample is the share of live requests the candidate decides, 0 to 1.
	Sample float64
	// Queue and Workers bound the work off the request path.
	Queue, Workers int
	// Source names where the candidate comes from (a path, or a URL as remote.ShownURL
	// shows it), for the status.
	Source string
	// EvalTimeout bounds one evaluation.
	EvalTimeout time.Duration
}

// Metrics receives the canary's counts; *telemetry.Metrics is one.
type Metrics interface {
	CanaryEvaluated(kinds []string)
	CanaryDropped()
}

// Log records disagreements; *decisionlog.Logger is one.
type Log interface {
	LogCanary(decisionlog.Canary) bool
}

// Canary evaluates a candidate bundle beside the active one on a sample of live requests,
// off the request path, and never executes its decisions. It satisfies remote.Engine, so
// the bundle poller keeps a candidate from a bundle server current as it does the active
// bundle. Safe for concurrent use; a nil *Canary offers nothing.
type Canary struct {
	cfg       Config
	all       bool   // Sample is 1: no draw
	threshold uint64 // a request is sampled when rand.Uint64() < threshold
	metrics   Metrics
	dlog      Log
	log       *slog.Logger

	jobs chan job
	stop chan struct{}
	wg   sync.WaitGroup

	cur    atomic.Pointer[state] // nil until a candidate is loaded
	health func() remote.Health  // the candidate's bundle server, when it has one

	mu        sync.Mutex
	lastErr   string // the last load, download or activation failure; cleared by a success
	lastErrAt time.Time
}

// state is one candidate revision and what the canary counted for it: the status speaks
// of the candidate now loaded, not of the ones before it.
type state struct {
	rev *policy.Revision

	evaluated, agreed, dropped atomic.Int64

	mu          sync.Mutex
	kinds       map[string]int64
	lastEvalErr string
	// plans caches the candidate's plan by provider snapshot: every request shares the
	// planner's snapshot until signals change, so the plan is evaluated once per change.
	planKey ast.Value
	plan    ast.Value
}

// job is a sampled request: the values the request path built anyway, shared, not copied.
type job struct {
	id     string
	at     time.Time
	active *policy.Revision
	input  ast.Value
	result ast.Value
}

var _ remote.Engine = (*Canary)(nil)

// New returns a canary without a candidate; Start its workers, then Load or Activate one.
// metrics, dlog and log may be nil.
func New(cfg Config, metrics Metrics, dlog Log, log *slog.Logger) *Canary {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.EvalTimeout <= 0 {
		cfg.EvalTimeout = DefaultEvalTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = noMetrics{}
	}
	c := &Canary{cfg: cfg, metrics: metrics, dlog: dlog, log: log, jobs: make(chan job, cfg.Queue), stop: make(chan struct{})}
	switch s := cfg.Sample; {
	case s >= 1:
		c.all = true
	case s > 0:
		c.threshold = uint64(s * math.MaxUint64)
	}
	return c
}

// Watch makes the status report the failures of the bundle server the candidate comes
// from (downloads and signatures, which never reach Activate).
func (c *Canary) Watch(health func() remote.Health) { c.health = health }

// Start runs the workers until ctx ends or Close.
func (c *Canary) Start(ctx context.Context) {
	for range c.cfg.Workers {
		c.wg.Add(1)
		go c.work(ctx)
	}
}

// Close stops the workers, leaving what is queued; call it once the request path has
// stopped. Offer after Close is harmless: the queue fills and samples are dropped.
func (c *Canary) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.wg.Wait()
}

// Offer is the request path's one call: it draws whether this request is sampled and, if
// so, queues its policy input and the active bundle's result for the candidate, without
// blocking. A full queue drops the sample and counts it. Offer allocates nothing.
func (c *Canary) Offer(id string, at time.Time, active *policy.Revision, input, result ast.Value) {
	if c == nil {
		return
	}
	s := c.cur.Load()
	if s == nil || (!c.all && rand.Uint64() >= c.threshold) {
		return
	}
	select {
	case c.jobs <- job{id: id, at: at, active: active, input: input, result: result}:
	default:
		s.dropped.Add(1)
		c.metrics.CanaryDropped()
	}
}

func (c *Canary) work(ctx context.Context) {
	defer c.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		case j := <-c.jobs:
			c.evaluate(ctx, j)
		}
	}
}

// evaluate decides one sampled request with the candidate and compares the decision with
// the active bundle's, field by field, with the comparison replays use.
func (c *Canary) evaluate(ctx context.Context, j job) {
	s := c.cur.Load()
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.EvalTimeout)
	defer cancel()
	cand, err := s.decide(ctx, j.input)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // shutting down: nothing was learnt
	}
	var kinds []string
	if err != nil {
		kinds = []string{KindError}
		s.mu.Lock()
		s.lastEvalErr = err.Error()
		s.mu.Unlock()
	} else {
		kinds = policy.ChangedFields(j.result, cand)
	}
	s.evaluated.Add(1)
	c.metrics.CanaryEvaluated(kinds)
	if len(kinds) == 0 {
		s.agreed.Add(1)
		return
	}
	s.mu.Lock()
	for _, k := range kinds {
		s.kinds[k]++
	}
	s.mu.Unlock()
	if c.dlog != nil {
		ev := decisionlog.Canary{DecisionID: j.id, Time: j.at, ActiveRevision: j.active.ID, CandidateRevision: s.rev.ID,
			Active: j.result, Candidate: cand, Kinds: kinds}
		if err != nil {
			ev.Error = err.Error()
		}
		c.dlog.LogCanary(ev)
	}
}

// decide evaluates the candidate on the request's input, with the candidate's own plan
// over the request's provider snapshot in place of the active bundle's, and checks that
// gavel could carry the decision out.
func (s *state) decide(ctx context.Context, input ast.Value) (ast.Value, error) {
	in, ok := input.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("canary: the policy input is a %T, not an object", input)
	}
	var providers ast.Value
	if t := in.Get(ast.StringTerm("providers")); t != nil {
		providers = t.Value
	}
	plan, err := s.planFor(ctx, providers)
	if err != nil {
		return nil, err
	}
	v, err := s.rev.Evaluate(ctx, policy.WithPlan(in, plan))
	if err != nil {
		return nil, err
	}
	if _, err := policy.ParseDecision(v); err != nil {
		return v, err
	}
	return v, nil
}

func (s *state) planFor(ctx context.Context, providers ast.Value) (ast.Value, error) {
	s.mu.Lock()
	if s.planKey != nil && s.planKey == providers {
		p := s.plan
		s.mu.Unlock()
		return p, nil
	}
	s.mu.Unlock()
	plan, err := s.rev.Plan(ctx, providers)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.planKey, s.plan = providers, plan
	s.mu.Unlock()
	return plan, nil
}

// Activate compiles and prepares b as the candidate (never as the serving bundle). On
// error the previous candidate, if any, stays; the failure is logged and shown in the
// status. The bundle poller calls it for a candidate from a bundle server.
func (c *Canary) Activate(ctx context.Context, b *bundle.Bundle, source string) (*policy.Revision, error) {
	rev, err := policy.Prepare(ctx, b, source)
	if err != nil {
		c.fail(fmt.Errorf("canary candidate: %w", err))
		return nil, err
	}
	c.cur.Store(&state{rev: rev, kinds: map[string]int64{}})
	c.mu.Lock()
	c.lastErr, c.lastErrAt = "", time.Time{}
	c.mu.Unlock()
	c.log.Info("canary candidate loaded: deciding sampled requests beside the active bundle, never executed",
		"canary_revision", rev.ID, "source", source, "sample", c.cfg.Sample)
	return rev, nil
}

// Active is the candidate revision, nil before one loaded (remote.Engine).
func (c *Canary) Active() *policy.Revision {
	if s := c.cur.Load(); s != nil {
		return s.rev
	}
	return nil
}

// Load reads a candidate from a local bundle directory or tarball and activates it. A
// failure is logged and reported in the status, and returned; serving is unaffected.
func (c *Canary) Load(ctx context.Context, path string, lim policy.Limits) error {
	b, err := policy.LoadPathLimited(path, lim)
	if err != nil {
		err = fmt.Errorf("canary candidate %s: %w", path, err)
		c.fail(err)
		return err
	}
	_, err = c.Activate(ctx, b, path)
	return err
}

func (c *Canary) fail(err error) {
	c.mu.Lock()
	c.lastErr, c.lastErrAt = err.Error(), time.Now().UTC()
	c.mu.Unlock()
	active := ""
	if rev := c.Active(); rev != nil {
		active = rev.ID
	}
	c.log.Error("canary candidate not loaded; serving is unaffected", "error", err, "canary_revision", active)
}

// Status is the canary as GET /v1/gavel/status shows it.
type Status struct {
	Source string `json:"source"`
	// Revision is the candidate's; empty while none is loaded (see LastError).
	Revision    string     `json:"revision,omitempty"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	Sample      float64    `json:"sample"`
	// Evaluated, Agreed and Disagreed count the current candidate's evaluations.
	Evaluated int64 `json:"evaluated"`
	Agreed    int64 `json:"agreed"`
	Disagreed int64 `json:"disagreed"`
	// AgreementRate is Agreed / Evaluated; null before the first evaluation.
	AgreementRate *float64 `json:"agreement_rate"`
	// Disagreements counts by kind (a decision field, or error); an evaluation counts
	// once per field that differs.
	Disagreements map[string]int64 `json:"disagreements"`
	// Dropped counts samples the full queue turned away.
	Dropped int64 `json:"dropped"`
	// LastError is the last failure to download, verify, load or activate a candidate;
	// cleared when one activates.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// LastEvaluationError is why the candidate last failed to decide a request.
	LastEvaluationError string `json:"last_evaluation_error,omitempty"`
}

// Status reports the canary.
func (c *Canary) Status() Status {
	st := Status{Source: c.cfg.Source, Sample: c.cfg.Sample, Disagreements: map[string]int64{}}
	c.mu.Lock()
	st.LastError = c.lastErr
	if !c.lastErrAt.IsZero() {
		t := c.lastErrAt
		st.LastErrorAt = &t
	}
	c.mu.Unlock()
	if c.health != nil {
		if h := c.health(); h.LastError != "" {
			st.LastError = h.LastError
		}
	}
	s := c.cur.Load()
	if s == nil {
		return st
	}
	t := s.rev.Activated.UTC()
	st.Revision, st.ActivatedAt = s.rev.ID, &t
	// Agreed before evaluated: a worker counts evaluated first, so agreed never exceeds it.
	st.Agreed = s.agreed.Load()
	st.Evaluated = s.evaluated.Load()
	st.Disagreed = st.Evaluated - st.Agreed
	st.Dropped = s.dropped.Load()
	if st.Evaluated > 0 {
		r := float64(st.Agreed) / float64(st.Evaluated)
		st.AgreementRate = &r
	}
	s.mu.Lock()
	for k, n := range s.kinds {
		st.Disagreements[k] = n
	}
	st.LastEvaluationError = s.lastEvalErr
	s.mu.Unlock()
	return st
}

type noMetrics struct{}

func (noMetrics) CanaryEvaluated([]string) {}
func (noMetrics) CanaryDropped()           {}
