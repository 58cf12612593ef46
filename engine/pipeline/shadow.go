package pipeline

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/similarity"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// Whose budget shadow requests are charged to (Options.ShadowCharge, the config's
// shadow.budget_scope).
const (
	// ShadowChargeShadow charges the "shadow" scope, by experiment: shadow traffic is the
	// operator's cost, capped by the bundle's shadow budgets.
	ShadowChargeShadow = "shadow"
	// ShadowChargeCaller charges the request's own budgets.
	ShadowChargeCaller = "caller"
	// ShadowChargeNone charges nothing.
	ShadowChargeNone = "none"
)

// ShadowCharges are the valid values of Options.ShadowCharge.
var ShadowCharges = []string{ShadowChargeShadow, ShadowChargeCaller, ShadowChargeNone}

// shadowUntagged is the ledger id of shadows no experiment claims: ledger ids must not be
// empty.
const shadowUntagged = "untagged"

// shadow queues the decision's shadows with what their results need: the slot for the
// primary's answer, catalog prices and the budget they are charged to. The ledger is
// touched only on the shadow workers, never here.
func (p *Pipeline) shadow(ctx context.Context, x *Exchange, estIn, maxOut int) {
	d := x.decision
	x.primary = executor.NewPrimaryAnswer()
	data := x.rev.Data
	sr := &executor.ShadowRequest{Targets: d.Shadow, Experiment: experimentOf(d), DecisionID: x.ID, Primary: x.primary,
		Price: func(t decision.Target) tokens.Price { return p.price(data, t.String()) }}
	if d.AB != nil {
		sr.Arm = d.AB.Arm
	}
	if p.o.Tracer != nil {
		sr.Link = trace.SpanContextFromContext(ctx)
	}
	if bs := p.shadowBudgets(data, d, sr.Experiment); len(bs) > 0 {
		sr.Budget = &shadowBudget{p: p, budgets: bs, data: data, estIn: estIn, maxOut: maxOut}
	}
	p.o.Executor.ShadowWith(x.up, sr)
}

// keepShadowText appends a piece of the primary's answer to what the shadows'
// similarity reads, up to its bound.
func (x *Exchange) keepShadowText(c string) {
	if n := similarity.MaxBytes - len(x.shadowText); n > 0 {
		x.shadowText = append(x.shadowText, c[:min(len(c), n)]...)
	}
}

// shadowBudgets are the budgets a shadow of this request is reserved against.
func (p *Pipeline) shadowBudgets(data *policy.Data, d *decision.Decision, experiment string) []ledger.Budget {
	if p.o.Ledger == nil {
		return nil
	}
	switch p.o.ShadowCharge {
	case ShadowChargeNone:
		return nil
	case ShadowChargeCaller:
		bs := make([]ledger.Budget, len(d.Budgets))
		for i := range d.Budgets {
			bs[i] = d.Budgets[i].Budget
		}
		return bs
	}
	id := experiment
	if id == "" {
		id = shadowUntagged
	}
	declared := data.ShadowBudgets(experiment)
	if len(declared) == 0 {
		// No cap in the bundle: the spend is still recorded (a soft budget only tracks).
		return []ledger.Budget{{Scope: ledger.ScopeShadow, ID: id, Period: ledger.PeriodMonth}}
	}
	bs := make([]ledger.Budget, len(declared))
	for i := range declared {
		bs[i] = declared[i].ForCaller(id)
	}
	return bs
}

// shadowBudget reserves a shadow's estimated cost like a request's, and commits what it
// cost.
type shadowBudget struct {
	p             *Pipeline
	budgets       []ledger.Budget
	data          *policy.Data
	estIn, maxOut int
}

var _ executor.ShadowBudget = (*shadowBudget)(nil)

func (b *shadowBudget) Reserve(ctx context.Context, t decision.Target) (func(int64), error) {
	amount := tokens.EstimateCost(b.p.price(b.data, t.String()), b.estIn, b.maxOut)
	r, err := b.p.o.Ledger.Reserve(ctx, b.budgets, amount, 0)
	if errors.Is(err, ledger.ErrBudgetExceeded) {
		return nil, fmt.Errorf("%w: %w", executor.ErrShadowBudget, err)
	}
	if err != nil {
		return nil, fmt.Errorf("shadow budget: %w", err)
	}
	return func(cost int64) {
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		defer cancel()
		if err := b.p.o.Ledger.Commit(ctx, r, cost); err != nil {
			b.p.log.Error("ledger commit of a shadow failed", "err", err)
		}
		b.p.publishBudgets(ctx, r.Budgets)
	}, nil
}

// answerShadows hands the primary's answer to the request's shadows for their similarity:
// the non-streamed completion, or the start of the text a stream or a passed-through
// answer carried (as much as the similarity reads); nothing when it failed.
func answerShadows(x *Exchange, status int) {
	switch {
	case status != 200 || x.streamFail:
		x.primary.Fail()
	case x.answer != nil:
		text := ""
		if len(x.answer.Choices) > 0 {
			text = x.answer.Choices[0].Message.Content.String()
		}
		x.primary.Set(text)
	case x.stream || x.rawAnswer:
		x.primary.Set(string(x.shadowText))
	default:
		x.primary.Fail()
	}
}
