package executor

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// streamTracker finishes the bookkeeping of a streamed attempt when the stream ends: the
// target's statistics, token metrics, and the attempt context that DeferCancel kept alive.
// It serves canonical streams (trackedStream) and passed-through ones (trackedRaw) alike.
type streamTracker struct {
	p       *pipeline
	e       *Executor
	req     context.Context // the request's: a stream it ended is no failure of the target
	started time.Time
	release func()
	once    sync.Once
	ttft    time.Duration

	// idle bounds the wait for each next chunk: an upstream that stalls mid-stream must
	// end the client's stream with an error, not hold it open until the request deadline.
	// One timer serves the whole stream: a read only records when it started (reading),
	// and the timer, when it fires, ends the attempt if the read in progress has waited
	// idle, or is set again for when it could have; with no read in progress it is left
	// unset, and the next read sets it. Setting and stopping a timer for every chunk cost
	// two timer operations per chunk.
	idle      time.Duration
	timer     atomic.Pointer[time.Timer]
	armed     atomic.Bool  // the timer is set (or its check is running)
	reading   atomic.Int64 // when the read in progress started (ns since started, +1); 0: none
	ended     atomic.Bool  // finish ran: the timer must not be set again
	idleFired atomic.Bool
}

func (p *pipeline) tracker(e *Executor, ctx context.Context, out *outcome) streamTracker {
	return streamTracker{p: p, e: e, req: ctx, started: out.started, ttft: out.ttft, release: out.release, idle: p.res.Timeout}
}

// before marks the start of one read for the idle bound.
func (s *streamTracker) before() {
	if s.idle <= 0 {
		return
	}
	s.reading.Store(int64(time.Since(s.started)) + 1)
	if s.armed.CompareAndSwap(false, true) {
		if t := s.timer.Load(); t != nil {
			t.Reset(s.idle)
		} else {
			s.timer.Store(time.AfterFunc(s.idle, s.check))
		}
	}
}

// check runs when the timer fires: the attempt ends if the read in progress has waited
// idle; otherwise the timer is set for when it could have, or left unset when no read is
// in progress.
func (s *streamTracker) check() {
	for !s.ended.Load() {
		if at := s.reading.Load(); at != 0 {
			waited := time.Since(s.started) - time.Duration(at-1)
			if waited >= s.idle {
				s.idleFired.Store(true)
				s.release() // cancels the attempt's context, which unblocks the read
				return
			}
			if t := s.timer.Load(); t != nil {
				t.Reset(s.idle - waited)
			}
			return
		}
		s.armed.Store(false)
		if s.reading.Load() == 0 || !s.armed.CompareAndSwap(false, true) {
			return // the next read sets the timer
		}
		// A read started in between and found the timer set: judge it.
	}
}

// after marks the read done and ends the stream's bookkeeping when it failed or ended.
func (s *streamTracker) after(err error) error {
	if s.idle > 0 {
		s.reading.Store(0)
	}
	if err != nil {
		if s.idleFired.Load() {
			err = &adapters.Error{Provider: s.p.target.Provider, Kind: adapters.KindTimeout,
				Message: "no chunk from upstream for " + s.idle.String(), Err: err}
		}
		s.finish(err)
	}
	return err
}

func (s *streamTracker) closed() {
	s.finish(errClosed)
}

// trackedStream is a canonical stream with its attempt's bookkeeping.
type trackedStream struct {
	adapters.ChunkStream
	streamTracker
}

func (s *trackedStream) Recv() (*adapters.ChatChunk, error) {
	s.before()
	c, err := s.ChunkStream.Recv()
	if err = s.after(err); err != nil {
		return nil, err
	}
	return c, nil
}

// NextReady passes the adapter's adapters.ReadyStream on; false when it has none.
func (s *trackedStream) NextReady() bool {
	r, ok := s.ChunkStream.(adapters.ReadyStream)
	return ok && r.NextReady()
}

func (s *trackedStream) Close() error {
	err := s.ChunkStream.Close()
	s.closed()
	return err
}

// trackedRaw is a passed-through stream with its attempt's bookkeeping.
type trackedRaw struct {
	adapters.RawStream
	streamTracker
}

func (s *trackedRaw) Recv() (adapters.RawEvent, error) {
	s.before()
	ev, err := s.RawStream.Recv()
	if err = s.after(err); err != nil {
		return adapters.RawEvent{}, err
	}
	return ev, nil
}

func (s *trackedRaw) Close() error {
	err := s.RawStream.Close()
	s.closed()
	return err
}

var errClosed = errors.New("closed by gavel")

// endedByRequest: the request's own context (its deadline, its client leaving) ended the
// stream, not the upstream, which may have been waiting on a slow client all along. A
// stalled upstream is still caught by the idle bound.
func (s *streamTracker) endedByRequest() bool {
	return s.req != nil && s.req.Err() != nil && !s.idleFired.Load()
}

func (s *streamTracker) finish(err error) {
	s.once.Do(func() {
		s.ended.Store(true)
		if t := s.timer.Load(); t != nil {
			t.Stop()
		}
		failed := err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errClosed) && breakerFailure(err) && !s.endedByRequest() &&
			!injected(err) // a drill's cut says nothing about the target (fault.go)
		s.p.stats.End(time.Since(s.started), s.ttft, failed)
		if failed {
			// A stream that broke after its first chunk still says something about the
			// target's health. gavel_stream_errors_total is not counted here: the pipeline
			// counts it where the error event is written to the client.
			s.p.breaker.recordFailure()
		}
		s.release()
	})
}
