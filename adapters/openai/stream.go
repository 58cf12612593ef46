package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"io"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
)

var doneMarker = []byte("[DONE]")

// stream is the adapters.ChunkStream of an SSE response. Recv is meant for one goroutine;
// Close may be called from another to abort it.
type stream struct {
	httpx.StreamBody
	p *Provider

	r      *sse.Reader // nil once the stream reached its end
	err    error       // sticky result once the stream ended: io.EOF or *adapters.Error
	chunks int
}

func newStream(ctx context.Context, p *Provider, body io.ReadCloser) *stream {
	s := &stream{p: p, r: sse.Get(body)}
	s.Open(ctx, &p.Base, body)
	return s
}

// Recv returns the next chunk, io.EOF after [DONE], or an *adapters.Error.
func (s *stream) Recv() (*adapters.ChatChunk, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.Closed() {
		return nil, s.finish(s.ClosedError())
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
			s.MarkDone()
			return nil, s.finish(io.EOF)
		}
		if mayHoldError(data) {
			if w, ok := parseErrorBody(data); ok {
				return nil, s.finish(s.p.streamError(w))
			}
		}
		c := new(adapters.ChatChunk)
		if err := json.Unmarshal(data, c); err != nil {
			return nil, s.finish(s.p.ProtocolError("cannot decode stream chunk", err))
		}
		s.chunks++
		return c, nil
	}
}

// readFailure classifies why the event reader stopped. partial is the data of an event
// cut off by the end of the body.
func (s *stream) readFailure(partial []byte, err error) error {
	if e := s.ReadError(err); e != nil {
		return e
	}
	// The SSE spec drops an event the body cut short, but a server that ends with
	// "data: [DONE]" and no blank line has clearly finished.
	if bytes.Equal(bytes.TrimSpace(partial), doneMarker) {
		s.MarkDone()
		return io.EOF
	}
	msg := "stream ended before [DONE]"
	if s.chunks == 0 {
		msg = "stream ended before any chunk"
	}
	return s.Truncated(msg)
}

// finish records the stream's end and returns the reader's buffers to the pool. A stream
// that ended any other way than [DONE] has no reusable connection, so it is let go at once.
func (s *stream) finish(err error) error {
	s.err = err
	sse.Put(s.r)
	s.r = nil
	s.End(err)
	return err
}
