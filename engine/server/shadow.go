package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// Shadow budget scopes (Options.ShadowBudgetScope).
const (
	shadowScopeShadow = "shadow"
	shadowScopeCaller = "caller"
	shadowScopeNone   = "none"
)

// shadowUntagged is the ledger id of shadows no experiment claims: ledger ids must not be
// empty.
const shadowUntagged = "untagged"

// shadow queues the decision's shadows with what their results need: the slot for the
// primary's answer, catalog prices and the budget they are charged to. The ledger is
// touched only on the shadow workers, never here.
func (s *Server) shadow(ctx context.Context, x *exchange, d *policy.Decision, estIn, maxOut int) {
	x.primary = executor.NewPrimaryAnswer()
	catalog := x.rev.Data.Catalog
	sr := &executor.ShadowRequest{Targets: d.Shadow, Experiment: experimentOf(d), DecisionID: x.id, Primary: x.primary,
		Price: func(t policy.Target) tokens.Price { return priceOf(catalog, t) }}
	if d.AB != nil {
		sr.Arm = d.AB.Arm
	}
	sr.Link = s.shadowLink(ctx)
	if bs := s.shadowBudgets(x.rev, d, sr.Experiment); len(bs) > 0 {
		sr.Budget = &shadowBudget{s: s, budgets: bs, catalog: catalog, estIn: estIn, maxOut: maxOut}
	}
	s.o.Executor.ShadowWith(x.up, sr)
}

// shadowBudgets are the budgets a shadow of this request is reserved against.
func (s *Server) shadowBudgets(rev *policy.Revision, d *policy.Decision, experiment string) []ledger.Budget {
	if s.o.Ledger == nil {
		return nil
	}
	switch s.o.ShadowBudgetScope {
	case shadowScopeNone:
		return nil
	case shadowScopeCaller:
		bs := make([]ledger.Budget, 0, len(d.Budgets))
		for _, b := range d.Budgets {
			bs = append(bs, ledger.Budget{Scope: b.Scope, ID: b.ID, Period: b.Period, LimitMicroUSD: b.LimitMUSD, Hard: b.Hard})
		}
		return bs
	}
	id := experiment
	if id == "" {
		id = shadowUntagged
	}
	specs := rev.Data.ShadowBudgets(experiment)
	if len(specs) == 0 {
		// No cap in the bundle: the spend is still recorded (a soft budget only tracks).
		return []ledger.Budget{{Scope: ledger.ScopeShadow, ID: id, Period: ledger.PeriodMonth}}
	}
	bs := make([]ledger.Budget, 0, len(specs))
	for _, b := range specs {
		bs = append(bs, ledger.Budget{Scope: ledger.ScopeShadow, ID: id, Period: b.Period, LimitMicroUSD: b.LimitMUSD, Hard: b.Hard == nil || *b.Hard})
	}
	return bs
}

// shadowBudget reserves a shadow's estimated cost like a request's, and commits what it
// cost.
type shadowBudget struct {
	s             *Server
	budgets       []ledger.Budget
	catalog       map[string]policy.CatalogEntry
	estIn, maxOut int
}

var _ executor.ShadowBudget = (*shadowBudget)(nil)

func (b *shadowBudget) Reserve(ctx context.Context, t policy.Target) (func(int64), error) {
	amount := tokens.EstimateCost(priceOf(b.catalog, t), b.estIn, b.maxOut)
	r, err := b.s.o.Ledger.Reserve(ctx, b.budgets, amount, DefaultReservationTTL)
	if errors.Is(err, ledger.ErrBudgetExceeded) {
		return nil, fmt.Errorf("%w: %w", executor.ErrShadowBudget, err)
	}
	if err != nil {
		return nil, fmt.Errorf("shadow budget: %w", err)
	}
	return func(cost int64) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.s.o.Ledger.Commit(ctx, r, cost); err != nil {
			b.s.log.Error("ledger commit of a shadow failed", "err", err)
		}
		b.s.publishBudgets(ctx, r.Budgets)
	}, nil
}

// answerShadows hands the primary's answer to the request's shadows for their similarity:
// the non-streamed completion, or the text a stream relayed; nothing when it failed.
func answerShadows(x *exchange) {
	switch {
	case x.status != 200 || x.streamFail:
		x.primary.Fail()
	case x.answer != nil:
		text := ""
		if len(x.answer.Choices) > 0 {
			text = x.answer.Choices[0].Message.Content.String()
		}
		x.primary.Set(text)
	case x.req != nil && x.req.Stream:
		x.primary.Set(x.streamed.String())
	default:
		x.primary.Fail()
	}
}
