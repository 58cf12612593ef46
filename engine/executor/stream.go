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
	idle      time.Duration
	timer     *time.Timer
	idleFired atomic.Bool
}

func (p *pipeline) tracker(e *Executor, ctx context.Context, out *outcome) streamTracker {
	return streamTracker{p: p, e: e, req: ctx, started: out.started, ttft: out.ttft, release: out.release, idle: p.res.Timeout}
}

// before arms the idle bound for one read.
func (s *streamTracker) before() {
	if s.idle > 0 {
		if s.timer == nil {
			s.timer = time.AfterFunc(s.idle, func() {
				s.idleFired.Store(true)
				s.release() // cancels the attempt's context, which unblocks the read
			})
		} else {
			s.timer.Reset(s.idle)
		}
	}
}

// after disarms it and ends the stream's bookkeeping when the read failed or ended.
func (s *streamTracker) after(err error) error {
	if s.timer != nil {
		s.timer.Stop()
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
	if s.timer != nil {
		s.timer.Stop()
	}
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
