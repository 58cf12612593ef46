package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// settleTimeout bounds the ledger calls made after the client's request is over (commit,
// release, token correction): the client's context may be gone by then.
const settleTimeout = 5 * time.Second

// scopeID is the id a scope takes for a caller; ok is false when the caller has none.
func scopeID(scope string, c *auth.Caller) (string, bool) {
	var id string
	switch scope {
	case ledger.ScopeGlobal:
		return "", true
	case ledger.ScopeKey:
		id = c.Record.KeyID
	case ledger.ScopeUser:
		id = c.Record.User
	case ledger.ScopeTeam:
		id = c.Record.Team
	case ledger.ScopeProject:
		id = c.Record.Project
	}
	return id, id != ""
}

// standing fills input.spend and input.rate for the budgets and rate limits the bundle
// declares, before the policy decides. Nothing is read when the bundle declares none.
func (p *Pipeline) standing(ctx context.Context, rev *policy.Revision, c *auth.Caller) (map[string]policy.SpendState, map[string]policy.RateState, error) {
	if p.o.Ledger == nil || (len(rev.Data.Budgets) == 0 && len(rev.Data.RateLimits) == 0) {
		return nil, nil, nil
	}
	var spend map[string]policy.SpendState
	if len(rev.Data.Budgets) > 0 {
		var bs []ledger.Budget
		var names []string
		for i := range rev.Data.Budgets {
			b := &rev.Data.Budgets[i]
			id, ok := scopeID(b.Scope, c)
			if !ok {
				continue
			}
			bs = append(bs, b.ForCaller(id))
			names = append(names, b.Name)
		}
		if len(bs) > 0 {
			states, err := p.o.Ledger.Snapshot(ctx, bs)
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
				r.ID = id
				ls = append(ls, r)
			}
		}
		if len(ls) > 0 {
			states, err := p.o.Ledger.RateState(ctx, ls)
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
	p         *Pipeline
	limits    []ledger.RateLimit
	estTokens int64
	// extraTokens are tokens the request used besides its answer's (a semantic lookup's
	// embeddings call): counted against token limits however the request ends.
	extraTokens int64
	res         *ledger.Reservation
	settled     bool
}

// enforce applies the decision's budgets and rate limits atomically. Budgets come first:
// a request refused for money must not use up rate quota. The estimated cost at the
// dearest target (any fallback may answer) is reserved against every budget.
func (p *Pipeline) enforce(ctx context.Context, x *Exchange, estTokens, maxOut int) (*hold, error) {
	d := x.decision
	if len(d.RateLimits) == 0 && len(d.Budgets) == 0 {
		return nil, nil
	}
	if p.o.Ledger == nil {
		return nil, &PolicyError{Err: ErrNoLedger}
	}
	hd := &hold{p: p, estTokens: int64(estTokens)}
	if len(d.Budgets) > 0 {
		bs := make([]ledger.Budget, len(d.Budgets))
		for i := range d.Budgets {
			bs[i] = d.Budgets[i].Budget
		}
		amount, dearest := int64(0), tokens.Price{}
		for _, t := range d.Targets {
			pr := p.price(x.rev.Data, t.String())
			if c := tokens.EstimateCost(pr, estTokens, maxOut); c >= amount {
				amount, dearest = c, pr
			}
		}
		r, err := p.o.Ledger.Reserve(ctx, bs, amount, 0)
		if err != nil {
			var ex *ledger.ExceededError
			if errors.As(err, &ex) {
				e := exceeded(d.Budgets, ex)
				if start, perr := ledger.PeriodStart(e.Period, x.start); perr == nil {
					e.ResetsAt = ledger.PeriodEnd(e.Period, start)
				}
				e.MaxTokens = fittingMaxTokens(dearest, estTokens, maxOut, e.Remaining())
				return nil, e
			}
			return nil, ledgerError(err)
		}
		hd.res = &r
	}
	if len(d.RateLimits) > 0 {
		hd.limits = d.RateLimits
		rd, err := p.o.Ledger.Allow(ctx, hd.limits, hd.estTokens)
		if err != nil {
			hd.release(context.Background())
			return nil, ledgerError(err)
		}
		x.rateDec = &rd
		if !rd.Allowed {
			hd.release(context.Background())
			return nil, &RateLimited{Scope: rd.Denied.Scope, ID: rd.Denied.ID, By: rd.DeniedBy, RetryAfter: rd.RetryAfter, Unsatisfiable: rd.Unsatisfiable}
		}
	}
	return hd, nil
}

// exceeded names the decision's budget the ledger refused.
func exceeded(bs []decision.Budget, ex *ledger.ExceededError) *BudgetExceeded {
	e := &BudgetExceeded{Name: ex.Budget.Scope, Scope: ex.Budget.Scope, ID: ex.Budget.ID, Period: ex.Budget.Period,
		Limit: ex.Limit, Spent: ex.Spent, Reserved: ex.Reserved, Amount: ex.Amount}
	for i := range bs {
		if b := &bs[i]; b.Scope == ex.Budget.Scope && b.ID == ex.Budget.ID && b.Period == ex.Budget.Period {
			e.Name = b.Name
		}
	}
	return e
}

// fittingMaxTokens is the largest max_tokens below the request's own (or the default
// reserved without one) whose estimated cost at price fits in remaining micro-USD: what a
// caller refused by a budget could still ask for. 0 when not even one token fits.
func fittingMaxTokens(price tokens.Price, estInput, maxOut int, remaining int64) int {
	hi := maxOut
	if hi <= 0 {
		hi = tokens.DefaultMaxOutputTokens
	}
	if tokens.EstimateCost(price, estInput, 1) > remaining {
		return 0
	}
	lo := 1 // fits; find the largest that does (the estimate grows with max_tokens)
	for lo < hi-1 {
		mid := lo + (hi-lo)/2
		if tokens.EstimateCost(price, estInput, mid) <= remaining {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// ledgerError keeps ledger.ErrStoreUnavailable matchable (the client gets 503 and may
// retry) and marks anything else as the ledger's.
func ledgerError(err error) error {
	if errors.Is(err, ledger.ErrStoreUnavailable) {
		return err
	}
	return fmt.Errorf("ledger: %w", err)
}

// settle reconciles the reservation with what the call cost and corrects the token count
// of the rate limits. Without usage (a failed call) the reservation is released and the
// estimated tokens are given back. Only the first call counts.
func (hd *hold) settle(u *adapters.Usage, cost int64) {
	if hd == nil || hd.settled {
		return
	}
	hd.settled = true
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	store := hd.p.o.Ledger
	if u == nil {
		hd.release(ctx)
		if len(hd.limits) > 0 && hd.extraTokens != hd.estTokens {
			store.AddTokens(ctx, hd.limits, hd.extraTokens-hd.estTokens)
		}
		return
	}
	if len(hd.limits) > 0 {
		if delta := int64(u.PromptTokens+u.CompletionTokens) + hd.extraTokens - hd.estTokens; delta != 0 {
			store.AddTokens(ctx, hd.limits, delta)
		}
	}
	if hd.res != nil {
		if err := store.Commit(ctx, *hd.res, cost); err != nil {
			hd.p.log.Error("ledger commit failed", "err", err)
		}
		hd.p.publishBudgets(ctx, hd.res.Budgets)
	}
}

func (hd *hold) release(ctx context.Context) {
	if hd == nil || hd.res == nil {
		return
	}
	if err := hd.p.o.Ledger.Release(ctx, *hd.res); err != nil {
		hd.p.log.Error("ledger release failed", "err", err)
	}
}

// publishBudgets refreshes the spend gauges of the budgets a request touched.
func (p *Pipeline) publishBudgets(ctx context.Context, bs []ledger.Budget) {
	states, err := p.o.Ledger.Snapshot(ctx, bs)
	if err != nil {
		return
	}
	for _, st := range states {
		p.o.Metrics.Budget(st.Budget.Scope, st.Budget.ID, st.Budget.Period, st.Spent, st.Remaining)
	}
}

// budgetWarning says how much is left of budgets past their soft threshold, from the
// standing the policy saw.
func budgetWarning(d *decision.Decision, spend map[string]policy.SpendState) string {
	var parts []string
	for i := range d.Budgets {
		b := &d.Budgets[i]
		st, ok := spend[b.Name]
		if !ok || b.SoftBP >= decision.DefaultSoftBP || st.LimitMUSD <= 0 {
			continue
		}
		used := st.SpentMUSD + st.ReservedMUSD
		if used*10000 >= st.LimitMUSD*int64(b.SoftBP) {
			parts = append(parts, b.Name+"; used="+strconv.FormatInt(used*100/st.LimitMUSD, 10)+"%; remaining_usd="+USD(max(0, st.LimitMUSD-used)))
		}
	}
	return strings.Join(parts, ", ")
}

// USD renders micro-USD as dollars ("$0.0045"), for messages.
func USD(musd int64) string {
	return "$" + strconv.FormatFloat(float64(musd)/1e6, 'f', -1, 64)
}
