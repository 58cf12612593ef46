package openai

import (
	"bytes"
	"context"
	"io"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
)

var doneMarker = []byte("[DONE]")

// stream is the adapters.ChunkStream of an SSE response. Recv is meant for one goroutine;
// Close may be called from another to abort it.
type stream struct {
	httpx.StreamBody
	p   *Provider
	dec *sse.JSONDecoder // decodes chunk after chunk with the state kept; nil once ended
	// fast decodes the chunks it can without reflection (adapters.ChunkDecoder); dec the
	// others.
	fast adapters.ChunkDecoder

	chunks int
}

func newStream(ctx context.Context, p *Provider, body io.ReadCloser) *stream {
	s := &stream{p: p, dec: sse.GetJSONDecoder()}
	s.Open(ctx, &p.Base, body)
	return s
}

var _ adapters.ReadyStream = (*stream)(nil)

// NextReady reports whether the next Recv returns without waiting: every data event of
// an OpenAI stream is a chunk, an error or the end.
func (s *stream) NextReady() bool { return s.Buffered() }

// Recv returns the next chunk, io.EOF after [DONE], or an *adapters.Error.
func (s *stream) Recv() (*adapters.ChatChunk, error) {
	if err := s.Stopped(); err != nil {
		return nil, err
	}
	for {
		data, err := s.Next()
		if err != nil {
			return nil, s.finish(s.readFailure(data, err))
		}
		if len(data) == 0 || data[0] != '{' || data[len(data)-1] != '}' { // a chunk has nothing to trim
			data = bytes.TrimSpace(data)
		}
		if len(data) == 0 {
			continue
		}
		if bytes.Equal(data, doneMarker) {
			s.MarkDone()
			return nil, s.finish(io.EOF)
		}
		// A chunk of text in the layout of one before it is a chunk: its members outside
		// the text are that chunk's, which was not an error (parseErrorBody reads only
		// top-level members), and its text's string can hold the quoted word
		// mayHoldError looks for only when the text ends in it (the string's closing
		// quote ends the word; a quote inside it is escaped). Those take the path below.
		if c := s.fast.Laid(data); c != nil && !strings.HasSuffix(*c.Choices[0].Delta.Content, "error") {
			s.chunks++
			return c, nil
		}
		if mayHoldError(data) {
			if w, ok := parseErrorBody(data); ok {
				return nil, s.finish(s.p.streamError(w))
			}
		}
		if c := s.fast.Decode(data); c != nil {
			s.chunks++
			return c, nil
		}
		c := new(adapters.ChatChunk)
		if err := s.dec.Decode(data, c); err != nil {
			return nil, s.finish(s.p.ProtocolError("cannot decode stream chunk", err))
		}
		s.chunks++
		return c, nil
	}
}

// finish ends the stream with err and gives the decoder back to the pool (Recv runs on
// one goroutine, and after End it returns before decoding anything).
func (s *stream) finish(err error) error {
	sse.PutJSONDecoder(s.dec)
	s.dec = nil
	return s.End(err)
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
