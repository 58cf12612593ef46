package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// DefaultReservationTTL bounds how long an abandoned request's reservation counts.
const DefaultReservationTTL = 15 * time.Minute

// errNoLedger denies a decision that names budgets or rate limits when gavel has no store
// to enforce them with: they must hold, or the request must not go.
var errNoLedger = errors.New("the decision names budgets or rate limits but no ledger is configured")

// scopeID is the id a scope takes for a caller; ok is false when the caller has none.
func scopeID(scope string, c *auth.Caller) (string, bool) {
	var id string
	switch scope {
	case "global":
		return "", true
	case "key":
		id = c.Record.KeyID
	case "user":
		id = c.Record.User
	case "team":
		id = c.Record.Team
	case "project":
		id = c.Record.Project
	}
	return id, id != ""
}

// standing fills input.spend and input.rate for the budgets and rate limits the bundle
// defines, before the policy decides. Nothing is read when the bundle defines none.
func (s *Server) standing(ctx context.Context, rev *policy.Revision, c *auth.Caller) (map[string]policy.SpendState, map[string]policy.RateState, error) {
	if s.o.Ledger == nil || (len(rev.Data.Budgets) == 0 && len(rev.Data.RateLimits) == 0) {
		return nil, nil, nil
	}
	var spend map[string]policy.SpendState
	if len(rev.Data.Budgets) > 0 {
		var bs []ledger.Budget
		var names []string
		for _, b := range rev.Data.Budgets {
			id, ok := scopeID(b.Scope, c)
			if !ok {
				continue
			}
			bs = append(bs, ledger.Budget{Scope: b.Scope, ID: id, Period: b.Period, LimitMicroUSD: b.LimitMUSD, Hard: b.Hard == nil || *b.Hard})
			names = append(names, b.Name)
		}
		if len(bs) > 0 {
			states, err := s.o.Ledger.Snapshot(ctx, bs)
			if err != nil {
				return nil, nil, err
			}
			spend = make(map[string]policy.SpendState, len(states))
			for i, st := range states {
				if i < len(names) {
					spend[names[i]] = policy.SpendState{SpentMUSD: st.Spent, ReservedMUSD: st.Reserved, LimitMUSD: st.Limit}
				}
			}
		}
	}
	var rate map[string]policy.RateState
	if len(rev.Data.RateLimits) > 0 {
		var ls []ledger.RateLimit
		for _, r := range rev.Data.RateLimits {
			if id, ok := scopeID(r.Scope, c); ok {
				ls = append(ls, ledger.RateLimit{Scope: r.Scope, ID: id, RequestsPerMinute: r.RPM, TokensPerMinute: r.TPM})
			}
		}
		if len(ls) > 0 {
			states, err := s.o.Ledger.RateState(ctx, ls)
			if err != nil {
				return nil, nil, err
			}
			rate = make(map[string]policy.RateState, len(states))
			for _, st := range states {
				rate[st.Limit.Scope] = policy.RateState{Requests: st.Requests, Tokens: st.Tokens}
			}
		}
	}
	return spend, rate, nil
}

// hold is what a request holds against the ledger between the decision and its end.
type hold struct {
	s           *Server
	limits      []ledger.RateLimit
	estTokens   int64
	res         *ledger.Reservation
	settled     bool
	catalog     map[string]policy.CatalogEntry
	budgetNames []string
}

// enforce applies the decision's rate limits and budgets atomically: a request over a rate
// limit gets 429 with OpenAI-style x-ratelimit headers; the estimated cost is reserved
// against every hard budget or the request gets 429 insufficient_quota naming the budget.
func (s *Server) enforce(ctx context.Context, h http.Header, x *exchange, estTokens, maxOut int) (*hold, error) {
	d := x.decision
	if len(d.RateLimits) == 0 && len(d.Budgets) == 0 {
		return nil, nil
	}
	if s.o.Ledger == nil {
		return nil, &errPolicy{err: errNoLedger}
	}
	hd := &hold{s: s, estTokens: int64(estTokens), catalog: x.rev.Data.Catalog}
	// Budgets first: a request refused for money must not use up rate quota.
	if len(d.Budgets) > 0 {
		var bs []ledger.Budget
		for _, b := range d.Budgets {
			bs = append(bs, ledger.Budget{Scope: b.Scope, ID: b.ID, Period: b.Period, LimitMicroUSD: b.LimitMUSD, Hard: b.Hard})
			hd.budgetNames = append(hd.budgetNames, b.Name)
		}
		amount := int64(0)
		for _, t := range d.Targets { // the dearest target bounds what any fallback may cost
			amount = max(amount, tokens.EstimateCost(priceOf(hd.catalog, t), estTokens, maxOut))
		}
		r, err := s.o.Ledger.Reserve(ctx, bs, amount, DefaultReservationTTL)
		if err != nil {
			var ex *ledger.ExceededError
			if errors.As(err, &ex) {
				name := ex.Budget.Scope
				for i, b := range bs {
					if b.Scope == ex.Budget.Scope && b.ID == ex.Budget.ID && b.Period == ex.Budget.Period {
						name = hd.budgetNames[i]
					}
				}
				e := newAPIError(http.StatusTooManyRequests, "insufficient_quota",
					fmt.Sprintf("Budget `%s` (%s %s, %s) has %s left of %s; this request may cost up to %s.",
						name, ex.Budget.Scope, orDefault(ex.Budget.ID, "(global)"), ex.Budget.Period,
						usd(max(0, ex.Limit-ex.Spent-ex.Reserved)), usd(ex.Limit), usd(ex.Amount)))
				e.Type = "insufficient_quota"
				return nil, e
			}
			return nil, ledgerError(err)
		}
		hd.res = &r
	}
	if len(d.RateLimits) > 0 {
		for _, r := range d.RateLimits {
			hd.limits = append(hd.limits, ledger.RateLimit{Scope: r.Scope, ID: r.ID, RequestsPerMinute: r.RPM, TokensPerMinute: r.TPM})
		}
		rd, err := s.o.Ledger.Allow(ctx, hd.limits, hd.estTokens)
		if err != nil {
			hd.release(context.Background())
			return nil, ledgerError(err)
		}
		rd.SetHeaders(h)
		if !rd.Allowed {
			hd.release(context.Background())
			if rd.Unsatisfiable {
				return nil, newAPIError(http.StatusTooManyRequests, "rate_limit_exceeded", "This request needs more tokens than the per-minute limit of "+rd.Denied.Scope+" allows.")
			}
			msg := fmt.Sprintf("Rate limit reached for %s %s: %s per minute.", rd.Denied.Scope, orDefault(rd.Denied.ID, "(global)"), rd.DeniedBy)
			e := newAPIError(http.StatusTooManyRequests, "rate_limit_exceeded", msg)
			e.RetryAfter = max(1, int((rd.RetryAfter+time.Second-1)/time.Second))
			return nil, e
		}
	}
	return hd, nil
}

func ledgerError(err error) error {
	if errors.Is(err, ledger.ErrStoreUnavailable) {
		e := newAPIError(http.StatusServiceUnavailable, "ledger_unavailable", "The budget and rate-limit store is unavailable; the request was not sent.")
		e.RetryAfter = 1
		return e
	}
	return fmt.Errorf("ledger: %w", err)
}

func priceOf(catalog map[string]policy.CatalogEntry, t policy.Target) tokens.Price {
	e, ok := catalog[t.Provider+"/"+t.Model]
	if !ok {
		return tokens.Price{}
	}
	return tokens.Price{InputMicroUSDPerMTok: e.Price.InputMicroUSDPerMTok, OutputMicroUSDPerMTok: e.Price.OutputMicroUSDPerMTok}
}

// settle reconciles the reservation with what the call cost and corrects the token count
// of the rate limits. Without usage (a failed call) the reservation is released.
func (hd *hold) settle(u *adapters.Usage, cost int64) {
	if hd == nil || hd.settled {
		return
	}
	hd.settled = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if u == nil {
		// The call failed: give back the reservation and the estimated tokens.
		hd.release(ctx)
		if len(hd.limits) > 0 && hd.estTokens > 0 {
			hd.s.o.Ledger.AddTokens(ctx, hd.limits, -hd.estTokens)
		}
		return
	}
	if len(hd.limits) > 0 {
		if delta := int64(u.PromptTokens+u.CompletionTokens) - hd.estTokens; delta != 0 {
			hd.s.o.Ledger.AddTokens(ctx, hd.limits, delta)
		}
	}
	if hd.res != nil {
		if err := hd.s.o.Ledger.Commit(ctx, *hd.res, cost); err != nil {
			hd.s.log.Error("ledger commit failed", "err", err)
		}
		hd.s.publishBudgets(ctx, hd.res.Budgets)
	}
}

func (hd *hold) release(ctx context.Context) {
	if hd == nil || hd.res == nil {
		return
	}
	if err := hd.s.o.Ledger.Release(ctx, *hd.res); err != nil {
		hd.s.log.Error("ledger release failed", "err", err)
	}
}

// publishBudgets refreshes the spend gauges of the budgets a request touched.
func (s *Server) publishBudgets(ctx context.Context, bs []ledger.Budget) {
	states, err := s.o.Ledger.Snapshot(ctx, bs)
	if err != nil {
		return
	}
	for _, st := range states {
		s.o.Metrics.Budget(st.Budget.Scope, st.Budget.ID, st.Budget.Period, st.Spent, st.Remaining)
	}
}

// budgetWarning says, in a response header, how much is left of budgets past their soft
// threshold, from the standing the policy saw.
func budgetWarning(d *policy.Decision, spend map[string]policy.SpendState) string {
	var parts []string
	for _, b := range d.Budgets {
		st, ok := spend[b.Name]
		if !ok || b.SoftBP >= 10000 || st.LimitMUSD <= 0 {
			continue
		}
		used := st.SpentMUSD + st.ReservedMUSD
		if used*10000 >= st.LimitMUSD*int64(b.SoftBP) {
			parts = append(parts, b.Name+"; used="+strconv.FormatInt(used*100/st.LimitMUSD, 10)+"%; remaining_usd="+usd(max(0, st.LimitMUSD-used)))
		}
	}
	return strings.Join(parts, ", ")
}

func usd(musd int64) string {
	return "$" + strconv.FormatFloat(float64(musd)/1e6, 'f', -1, 64)
}
