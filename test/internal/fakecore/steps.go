package fakecore

import (
	"sync"
	"sync/atomic"
)

// Steps holds the scripted behaviours of a fake: per model a queue of steps of type S,
// consumed one per request, and a default that applies when the queue is empty. Queues and
// defaults for AnyModel serve every model without its own. It also counts the requests per
// model. All methods are safe for concurrent use.
type Steps[S any] struct {
	mu       sync.Mutex     // guards scripts and replacing defaults
	scripts  map[string][]S // queued steps per model
	queued   atomic.Int64   // steps in scripts, so Next can skip mu
	defaults atomic.Pointer[Defaults[S]]
	counts   atomic.Pointer[sync.Map] // model -> *atomic.Int64
}

// Defaults is an immutable snapshot of the per-model defaults. SetDefault and Reset
// replace it as a whole, so Cache can memoize what is derived from it (such as rendered
// responses) without ever pairing a default with a stale derivation.
type Defaults[S any] struct {
	steps map[string]S
	Cache sync.Map
}

// NewSteps returns empty Steps.
func NewSteps[S any]() *Steps[S] {
	q := &Steps[S]{}
	q.Reset()
	return q
}

// Script queues steps for model.
func (q *Steps[S]) Script(model string, steps ...S) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.scripts[model] = append(q.scripts[model], steps...)
	q.queued.Add(int64(len(steps)))
}

// SetDefault sets model's default.
func (q *Steps[S]) SetDefault(model string, st S) {
	q.mu.Lock()
	defer q.mu.Unlock()
	old := q.defaults.Load().steps
	steps := make(map[string]S, len(old)+1)
	for k, v := range old {
		steps[k] = v
	}
	steps[model] = st
	q.defaults.Store(&Defaults[S]{steps: steps})
}

// Next counts a request for model and returns its behaviour: the first queued step for
// model, else for AnyModel, else model's default, else AnyModel's default (else the zero
// S). The snapshot of the defaults is returned with a default, nil with a queued step.
func (q *Steps[S]) Next(model string) (S, *Defaults[S]) {
	q.count(model)
	if q.queued.Load() > 0 {
		if st, ok := q.pop(model); ok {
			return st, nil
		}
	}
	d := q.defaults.Load()
	if st, ok := d.steps[model]; ok {
		return st, d
	}
	return d.steps[AnyModel], d
}

func (q *Steps[S]) pop(model string) (S, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range [2]string{model, AnyModel} {
		if s := q.scripts[m]; len(s) > 0 {
			q.scripts[m] = s[1:]
			q.queued.Add(-1)
			return s[0], true
		}
	}
	var zero S
	return zero, false
}

func (q *Steps[S]) count(model string) {
	counts := q.counts.Load()
	v, ok := counts.Load(model)
	if !ok {
		v, _ = counts.LoadOrStore(model, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Count returns how many requests Next counted for model; AnyModel counts all of them.
func (q *Steps[S]) Count(model string) int {
	counts := q.counts.Load()
	if model == AnyModel {
		total := 0
		counts.Range(func(_, v any) bool {
			total += int(v.(*atomic.Int64).Load())
			return true
		})
		return total
	}
	if v, ok := counts.Load(model); ok {
		return int(v.(*atomic.Int64).Load())
	}
	return 0
}

// Models returns, unordered, the models that were scripted or given a default, AnyModel
// excepted.
func (q *Steps[S]) Models() []string {
	set := map[string]bool{}
	q.mu.Lock()
	for m := range q.scripts {
		set[m] = true
	}
	for m := range q.defaults.Load().steps {
		set[m] = true
	}
	q.mu.Unlock()
	delete(set, AnyModel)
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	return out
}

// Reset forgets queued steps, defaults and counts.
func (q *Steps[S]) Reset() {
	q.mu.Lock()
	q.scripts = map[string][]S{}
	q.queued.Store(0)
	q.defaults.Store(&Defaults[S]{steps: map[string]S{}})
	q.counts.Store(new(sync.Map))
	q.mu.Unlock()
}
