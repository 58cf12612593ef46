package policy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/topdown"
)

// Background plan evaluations give the CPU back to requests every planQuantum of work
// while requests are being served.
//
// Evaluating the plan takes milliseconds to tens of milliseconds (the whole catalog is
// ranked), and on a gateway with one CPU (GOMAXPROCS=1, the usual container) Go does not
// interrupt a running goroutine for a request whose socket became readable: the scheduler
// preempts after 10 ms and only polls the network when its run queues are empty. So a
// request that arrived while the planner evaluated waited for it, which is what made the
// 99th percentile latency at one connection ~10 × the floor's. A goroutine that calls
// runtime.Gosched goes to the global run queue, which the scheduler reads before it polls
// the network, so yielding must sleep: parked on a timer, the planner leaves the P to
// findRunnable, whose non-blocking network poll runs the waiting request first.
const (
	// planQuantum is the most work an evaluation does between two yields while requests
	// are being served: the longest a request can wait behind a background evaluation.
	planQuantum = 50 * time.Microsecond
	// planQuantumIdle is the most work between two yields while nothing else wants the CPU.
	// A yield then costs the runtime's network poll, which rounds any sleep under 1 ms up
	// to 1 ms: yielding every 50 µs would stretch an evaluation 20 times in wall time (a
	// breaker's opening reaching the plan 400 ms late instead of 20). The quantum doubles
	// after each yield nobody used, up to this, and drops back to planQuantum after one
	// somebody did.
	planQuantumIdle = 500 * time.Microsecond
	// planYieldSleep is how long a yield parks the evaluation. It needs only to outlast
	// the scheduler's first look at timers (a few µs).
	planYieldSleep = 20 * time.Microsecond
	// unusedYield: a yield that took at least this long while the process used under a
	// quarter of it in CPU found nothing else to run (the runtime slept in its network
	// poll for the whole millisecond); one that took less, or in which a request ran, was
	// used.
	unusedYield = 500 * time.Microsecond
	// yieldCheckEvery is how many of OPA's per-expression checks pass between two reads
	// of the clock (an expression costs ~0.1–1 µs).
	yieldCheckEvery = 32
)

// yielder is the topdown.Cancel of a background plan evaluation. OPA calls Cancelled
// before every expression it evaluates, which makes it the one place a long evaluation
// can stop to let others run; it also ends the evaluation when ctx ends (with an external
// Cancel, OPA no longer watches the context itself). One evaluation's calls come from its
// one goroutine; Cancel may come from any.
type yielder struct {
	ctx       context.Context
	quantum   time.Duration // the current one: planQuantum … planQuantumIdle
	calls     uint32
	since     time.Time
	yields    int
	cancelled atomic.Bool
}

var _ topdown.Cancel = (*yielder)(nil)

func newYielder(ctx context.Context) *yielder {
	return &yielder{ctx: ctx, quantum: planQuantum, since: time.Now()}
}

func (y *yielder) Cancel() { y.cancelled.Store(true) }

func (y *yielder) Cancelled() bool {
	if y.cancelled.Load() {
		return true
	}
	if y.calls++; y.calls%yieldCheckEvery != 0 {
		return false
	}
	if y.ctx.Err() != nil {
		return true
	}
	if time.Since(y.since) < y.quantum {
		return false
	}
	t0 := time.Now()
	cpu0, known := processCPU()
	time.Sleep(planYieldSleep)
	y.yields++
	y.since = time.Now()
	wall := y.since.Sub(t0)
	unused := wall >= unusedYield
	if cpu1, ok := processCPU(); unused && known && ok {
		unused = cpu1-cpu0 < wall/4
	}
	if unused {
		y.quantum = min(2*y.quantum, planQuantumIdle)
	} else {
		y.quantum = planQuantum
	}
	return false
}
