package executor

import (
	"context"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"
	fspolicy "github.com/failsafe-go/failsafe-go/policy"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

// hedged runs the decision's first targets as one hedged group: the primary at once, then
// after each hedge delay without an answer the next target as well, each through its own
// pipeline (its breaker, retries, timeout, signals and metrics). The first success wins;
// failsafe-go cancels the others' contexts, which aborts their upstream calls. A failure
// the next target can fix does not end the group, so a slow-then-failing primary still
// leaves the hedge running. It returns how many targets were started, so the walk goes on
// after them when the whole group failed; their errors are added to failed.
func (e *Executor) hedged(ctx context.Context, d *decision.Decision, call attempt, failed *FailedError) (*outcome, decision.Target, int, error) {
	group := d.Targets[:min(len(d.Targets), 1+d.Hedge.Max)]
	hp := hedgepolicy.NewBuilderWithDelay[*outcome](time.Duration(d.Hedge.DelayMS) * time.Millisecond).
		WithMaxHedges(len(group) - 1).
		CancelIf(func(_ *outcome, err error) bool { return err == nil || !classify(err).Failover() }).
		Build()

	type result struct {
		idx int
		out *outcome
		err error
	}
	var (
		mu       sync.Mutex
		started  int // targets claimed by attempts, in order
		results  []result
		finished bool
		winner   *outcome
	)
	out, err := failsafe.With[*outcome](hp).WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[*outcome]) (*outcome, error) {
		// Each attempt claims the next target. exec.Hedges() names the same index when
		// attempts start one delay apart, but a counter cannot hand one target to two
		// attempts however the goroutines are scheduled.
		mu.Lock()
		i := min(started, len(group)-1)
		started++
		mu.Unlock()
		t := group[i]
		p, err := e.pipeline(t)
		var o *outcome
		if err == nil {
			o, err = p.run(exec.Context(), e, d.Limits.MaxRetries, call)
		}
		if err == nil && o.streaming() {
			if ei, ok := exec.(fspolicy.ExecutionInternal[*outcome]); ok {
				// The hedge policy cancels the winner's context when it returns; the stream
				// is read after that, so the cancel waits until the stream is closed.
				outer, inner := ei.DeferCancel(), o.release
				o.release = func() { inner(); outer() }
			}
		}
		mu.Lock()
		if finished { // lost a race with the winner: nobody will read this stream
			mu.Unlock()
			closeOutcome(o, winner)
			return o, err
		}
		results = append(results, result{idx: i, out: o, err: err})
		mu.Unlock()
		return o, err
	})
	mu.Lock()
	finished, winner = true, out
	done := results
	n := min(started, len(group))
	mu.Unlock()

	won := -1
	for _, r := range done {
		if r.out != nil && r.out == out && err == nil {
			won = r.idx
		}
		closeOutcome(r.out, out)
	}
	if n > 1 {
		for i := 0; i < n; i++ {
			outcome := "lost"
			if i == won {
				outcome = "won"
			}
			e.metrics.Hedge(group[i].Provider, group[i].Model, outcome)
		}
	}
	if err == nil && won >= 0 {
		return out, group[won], n, nil
	}
	if err == nil {
		err = errNoResult
	}
	for _, r := range done {
		if r.err != nil {
			failed.Tried = append(failed.Tried, &TargetError{Target: group[r.idx], Err: r.err})
		}
	}
	return nil, decision.Target{}, n, err
}

// closeOutcome closes an attempt's stream unless it is the one being returned.
func closeOutcome(o, keep *outcome) {
	if o != nil && o != keep && o.streaming() {
		o.closeStream()
	}
}

var errNoResult = &adapters.Error{Kind: adapters.KindUnknown, Message: "hedged attempts produced no result"}
