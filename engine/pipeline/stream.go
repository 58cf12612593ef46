package pipeline

import (
	"context"
	"io"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/telemetry"
)

// Stream is an admitted request's open upstream stream. Failover happened while it was
// opened, before any byte reached the client; from the first chunk on, a failure is
// reported (Fail), unless the decision continues it on another target (continue.go).
type Stream struct {
	p     *Pipeline
	x     *Exchange
	sr    *executor.StreamResult
	first bool // First has been returned
	// cont is the state of a stream whose decision continues it after a mid-stream
	// failure (continue.go); nil otherwise, and then Recv pays nothing for it.
	cont *continuing
	// unsupported: the decision asked for continuation but the stream cannot have it
	// (passed through, several choices).
	unsupported bool
}

// OpenStream walks the decision's targets until one produces a first chunk.
func (p *Pipeline) OpenStream(ctx context.Context, x *Exchange) (*Stream, error) {
	var sr *executor.StreamResult
	var err error
	handled := false
	if x.cache != nil && x.cache.result != CacheBypass {
		sr, handled, err = p.cachedStream(ctx, x)
	}
	switch {
	case handled:
	case x.native() != nil:
		sr, err = p.o.Executor.OpenStreamNative(ctx, x.up, x.native(), x.decision)
	default:
		sr, err = p.o.Executor.OpenStream(ctx, x.up, x.decision)
	}
	if err != nil {
		return nil, err
	}
	x.route, x.upstream, x.dropped = sr.Target.String(), sr.Upstream, sr.Dropped
	x.completion.Start(&p.counter, sr.Target.Model)
	x.st = Stream{p: p, x: x, sr: sr}
	if asked, can := continuable(x, sr); can {
		x.st.cont = &continuing{ctx: ctx}
	} else if asked {
		x.st.unsupported = true
	}
	return &x.st, nil
}

// Recv returns the next chunk as the client should see it, io.EOF at the end. Usage and
// the completion's tokens are recorded on the way for accounting; the text itself is not
// kept, beyond a bounded prefix for the shadows and the tail the token tally holds. The usage gavel asked for on
// the client's behalf is dropped unless the client asked for it: upstreams are always
// asked for usage (cost accounting needs it). A nil chunk with a nil error is a chunk
// with nothing for the client; call Recv again.
func (s *Stream) Recv() (*adapters.ChatChunk, error) {
	if s.cont != nil {
		return s.recvContinuing()
	}
	var chunk *adapters.ChatChunk
	if !s.first {
		s.first, chunk = true, s.sr.First
	} else {
		var err error
		if chunk, err = s.sr.Stream.Recv(); err != nil {
			if err == io.EOF && s.x.cache != nil {
				s.p.storeStream(s.x)
			}
			return nil, err
		}
	}
	x := s.x
	if x.cache != nil && x.cache.record != nil {
		s.p.recordChunk(x, chunk)
	}
	if chunk.Usage != nil {
		x.usage = chunk.Usage
	}
	// Tallied for every stream, not only budgeted ones: tokens and cost by team are
	// counted from it when the upstream sends no usage.
	for _, ch := range chunk.Choices {
		if ch.Delta.Content != nil {
			x.completion.WriteString(*ch.Delta.Content)
			if x.primary != nil {
				x.keepShadowText(*ch.Delta.Content)
			}
		}
	}
	return relayChunk(chunk, x.wantUse), nil
}

// NextReady reports whether the next Recv returns without waiting for the upstream
// (adapters.ReadyStream): the first chunk not yet returned, or the adapter's next event
// already read. A continuing stream answers false.
func (s *Stream) NextReady() bool {
	if s.cont != nil {
		return false
	}
	if !s.first {
		return true
	}
	r, ok := s.sr.Stream.(adapters.ReadyStream)
	return ok && r.NextReady()
}

// Close ends the upstream stream (cancelling it if it is still running).
func (s *Stream) Close() error {
	if s.sr.Raw != nil {
		return s.sr.Raw.Close()
	}
	return s.sr.Stream.Close()
}

// Fail records a failure after the first chunk (the client is still there to be told)
// and returns what to tell it.
func (s *Stream) Fail(ctx context.Context, err error) *StreamError {
	s.x.streamFail = true
	if s.unsupported {
		s.p.o.Metrics.StreamContinuation(telemetry.ContinuationUnsupported)
	}
	t := s.sr.Target
	s.p.o.Metrics.StreamError(t.Provider, t.Model)
	s.p.log.Warn("upstream stream failed after the first byte", "decision_id", s.x.ID, "route", s.x.route, "err", err)
	return &StreamError{Err: err, Timeout: ctx.Err() == context.DeadlineExceeded}
}

// relayChunk drops the usage gavel asked for on the client's behalf, unless wantUsage.
func relayChunk(c *adapters.ChatChunk, wantUsage bool) *adapters.ChatChunk {
	if c.Usage == nil || wantUsage {
		return c
	}
	if len(c.Choices) == 0 {
		return nil
	}
	cp := *c
	cp.Usage = nil
	return &cp
}

// WantsUsage reports that the client asked for usage on its stream
// (stream_options.include_usage).
func (x *Exchange) WantsUsage() bool { return x.wantUse }
