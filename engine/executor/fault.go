package executor

import (
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

// errInjected marks the failures a chaos drill (decision.Fault) injected. They read as
// upstream failures to retries, fallbacks and the client, but they are not counted
// against the target's breaker or health signals: a drill on a slice of traffic tests
// how gavel and its clients react to one failure, and must not open a breaker or steer
// routing for the traffic outside the drill.
var errInjected = errors.New("injected by a chaos drill (decision fault)")

var attrFault = attribute.Key("gavel.fault")

// faulty wraps a walk's attempt so that the fault's attempt (counted over the whole
// walk: retries, fallbacks and hedges alike) gets the fault.
func (e *Executor) faulty(f *decision.Fault, call attempt) attempt {
	var n atomic.Int32
	return func(exec *try, p *pipeline) (*outcome, error) {
		if int(n.Add(1)) != f.Attempt {
			return call(exec, p)
		}
		f.MarkInjected()
		e.metrics.FaultInjected(f.Kind)
		ctx := exec.Context()
		// The request's span (the attempt's own starts inside call): a trace search for
		// gavel.fault finds every drilled request.
		trace.SpanFromContext(ctx).SetAttributes(attrFault.String(f.Kind))
		switch f.Kind {
		case decision.FaultError:
			return nil, &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindForStatus(f.Status), Status: f.Status,
				Message: "injected upstream error", Err: errInjected}
		case decision.FaultTimeout:
			// Behave as the attempt timeout: wait until it (or the request) ends.
			<-ctx.Done()
			return nil, p.attemptFailure(exec, &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindCanceled,
				Message: "attempt ended during an injected timeout", Err: errInjected})
		case decision.FaultLatency:
			t := time.NewTimer(time.Duration(f.DelayMS) * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, p.attemptFailure(exec, &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindCanceled,
					Message: "attempt ended during an injected delay", Err: errInjected})
			}
			return call(exec, p)
		case decision.FaultCutStream:
			out, err := call(exec, p)
			return cut(p, f.AfterChunks, out, err)
		}
		return call(exec, p)
	}
}

// cut makes an attempt's stream end with an error after n chunks (the first included); a
// non-streamed answer is lost as if the connection were cut before it arrived.
func cut(p *pipeline, n int, out *outcome, err error) (*outcome, error) {
	if err != nil {
		return out, err
	}
	cutErr := &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindConnection, Message: "stream cut by an injected fault", Err: errInjected}
	if !out.streaming() {
		return nil, cutErr
	}
	if n == 0 {
		out.closeStream()
		return nil, cutErr
	}
	if out.stream != nil {
		out.stream = &cutStream{ChunkStream: out.stream, left: n - 1, err: cutErr}
	} else {
		out.rawStream = &cutRawStream{RawStream: out.rawStream, left: n - 1, err: cutErr}
	}
	return out, nil
}

// cutStream yields left more chunks, then err.
type cutStream struct {
	adapters.ChunkStream
	left int
	err  error
}

func (s *cutStream) Recv() (*adapters.ChatChunk, error) {
	if s.left <= 0 {
		return nil, s.err
	}
	s.left--
	return s.ChunkStream.Recv()
}

// cutRawStream yields left more events, then err.
type cutRawStream struct {
	adapters.RawStream
	left int
	err  error
}

func (s *cutRawStream) Recv() (adapters.RawEvent, error) {
	if s.left <= 0 {
		return adapters.RawEvent{}, s.err
	}
	s.left--
	return s.RawStream.Recv()
}

// injected reports whether err is a failure a drill injected.
func injected(err error) bool { return errors.Is(err, errInjected) }
