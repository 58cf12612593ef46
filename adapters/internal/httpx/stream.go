package httpx

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
)

// StreamBody is the upstream end of a streamed answer, embedded in each vendor's stream,
// whose Close it provides: it reads the body's events, closes the body when the request's
// context ends, lets Close abort a Recv parked on the network from another goroutine, and
// hands the connection back to the pool when the stream reached its end marker.
type StreamBody struct {
	b    *Base
	ctx  context.Context
	body io.ReadCloser
	stop func() bool // unregisters the ctx watcher that closes body

	r    *sse.Reader // nil once the stream ended
	read boundedBody // what r reads: body, counted
	err  error       // sticky result once the stream ended: io.EOF or *adapters.Error

	closed atomic.Bool
	done   atomic.Bool // the end marker was seen: the body may be drained for connection reuse
}

// Open starts watching ctx for the stream of b's answer body. Call it once, before the
// first read.
func (s *StreamBody) Open(ctx context.Context, b *Base, body io.ReadCloser) {
	s.b, s.ctx, s.body = b, ctx, body
	s.read = boundedBody{body: body, left: b.maxResponse}
	s.r = sse.Get(&s.read)
	// Closing the body is the one thing that unblocks a Read parked on the network, for
	// any transport, so a cancelled ctx does exactly that.
	s.stop = context.AfterFunc(ctx, func() { body.Close() })
}

// errTooLarge ends a stream that exceeded the provider's max_response_bytes.
var errTooLarge = errors.New("stream exceeds max_response_bytes")

// boundedBody reads a stream's body while counting what the stream has taken in all: a
// stream has no end of its own, and its events are relayed and forgotten, so this count
// is the only bound on what one upstream answer may make gavel read (and tokenize, and
// bill).
type boundedBody struct {
	body io.Reader
	left int64 // bytes the stream may still take; negative once it took more
}

func (r *boundedBody) Read(p []byte) (int, error) {
	if r.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > r.left+1 {
		p = p[:r.left+1]
	}
	n, err := r.body.Read(p)
	if r.left -= int64(n); r.left < 0 {
		return 0, errTooLarge // the events before the one that crossed the bound were read
	}
	return n, err
}

// Next returns the data of the next event; see sse.Reader.Next.
func (s *StreamBody) Next() ([]byte, error) { return s.r.Next() }

// Buffered reports whether the next event with data is already read in whole
// (sse.Reader.Ready); an adapter whose every such event yields a chunk offers it as
// adapters.ReadyStream.
func (s *StreamBody) Buffered() bool { return s.r != nil && s.err == nil && s.r.Ready() }

// Event is the event name of the data Next last returned, nil when it had none.
func (s *StreamBody) Event() []byte { return s.r.Event() }

// Err is how the stream ended (io.EOF or an *adapters.Error), nil while it goes on.
func (s *StreamBody) Err() error { return s.err }

// Stopped is what Recv returns before it reads on: how the stream ended or, once Close was
// called, the ClosedError it then ends with; nil while the stream goes on.
func (s *StreamBody) Stopped() error {
	if s.err == nil && s.closed.Load() {
		return s.End(s.ClosedError())
	}
	return s.err
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
	case err == errTooLarge:
		return s.b.ProtocolError(err.Error()+" ("+Size(s.b.maxResponse)+")", nil)
	case s.ctx.Err() != nil:
		return ContextError(s.b.name, s.ctx)
	case s.closed.Load():
		return s.ClosedError()
	case err == io.EOF:
		return nil
	}
	return adapters.TransportError(s.b.name, s.ctx, err)
}

// EndedBefore is the error of a body that ended before the stream did: before end, the
// vendor's last event, or before any unit at all when read is 0.
func (s *StreamBody) EndedBefore(end, unit string, read int) *adapters.Error {
	msg := "stream ended before " + end
	if read == 0 {
		msg = "stream ended before any " + unit
	}
	return s.Truncated(msg)
}

// Truncated is the error of a body that ended before the stream did; msg says where.
func (s *StreamBody) Truncated(msg string) *adapters.Error {
	return &adapters.Error{Provider: s.b.name, Kind: adapters.KindConnection, Message: msg, Err: io.ErrUnexpectedEOF}
}

// End records err as how the stream ended, returns it, and returns the reader's buffers
// to the pool. A stream that ended any other way than normally (io.EOF) has no reusable
// connection, so it is let go at once.
func (s *StreamBody) End(err error) error {
	s.err = err
	sse.Put(s.r)
	s.r = nil
	if err != io.EOF {
		s.stop()
		s.body.Close()
	}
	return err
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
