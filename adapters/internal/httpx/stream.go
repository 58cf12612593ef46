package httpx

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
)

// StreamBody is the upstream end of a streamed answer, embedded in each vendor's stream,
// whose Close it provides. It closes the body when the request's context ends, lets Close
// abort a Recv parked on the network from another goroutine, and hands the connection back
// to the pool when the stream reached its end marker.
type StreamBody struct {
	b    *Base
	ctx  context.Context
	body io.ReadCloser
	stop func() bool // unregisters the ctx watcher that closes body

	closed atomic.Bool
	done   atomic.Bool // the end marker was seen: the body may be drained for connection reuse
}

// Open starts watching ctx for the stream of b's answer body. Call it once, before the
// first read.
func (s *StreamBody) Open(ctx context.Context, b *Base, body io.ReadCloser) {
	s.b, s.ctx, s.body = b, ctx, body
	// Closing the body is the one thing that unblocks a Read parked on the network, for
	// any transport, so a cancelled ctx does exactly that.
	s.stop = context.AfterFunc(ctx, func() { body.Close() })
}

// Closed reports whether Close was called.
func (s *StreamBody) Closed() bool { return s.closed.Load() }

// ClosedError is what Recv returns once Close was called.
func (s *StreamBody) ClosedError() *adapters.Error {
	return &adapters.Error{Provider: s.b.name, Kind: adapters.KindCanceled, Message: "stream closed"}
}

// MarkDone records that the vendor's end marker was read, so Close may drain the rest of
// the body and keep the connection.
func (s *StreamBody) MarkDone() { s.done.Store(true) }

// Done reports whether MarkDone was called.
func (s *StreamBody) Done() bool { return s.done.Load() }

// ReadError classifies why the event reader stopped with err. It returns nil when the body
// simply ended (io.EOF) with nothing else wrong: whether that end was a normal one only
// the vendor can tell.
func (s *StreamBody) ReadError(err error) error {
	switch {
	case err == sse.ErrEventTooLarge:
		return s.b.ProtocolError(err.Error(), nil)
	case s.ctx.Err() != nil:
		return ContextError(s.b.name, s.ctx)
	case s.closed.Load():
		return s.ClosedError()
	case err == io.EOF:
		return nil
	}
	return adapters.TransportError(s.b.name, s.ctx, err)
}

// Truncated is the error of a body that ended before the stream did; msg says where.
func (s *StreamBody) Truncated(msg string) *adapters.Error {
	return &adapters.Error{Provider: s.b.name, Kind: adapters.KindConnection, Message: msg, Err: io.ErrUnexpectedEOF}
}

// End lets the connection go at once when the stream ended with err rather than normally
// (io.EOF): it has nothing left worth reading.
func (s *StreamBody) End(err error) {
	if err != io.EOF {
		s.stop()
		s.body.Close()
	}
}

// Close releases the upstream connection. It is idempotent and may run concurrently with
// Recv to abort it.
func (s *StreamBody) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stop()
	if s.done.Load() {
		Drain(s.body)
	}
	s.body.Close()
	return nil
}
