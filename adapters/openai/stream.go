package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"io"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

var doneMarker = []byte("[DONE]")

// stream is the adapters.ChunkStream of an SSE response. Recv is meant for one goroutine;
// Close may be called from another to abort it.
type stream struct {
	httpx.StreamBody
	p *Provider

	chunks int
}

func newStream(ctx context.Context, p *Provider, body io.ReadCloser) *stream {
	s := &stream{p: p}
	s.Open(ctx, &p.Base, body)
	return s
}

// Recv returns the next chunk, io.EOF after [DONE], or an *adapters.Error.
func (s *stream) Recv() (*adapters.ChatChunk, error) {
	if err := s.Stopped(); err != nil {
		return nil, err
	}
	for {
		data, err := s.Next()
		if err != nil {
			return nil, s.End(s.readFailure(data, err))
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		if bytes.Equal(data, doneMarker) {
			s.MarkDone()
			return nil, s.End(io.EOF)
		}
		if mayHoldError(data) {
			if w, ok := parseErrorBody(data); ok {
				return nil, s.End(s.p.streamError(w))
			}
		}
		c := new(adapters.ChatChunk)
		if err := json.Unmarshal(data, c); err != nil {
			return nil, s.End(s.p.ProtocolError("cannot decode stream chunk", err))
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
	return s.EndedBefore("[DONE]", "chunk", s.chunks)
}
