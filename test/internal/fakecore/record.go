package fakecore

import (
	"sync"
	"sync/atomic"
)

// Recorder keeps the requests a fake received, as values of type R, while it is on (it
// starts on). All methods are safe for concurrent use.
type Recorder[R any] struct {
	off  atomic.Bool // inverted so that the zero Recorder records
	mu   sync.Mutex
	recs []R
}

// SetOn switches recording on or off.
func (r *Recorder[R]) SetOn(on bool) { r.off.Store(!on) }

// On reports whether recording is on.
func (r *Recorder[R]) On() bool { return !r.off.Load() }

// Add records rec if recording is on.
func (r *Recorder[R]) Add(rec R) {
	if !r.On() {
		return
	}
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}

// All returns a copy of the records, oldest first.
func (r *Recorder[R]) All() []R {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]R(nil), r.recs...)
}

// Reset forgets the records; the switch stays as it is.
func (r *Recorder[R]) Reset() {
	r.mu.Lock()
	r.recs = nil
	r.mu.Unlock()
}
