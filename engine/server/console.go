package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/signals"
	"github.com/gavel-gw/gavel/engine/telemetry"
)

// The admin API the console reads. Every handler works from snapshots: atomics, the
// decision log's ring under its read lock (which only the log's own goroutine writes),
// the traffic aggregator's mutex (idem) and the ledger's read calls. None holds a lock
// the request path takes while it does I/O.

// SignalSource is the live provider and breaker state (*signals.Tracker is one).
type SignalSource interface {
	Snapshot() []signals.ProviderStats
}

var _ SignalSource = (*signals.Tracker)(nil)

// DefaultTrafficWindow is the traffic summary's window when the request names none.
const DefaultTrafficWindow = 15 * time.Minute

// traffic answers GET /v1/gavel/traffic?window=15m: requests, errors, p50/p95 latency and
// cost, per team and key, and a series per step, over the window.
func (s *Server) traffic(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	if s.o.Traffic == nil {
		return errDecisionLogDisabled // the summary is fed by the decision log
	}
	window := DefaultTrafficWindow
	if v := c.QueryParam("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errBadRequest("invalid_value", "window", "window must be a positive duration such as 15m or 1h, got `"+v+"`.")
		}
		window = d
	}
	return writeJSON(c, http.StatusOK, s.o.Traffic.Summary(window))
}

// providerView is one provider's live signals for the admin API.
type providerView struct {
	Name    string      `json:"name"`
	Healthy bool        `json:"healthy"`
	Stats   statsView   `json:"stats"`
	Models  []modelView `json:"models"`
}

type modelView struct {
	Model string    `json:"model"`
	Stats statsView `json:"stats"`
}

type statsView struct {
	Requests    int    `json:"requests"`
	Errors      int    `json:"errors"`
	ErrorRateBP int    `json:"error_rate_bp"`
	P50MS       int    `json:"p50_ms"`
	P95MS       int    `json:"p95_ms"`
	TTFTP95MS   int    `json:"ttft_p95_ms"`
	InFlight    int    `json:"in_flight"`
	Circuit     string `json:"circuit"`
}

func viewStats(st signals.Stats) statsView {
	return statsView{Requests: st.Requests, Errors: st.Errors, ErrorRateBP: st.ErrorRateBP, P50MS: st.P50MS, P95MS: st.P95MS,
		TTFTP95MS: st.TTFTP95MS, InFlight: st.InFlight, Circuit: string(st.Circuit)}
}

// providers answers GET /v1/gavel/providers: every configured provider's and model's
// signals over the tracker's window and its breaker state, as the policy sees them.
func (s *Server) providers(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	out := []providerView{}
	if s.o.Signals != nil {
		for _, p := range s.o.Signals.Snapshot() {
			v := providerView{Name: p.Name, Healthy: p.Healthy, Stats: viewStats(p.Stats), Models: []modelView{}}
			for m, st := range p.Models {
				v.Models = append(v.Models, modelView{Model: m, Stats: viewStats(st)})
			}
			sort.Slice(v.Models, func(i, j int) bool { return v.Models[i].Model < v.Models[j].Model })
			out = append(out, v)
		}
	}
	return writeJSON(c, http.StatusOK, map[string]any{"object": "list", "data": out})
}

// routeView is one requestable name of the current plan.
type routeView struct {
	Name string `json:"name"`
	// Targets are tried in this order; Reasons say why (route.alias:smart,
	// route.skipped_unavailable…); Unavailable names the chain's targets that cannot be
	// used now and why.
	Targets     []any `json:"targets"`
	Candidates  []any `json:"candidates"`
	Reasons     []any `json:"reasons"`
	Unavailable []any `json:"unavailable"`
	Hedge       any   `json:"hedge,omitempty"`
}

var (
	kRoutes      = ast.StringTerm("routes")
	kExperiments = ast.StringTerm("experiments")
)

// plan answers GET /v1/gavel/plan: the routing plan requests use now (alias → ordered
// targets and why), from the planner's current snapshot.
func (s *Server) plan(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	rev := s.o.Engine.Active()
	if rev == nil || s.o.Planner == nil {
		return newAPIError(http.StatusServiceUnavailable, "no_bundle", "No policy bundle is active yet.")
	}
	sh := s.o.Planner.Current(c.Request().Context(), rev)
	body := map[string]any{"revision": rev.ID, "built": sh.Built.UTC(), "routes": []routeView{}, "experiments": map[string]any{}}
	plan, ok := sh.Plan.(ast.Object)
	if !ok {
		body["inline"] = true // the policy has no plan: every request evaluates routing itself
		return writeJSON(c, http.StatusOK, body)
	}
	if t := plan.Get(kRoutes); t != nil {
		if routes, err := ast.JSON(t.Value); err == nil {
			m, _ := routes.(map[string]any)
			views := make([]routeView, 0, len(m))
			for name, r := range m {
				rm, _ := r.(map[string]any)
				v := routeView{Name: name, Targets: list(rm["targets"]), Candidates: list(rm["candidates"]),
					Reasons: list(rm["reasons"]), Unavailable: list(rm["unavailable"])}
				if h, ok := rm["hedge"].(map[string]any); ok && len(h) > 0 {
					v.Hedge = h
				}
				views = append(views, v)
			}
			sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
			body["routes"] = views
		}
	}
	if t := plan.Get(kExperiments); t != nil {
		if ex, err := ast.JSON(t.Value); err == nil {
			body["experiments"] = ex
		}
	}
	return writeJSON(c, http.StatusOK, body)
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{}
}

// GET /v1/gavel/budgets looks up, per budget, the standing of at most MaxBudgetOwners
// owners (teams, keys…): the ones seen most recently among the newest MaxOwnerScan
// decisions of the ring. Both bounds keep its cost flat however large the ring is.
const (
	MaxBudgetOwners = 50
	MaxOwnerScan    = 20000
)

// budgetView is one budget's standing for one owner in its current period.
type budgetView struct {
	Name string `json:"name"`
	ledger.BudgetState
	SoftBP int `json:"soft_bp"`
}

// budgets answers GET /v1/gavel/budgets: every budget of the active bundle, for each
// owner of its scope seen recently (or the one it names), with spend, reservations and
// what remains in the current period.
func (s *Server) budgets(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	if s.o.Ledger == nil {
		return newAPIError(http.StatusNotFound, "ledger_disabled", "No ledger is configured on this gateway.")
	}
	rev := s.o.Engine.Active()
	if rev == nil {
		return newAPIError(http.StatusServiceUnavailable, "no_bundle", "No policy bundle is active yet.")
	}
	scopes := map[string]bool{}
	for _, b := range rev.Data.Budgets {
		if b.ID == "" && b.Scope != ledger.ScopeGlobal {
			scopes[b.Scope] = true
		}
	}
	owners := s.recentOwners(scopes)
	var lb []ledger.Budget
	var names []string
	var soft []int
	for _, b := range rev.Data.Budgets {
		ids := []string{b.ID}
		if b.ID == "" && b.Scope != ledger.ScopeGlobal {
			ids = owners[b.Scope]
		}
		if b.Scope == ledger.ScopeShadow && b.ID == "*" {
			continue // stands for every experiment without its own; the shadows page has them
		}
		for _, id := range ids {
			x := b.Budget
			x.ID = id
			lb = append(lb, x)
			names = append(names, b.Name)
			soft = append(soft, b.SoftBP)
		}
	}
	out := []budgetView{}
	if len(lb) > 0 {
		states, err := s.o.Ledger.Snapshot(c.Request().Context(), lb)
		if err != nil {
			return err
		}
		for i, st := range states {
			out = append(out, budgetView{Name: names[i], BudgetState: st, SoftBP: soft[i]})
		}
	}
	return writeJSON(c, http.StatusOK, map[string]any{"object": "list", "data": out})
}

// recentOwners lists, for each of scopes, the owners of the most recent decisions (at
// most MaxBudgetOwners each, newest first, among the newest MaxOwnerScan decisions).
func (s *Server) recentOwners(scopes map[string]bool) map[string][]string {
	out := map[string][]string{}
	if s.o.DecisionLog == nil || len(scopes) == 0 {
		return out
	}
	seen := map[string]bool{} // scope + "\x00" + id
	full := 0
	add := func(scope, id string) {
		if id == "" || !scopes[scope] || len(out[scope]) >= MaxBudgetOwners {
			return
		}
		if k := scope + "\x00" + id; !seen[k] {
			seen[k] = true
			out[scope] = append(out[scope], id)
			if len(out[scope]) == MaxBudgetOwners {
				full++
			}
		}
	}
	n := 0
	s.o.DecisionLog.Entries(func(e *decisionlog.Entry) bool {
		add(ledger.ScopeKey, e.KeyID)
		add(ledger.ScopeUser, e.User)
		add(ledger.ScopeTeam, e.Team)
		add(ledger.ScopeProject, e.Project)
		add(ledger.ScopeShadow, e.Experiment)
		n++
		return n < MaxOwnerScan && full < len(scopes)
	})
	return out
}

// policyView answers GET /v1/gavel/policy: the active revision, the recent activations
// and, with a bundle server, its health and last errors.
func (s *Server) policyView(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	body := map[string]any{"history": s.o.Engine.History()}
	if rev := s.o.Engine.Active(); rev != nil {
		body["active"] = policy.Activation{Revision: rev.ID, Source: rev.Source, Activated: rev.Activated.UTC()}
	}
	if s.o.Bundles != nil {
		body["server"] = s.o.Bundles.Health()
		body["status"] = s.o.Bundles.Status()
	}
	return writeJSON(c, http.StatusOK, body)
}

// armView is one experiment arm's traffic among the recent decisions.
type armView struct {
	Experiment string  `json:"experiment"`
	Arm        string  `json:"arm"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	MeanMS     float64 `json:"mean_latency_ms"`
	P95MS      int64   `json:"p95_ms"`
	CostMUSD   int64   `json:"cost_musd"`
	Shadows    int     `json:"shadows"` // shadow copies these requests asked for
}

// experiments answers GET /v1/gavel/experiments: per experiment arm, the recent
// decisions' counts, latency and cost (from the decision log's ring); per shadow target,
// what gavel counted since it started (outcomes, latency, similarity, tokens, cost).
func (s *Server) experiments(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	arms := []armView{}
	if s.o.DecisionLog != nil {
		type acc struct {
			v   armView
			lat []int64
		}
		by := map[[2]string]*acc{}
		s.o.DecisionLog.Entries(func(e *decisionlog.Entry) bool {
			if e.Experiment == "" {
				return true
			}
			k := [2]string{e.Experiment, e.Arm}
			a := by[k]
			if a == nil {
				a = &acc{v: armView{Experiment: e.Experiment, Arm: e.Arm}}
				by[k] = a
			}
			a.v.Requests++
			if e.Status >= 400 {
				a.v.Errors++
			}
			a.v.CostMUSD += e.CostMUSD
			a.v.Shadows += e.Shadows
			a.lat = append(a.lat, e.LatencyMS)
			return true
		})
		for _, a := range by {
			sort.Slice(a.lat, func(i, j int) bool { return a.lat[i] < a.lat[j] })
			var sum int64
			for _, l := range a.lat {
				sum += l
			}
			a.v.MeanMS = float64(sum) / float64(len(a.lat))
			a.v.P95MS = a.lat[(len(a.lat)*95+99)/100-1]
			arms = append(arms, a.v)
		}
		sort.Slice(arms, func(i, j int) bool {
			if arms[i].Experiment != arms[j].Experiment {
				return arms[i].Experiment < arms[j].Experiment
			}
			return arms[i].Arm < arms[j].Arm
		})
	}
	shadows := []telemetry.ShadowStats{}
	if s.o.Metrics != nil {
		sh, err := s.o.Metrics.Shadows()
		if err != nil {
			return err
		}
		shadows = append(shadows, sh...)
	}
	return writeJSON(c, http.StatusOK, map[string]any{"arms": arms, "shadows": shadows})
}

// Policy diff bounds.
const (
	// DefaultDiffEvents is how many of the most recent decisions a diff replays when the
	// request names no limit; MaxDiffEvents bounds what it may name.
	DefaultDiffEvents = 1000
	MaxDiffEvents     = 20000
)

// policyDiff answers POST /v1/gavel/policy/diff (admin): the body is a candidate bundle
// (.tar.gz, as `opa build` or `gavel bundle build` writes it); the most recent decisions
// of the ring are re-decided with it and the impact reported as `gavel policy diff
// --format json` reports it. The candidate is never activated. One diff runs at a time:
// it is CPU work, and the request path must keep its cores.
func (s *Server) policyDiff(c echo.Context) error {
	by, err := s.o.Keys.AuthenticateAdmin(c.Request().Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if s.o.DecisionLog == nil {
		return errDecisionLogDisabled
	}
	n := DefaultDiffEvents
	if v := c.QueryParam("limit"); v != "" {
		x, err := strconv.Atoi(v)
		if err != nil || x < 1 || x > MaxDiffEvents {
			return errBadRequest("invalid_value", "limit", "limit must be an integer from 1 to "+strconv.Itoa(MaxDiffEvents)+", got `"+v+"`.")
		}
		n = x
	}
	select {
	case s.diffing <- struct{}{}:
		defer func() { <-s.diffing }()
	default:
		return newAPIError(http.StatusTooManyRequests, "diff_in_progress", "Another policy diff is running; try again when it is done.")
	}
	lim := s.o.BundleLimits.WithDefaults()
	raw, err := io.ReadAll(io.LimitReader(c.Request().Body, lim.MaxCompressedBytes+1))
	if err != nil {
		return errBadRequest("invalid_request", "", "Reading the bundle failed: "+err.Error())
	}
	if len(raw) == 0 {
		return errBadRequest("missing_required_parameter", "", "The body must be a candidate bundle (.tar.gz).")
	}
	b, err := policy.ReadCandidate(raw, lim)
	if err != nil {
		if errors.Is(err, policy.ErrBundleTooLarge) {
			return newAPIError(http.StatusRequestEntityTooLarge, "bundle_too_large", "The candidate bundle is too large: "+err.Error())
		}
		return errBadRequest("invalid_bundle", "", "The body is not a readable bundle tarball: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), time.Minute)
	defer cancel()
	rev, err := policy.Prepare(ctx, b, "upload")
	if err != nil {
		return errBadRequest("invalid_bundle", "", "The candidate bundle does not compile: "+err.Error())
	}
	events := s.o.DecisionLog.Recent(n)
	im, err := policy.ComputeImpact(ctx, rev, bytes.NewReader(bytes.Join(events, nil)))
	s.audit(c, by, "policy.diff", rev.ID, map[string]any{"events": len(events), "failed": err != nil})
	if err != nil {
		return errBadRequest("invalid_bundle", "", "Replaying the recent decisions with the candidate failed: "+err.Error())
	}
	return writeJSON(c, http.StatusOK, im)
}
