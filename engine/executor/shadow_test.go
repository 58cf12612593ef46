package executor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/tokens"
)

type budgetFunc func(context.Context, decision.Target) (func(int64), error)

func (f budgetFunc) Reserve(ctx context.Context, t decision.Target) (func(int64), error) {
	return f(ctx, t)
}

func shadowExec(t *testing.T, cfg ShadowConfig, provs ...*fake) (*Executor, chan ShadowResult) {
	t.Helper()
	ex, _ := newExec(fast(), provs...)
	got := make(chan ShadowResult, 16)
	ex.shadow = newShadows(ex, cfg, func(r ShadowResult) { got <- r })
	t.Cleanup(ex.Close)
	return ex, got
}

func next(t *testing.T, ch chan ShadowResult) ShadowResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(3 * time.Second):
		t.Fatal("no shadow result")
	}
	return ShadowResult{}
}

func TestShadowResults(t *testing.T) {
	price := func(decision.Target) tokens.Price {
		return tokens.Price{InputMicroUSDPerMTok: 1_000_000, OutputMicroUSDPerMTok: 2_000_000}
	}
	tests := []struct {
		name    string
		steps   []step
		primary func(*PrimaryAnswer) // called before the shadow is queued; nil: never
		after   func(*PrimaryAnswer) // called once the shadow has run
		wait    time.Duration
		budget  ShadowBudget
		check   func(*testing.T, ShadowResult)
	}{
		{name: "primary first", primary: func(p *PrimaryAnswer) { p.Set("s") }, check: func(t *testing.T, r ShadowResult) {
			if !r.HasSimilarity || r.Similarity != 1 || r.Outcome != "ok" || r.OutputBytes != 1 || r.DecisionID != "d1" || r.Arm != "b" {
				t.Errorf("result = %+v", r)
			}
		}},
		{name: "shadow first", after: func(p *PrimaryAnswer) { p.Set("something else entirely") }, check: func(t *testing.T, r ShadowResult) {
			if !r.HasSimilarity || r.Similarity != 0 {
				t.Errorf("result = %+v", r)
			}
		}},
		{name: "primary failed", primary: func(p *PrimaryAnswer) { p.Fail() }, check: func(t *testing.T, r ShadowResult) {
			if r.HasSimilarity || r.Outcome != "ok" {
				t.Errorf("result = %+v", r)
			}
		}},
		{name: "primary never answers", wait: 20 * time.Millisecond, check: func(t *testing.T, r ShadowResult) {
			if r.HasSimilarity || r.Outcome != "ok" {
				t.Errorf("result = %+v", r)
			}
		}},
		{name: "shadow fails", steps: []step{{err: status(500)}}, primary: func(p *PrimaryAnswer) { p.Set("s") }, check: func(t *testing.T, r ShadowResult) {
			if r.HasSimilarity || r.Outcome != "server" || r.Err == nil || r.CostMicroUSD != 0 {
				t.Errorf("result = %+v", r)
			}
		}},
		{name: "over budget is skipped", budget: budgetFunc(func(context.Context, decision.Target) (func(int64), error) {
			return nil, fmt.Errorf("scope shadow: %w", ErrShadowBudget)
		}), check: func(t *testing.T, r ShadowResult) {
			if r.Outcome != "budget" || r.Latency != 0 {
				t.Errorf("result = %+v", r)
			}
		}},
		{name: "ledger down is skipped", budget: budgetFunc(func(context.Context, decision.Target) (func(int64), error) {
			return nil, fmt.Errorf("redis gone")
		}), check: func(t *testing.T, r ShadowResult) {
			if r.Outcome != "ledger_error" {
				t.Errorf("result = %+v", r)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &fake{name: "s", steps: tc.steps}
			ex, got := shadowExec(t, ShadowConfig{SimilarityWait: max(tc.wait, time.Minute)}, s)
			if tc.wait > 0 {
				ex.shadow.cfg.SimilarityWait = tc.wait
			}
			p := NewPrimaryAnswer()
			if tc.primary != nil {
				tc.primary(p)
			}
			ran := make(chan struct{})
			sr := &ShadowRequest{Targets: []decision.Target{{Provider: "s", Model: "m"}}, Experiment: "e", Arm: "b", DecisionID: "d1",
				Primary: p, Price: price, Budget: tc.budget}
			if tc.after != nil {
				// Fill the slot only once the shadow has finished, to exercise that order.
				go func() {
					for s.calls.Load() == 0 {
						time.Sleep(time.Millisecond)
					}
					time.Sleep(20 * time.Millisecond)
					tc.after(p)
					close(ran)
				}()
			} else {
				close(ran)
			}
			if q, d := ex.ShadowWith(&adapters.ChatRequest{Stream: true}, sr); q != 1 || d != 0 {
				t.Fatalf("queued %d dropped %d", q, d)
			}
			r := next(t, got)
			<-ran
			tc.check(t, r)
			if tc.budget != nil && s.calls.Load() != 0 {
				t.Error("a skipped shadow reached the upstream")
			}
		})
	}
}

func TestShadowCostSettlesBudget(t *testing.T) {
	s := &fake{name: "s"}
	ex, got := shadowExec(t, ShadowConfig{}, s)
	settled := make(chan int64, 1)
	b := budgetFunc(func(context.Context, decision.Target) (func(int64), error) {
		return func(c int64) { settled <- c }, nil
	})
	// The fake reports no usage: the cost is zero and the reservation is settled at zero.
	ex.ShadowWith(&adapters.ChatRequest{}, &ShadowRequest{Targets: []decision.Target{{Provider: "s", Model: "m"}}, Budget: b})
	r := next(t, got)
	if c := <-settled; c != r.CostMicroUSD {
		t.Errorf("settled %d, result cost %d", c, r.CostMicroUSD)
	}
}

func TestShadowQueueFullDrops(t *testing.T) {
	s := &fake{name: "s", steps: []step{{delay: time.Second}, {delay: time.Second}, {delay: time.Second}}}
	ex, _ := shadowExec(t, ShadowConfig{Workers: 1, Queue: 1}, s)
	sr := &ShadowRequest{Targets: []decision.Target{{Provider: "s", Model: "m"}}}
	queued, dropped := 0, 0
	for i := 0; i < 4; i++ {
		q, d := ex.ShadowWith(&adapters.ChatRequest{}, sr)
		queued, dropped = queued+q, dropped+d
		time.Sleep(10 * time.Millisecond) // let the worker take the first one
	}
	if queued != 2 || dropped != 2 {
		t.Errorf("queued %d dropped %d, want 2 and 2", queued, dropped)
	}
}
