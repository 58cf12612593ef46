package policy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/gavel-gw/gavel/engine/signals"
)

// Shared is the part of every request's input that does not depend on the request: the
// provider snapshot and the plan evaluated over it, for one bundle revision.
type Shared struct {
	Rev       *Revision
	Providers ast.Value
	Plan      ast.Value // nil: the policy evaluates its plan inline
	Built     time.Time
	// version is the signals' Version the snapshot was taken at; settled says every
	// breaker was closed then (an open one turns half-open with time alone).
	version  uint64
	activity uint64 // the source's Activity then, when it has one
	settled  bool
}

// activitySource is an optional SignalSource capability (signals.Tracker has it): a number
// that moves with traffic and events, but not as samples age out of the window.
type activitySource interface{ Activity() uint64 }

var _ activitySource = (*signals.Tracker)(nil)

// AgeingRefresh: after traffic stops, the window's figures change at every bucket boundary
// for a minute as samples age out, and each change re-planned (12 evaluations, ~0.6 % of a
// core over that minute). Nothing is routed meanwhile and the next attempt re-plans within
// DefaultRefresh, so changes that are ageing alone re-plan at most this often.
const AgeingRefresh = 15 * time.Second

// SignalSource is the live provider snapshot (engine/signals.Tracker is one).
type SignalSource interface {
	Snapshot() []signals.ProviderStats
	Changed() <-chan struct{}
	// Version changes whenever Snapshot may have changed (signals.Tracker.Version).
	Version() uint64
}

// DefaultRefresh bounds how stale latency and error-rate figures in a plan may get; abrupt
// changes (a breaker opening) refresh at once through SignalSource.Changed. A tick rebuilds
// only when the signals' Version moved or a breaker is not closed: an idle gateway does
// not re-evaluate an unchanged plan. Under traffic the version moves on every request, so
// each tick costs one evaluation (10–50 ms of CPU with the default catalog): at 250 ms
// that was 4–7 % of a core; the figures it refreshes are percentiles and rates over a
// one-minute window in 5 s buckets, which a second's delay does not change materially.
const DefaultRefresh = time.Second

// Planner keeps Shared current: it re-renders the snapshot and re-evaluates the plan when
// signals change (at once for abrupt changes, else at the next tick) and when a bundle
// activates — off the request path.
type Planner struct {
	engine  *Engine
	src     SignalSource
	refresh time.Duration
	log     *slog.Logger
	cur     atomic.Pointer[Shared]
	kick    chan struct{}
	builds  atomic.Uint64
	yields  atomic.Uint64
	catalog *Catalog // nil: no provider declares models
}

// NewPlanner returns a planner; call Run to keep it current.
func NewPlanner(e *Engine, src SignalSource, refresh time.Duration, log *slog.Logger) *Planner {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	p := &Planner{engine: e, src: src, refresh: refresh, log: log, kick: make(chan struct{}, 1)}
	e.OnActivate(func(*Revision) { p.Kick() })
	return p
}

// UseCatalog makes every plan see the providers' models (input.providers.<name>.catalog)
// and rebuild when they change. Call it before Run.
func (p *Planner) UseCatalog(c *Catalog) {
	p.catalog = c
	c.OnChange(p.Kick)
}

// Kick asks for a rebuild soon.
func (p *Planner) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Current returns the shared input for rev. When rev has no plan yet (a bundle just
// activated), it builds one now: a rare, one-off cost on one request.
func (p *Planner) Current(ctx context.Context, rev *Revision) *Shared {
	if s := p.cur.Load(); s != nil && s.Rev == rev {
		return s
	}
	return p.Build(ctx, rev)
}

// Build renders the snapshot and evaluates the plan for rev, and publishes the result. It
// runs at full speed: its caller (a request that found no plan for its revision) waits.
func (p *Planner) Build(ctx context.Context, rev *Revision) *Shared {
	return p.build(ctx, rev, false)
}

// build is Build; background evaluations (Run's) yield the CPU to requests every
// planQuantum (see yielder).
func (p *Planner) build(ctx context.Context, rev *Revision, background bool) *Shared {
	p.builds.Add(1)
	// Version before Snapshot: a change in between makes the next tick rebuild.
	s := &Shared{Rev: rev, Built: time.Now(), version: p.src.Version(), settled: true}
	if a, ok := p.src.(activitySource); ok {
		s.activity = a.Activity()
	}
	snap := p.src.Snapshot()
	for _, ps := range snap {
		for _, st := range ps.Models {
			if st.Circuit != signals.Closed {
				s.settled = false
			}
		}
	}
	s.Providers = ProvidersValue(snap)
	if p.catalog != nil {
		p.catalog.Attach(s.Providers)
	}
	var plan ast.Value
	var err error
	if background {
		y := newYielder(ctx)
		plan, err = rev.Plan(ctx, s.Providers, rego.EvalExternalCancel(y))
		p.yields.Add(uint64(y.yields))
	} else {
		plan, err = rev.Plan(ctx, s.Providers)
	}
	if err != nil {
		if background && ctx.Err() != nil {
			return p.cur.Load() // shutting down: keep what was published
		}
		// The per-request query evaluates the plan inline; log, but keep serving.
		p.log.Error("routing plan failed; evaluating it per request", "revision", rev.ID, "err", err)
	}
	s.Plan = plan
	for {
		old := p.cur.Load()
		if old != nil && old.Built.After(s.Built) && old.Rev == rev {
			return old
		}
		if p.cur.CompareAndSwap(old, s) {
			return s
		}
	}
}

// moved says whether what the plan reads has changed since s was built enough to re-plan
// on a tick: any event or attempt, or samples ageing out once AgeingRefresh has passed.
func (p *Planner) moved(s *Shared) bool {
	if s.version == p.src.Version() {
		return false
	}
	if a, ok := p.src.(activitySource); ok && a.Activity() == s.activity {
		return time.Since(s.Built) >= AgeingRefresh
	}
	return true
}

// Builds counts plan evaluations since the planner was made (tests, idle-cost checks).
func (p *Planner) Builds() uint64 { return p.builds.Load() }

// Yields counts the times background plan evaluations gave the CPU back (tests).
func (p *Planner) Yields() uint64 { return p.yields.Load() }

// Run refreshes until ctx ends.
func (p *Planner) Run(ctx context.Context) {
	t := time.NewTicker(p.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s := p.cur.Load(); s != nil && s.settled && s.Rev == p.engine.Active() && !p.moved(s) {
				continue
			}
		case <-p.kick:
		case <-p.src.Changed():
		}
		if rev := p.engine.Active(); rev != nil {
			p.build(ctx, rev, true)
		}
	}
}
