package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync/atomic"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
)

var doneMarker = []byte("[DONE]")

// stream is the adapters.ChunkStream of an SSE response. Recv is meant for one goroutine;
// Close may be called from another to abort it.
type stream struct {
	p      *Provider
	ctx    context.Context
	body   io.ReadCloser
	stopFn func() bool // unregisters the ctx watcher that closes body

	r      *sse.Reader // nil once the stream reached its end
	err    error       // sticky result once the stream ended: io.EOF or *adapters.Error
	chunks int

	closed atomic.Bool
	done   atomic.Bool // [DONE] seen: the body may be drained for connection reuse
}

func newStream(ctx context.Context, p *Provider, body io.ReadCloser) *stream {
	s := &stream{p: p, ctx: ctx, body: body, r: sse.Get(body)}
	// Closing the body is the one thing that unblocks a Read parked on the network, for
	// any transport, so a cancelled ctx does exactly that.
	s.stopFn = context.AfterFunc(ctx, func() { body.Close() })
	return s
}

// Recv returns the next chunk, io.EOF after [DONE], or an *adapters.Error.
func (s *stream) Recv() (*adapters.ChatChunk, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.closed.Load() {
		return nil, s.finish(s.closedError())
	}
	for {
		data, err := s.r.Next()
		if err != nil {
			return nil, s.finish(s.readFailure(data, err))
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		if bytes.Equal(data, doneMarker) {
			s.done.Store(true)
			return nil, s.finish(io.EOF)
		}
		if mayHoldError(data) {
			if w, ok := parseErrorBody(data); ok {
				return nil, s.finish(s.p.streamError(w))
			}
		}
		c := new(adapters.ChatChunk)
		if err := json.Unmarshal(data, c); err != nil {
			return nil, s.finish(s.p.protocolError("cannot decode stream chunk", err))
		}
		s.chunks++
		return c, nil
	}
}

// readFailure classifies why the event reader stopped. partial is the data of an event
// cut off by the end of the body.
func (s *stream) readFailure(partial []byte, err error) error {
	switch {
	case err == sse.ErrEventTooLarge:
		return s.p.protocolError(err.Error(), nil)
	case s.ctx.Err() != nil:
		return httpx.ContextError(s.p.name, s.ctx)
	case s.closed.Load():
		return s.closedError()
	case err == io.EOF:
		// The SSE spec drops an event the body cut short, but a server that ends with
		// "data: [DONE]" and no blank line has clearly finished.
		if bytes.Equal(bytes.TrimSpace(partial), doneMarker) {
			s.done.Store(true)
			return io.EOF
		}
		msg := "stream ended before [DONE]"
		if s.chunks == 0 {
			msg = "stream ended before any chunk"
		}
		return &adapters.Error{Provider: s.p.name, Kind: adapters.KindConnection, Message: msg, Err: io.ErrUnexpectedEOF}
	}
	return adapters.TransportError(s.p.name, s.ctx, err)
}

func (s *stream) closedError() *adapters.Error {
	return &adapters.Error{Provider: s.p.name, Kind: adapters.KindCanceled, Message: "stream closed"}
}

// finish records the stream's end and returns the reader's buffers to the pool. A stream
// that ended any other way than [DONE] has no reusable connection, so it is let go at once.
func (s *stream) finish(err error) error {
	s.err = err
	sse.Put(s.r)
	s.r = nil
	if err != io.EOF {
		s.stopFn()
		s.body.Close()
	}
	return err
}

// Close releases the upstream connection. It is idempotent and may run concurrently with
// Recv to abort it.
func (s *stream) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stopFn()
	if s.done.Load() {
		httpx.Drain(s.body)
	}
	s.body.Close()
	return nil
}
