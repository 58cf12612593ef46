package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

const (
	// maxEvent bounds one SSE event (and one line). Real chunks are well under 1 KiB; the
	// bound only keeps a broken upstream from making the gateway buffer without limit.
	maxEvent = 1 << 20
	// readBufferSize covers any ordinary chunk in one ReadSlice, so the common path never
	// copies a line. It is small because one is held per open stream.
	readBufferSize = 4 << 10
	// drainLimit and drainTimeout bound how long Close reads past [DONE]. Reading the
	// body to its end is what returns an HTTP/1.1 connection to the idle pool; closing it
	// early forces a new connection (and TLS handshake) for the next request.
	drainLimit   = 16 << 10
	drainTimeout = 50 * time.Millisecond
)

var (
	errEventTooLarge = errors.New("SSE event exceeds 1 MiB")
	doneMarker       = []byte("[DONE]")
	bom              = []byte("\xEF\xBB\xBF")
)

// stream is the adapters.ChunkStream of an SSE response. Recv is meant for one goroutine;
// Close may be called from another to abort it.
type stream struct {
	p      *Provider
	ctx    context.Context
	body   io.ReadCloser
	stopFn func() bool // unregisters the ctx watcher that closes body

	r      *sseReader // nil once the stream reached its end
	err    error      // sticky result once the stream ended: io.EOF or *adapters.Error
	chunks int

	closed atomic.Bool
	done   atomic.Bool // [DONE] seen: the body may be drained for connection reuse
}

func newStream(ctx context.Context, p *Provider, body io.ReadCloser) *stream {
	s := &stream{p: p, ctx: ctx, body: body, r: getSSEReader(body)}
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
		data, err := s.r.next()
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
	case err == errEventTooLarge:
		return s.p.protocolError(err.Error(), nil)
	case s.ctx.Err() != nil:
		return ctxError(s.p.name, s.ctx)
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
	putSSEReader(s.r)
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
		drain(s.body)
	}
	s.body.Close()
	return nil
}

// drain reads what follows [DONE] (normally just the end of the chunked body) so the
// transport can keep the connection, giving up quickly on a server that keeps it open.
func drain(body io.ReadCloser) {
	t := time.AfterFunc(drainTimeout, func() { body.Close() })
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	t.Stop()
}

// sseReader splits a byte stream into Server-Sent Events per the WHATWG spec and returns
// each event's data. Lines are slices of the bufio buffer whenever they fit in it, so the
// per-event work is scanning and one append into data.
type sseReader struct {
	br      *bufio.Reader
	pending []byte // unconsumed rest of the last ReadSlice
	rerr    error  // error that came with pending, acted on once pending is used up
	skipLF  bool   // the last line ended in CR at a buffer edge: a leading LF is its CRLF
	started bool   // past the optional BOM
	acc     []byte // a line longer than the buffer, assembled
	data    []byte // the current event's data
}

var sseReaderPool = sync.Pool{New: func() any {
	return &sseReader{br: bufio.NewReaderSize(nil, readBufferSize)}
}}

func getSSEReader(r io.Reader) *sseReader {
	sr := sseReaderPool.Get().(*sseReader)
	sr.br.Reset(r)
	return sr
}

func putSSEReader(sr *sseReader) {
	if sr == nil {
		return
	}
	sr.br.Reset(nil) // drop the body
	sr.pending, sr.rerr, sr.skipLF, sr.started = nil, nil, false, false
	// A rare huge event must not stay pinned in the pool.
	if cap(sr.acc) > 64<<10 {
		sr.acc = nil
	}
	if cap(sr.data) > 64<<10 {
		sr.data = nil
	}
	sr.acc, sr.data = sr.acc[:0], sr.data[:0]
	sseReaderPool.Put(sr)
}

// next returns the data of the next event that has any, valid until the following call.
// At the end of input it returns the error, with the data of an unfinished event if any.
func (r *sseReader) next() ([]byte, error) {
	r.data = r.data[:0]
	hasData := false
	for {
		line, err := r.readLine()
		if err != nil {
			if hasData {
				return r.data, err
			}
			return nil, err
		}
		if !r.started {
			r.started = true
			line = bytes.TrimPrefix(line, bom)
		}
		if len(line) == 0 {
			if hasData {
				return r.data, nil
			}
			continue // a blank line with no data dispatches nothing
		}
		if line[0] == ':' {
			continue // comment, used by servers as a keep-alive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		// event, id, retry and unknown fields mean nothing to a chat completion stream.
		if string(field) != "data" {
			continue
		}
		if len(r.data)+len(value)+1 > maxEvent {
			return nil, errEventTooLarge
		}
		if hasData {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		hasData = true
	}
}

// readLine returns the next line without its terminator (CRLF, LF or CR). A last line
// with no terminator is returned before the error that ended the input.
func (r *sseReader) readLine() ([]byte, error) {
	partial := false
	for {
		if len(r.pending) == 0 {
			if r.rerr != nil && r.rerr != bufio.ErrBufferFull {
				if partial {
					return r.acc, nil
				}
				return nil, r.rerr
			}
			r.pending, r.rerr = r.br.ReadSlice('\n')
			if r.skipLF && len(r.pending) > 0 {
				r.skipLF = false
				if r.pending[0] == '\n' {
					r.pending = r.pending[1:]
				}
			}
			continue
		}
		i := indexEOL(r.pending)
		if i < 0 {
			// The line goes on past this slice: keep it before ReadSlice reuses the buffer.
			if !partial {
				partial = true
				r.acc = r.acc[:0]
			}
			if len(r.acc)+len(r.pending) > maxEvent {
				return nil, errEventTooLarge
			}
			r.acc = append(r.acc, r.pending...)
			r.pending = nil
			continue
		}
		line := r.pending[:i]
		if r.pending[i] == '\r' {
			if i+1 < len(r.pending) {
				if r.pending[i+1] == '\n' {
					i++
				}
			} else {
				r.skipLF = true
			}
		}
		r.pending = r.pending[i+1:]
		if partial {
			if len(r.acc)+len(line) > maxEvent {
				return nil, errEventTooLarge
			}
			r.acc = append(r.acc, line...)
			return r.acc, nil
		}
		return line, nil
	}
}

// indexEOL finds the first CR or LF. Two IndexByte scans beat a byte loop because both
// are vectorised and the CR scan is almost always over a short prefix.
func indexEOL(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	end := lf
	if end < 0 {
		end = len(b)
	}
	if cr := bytes.IndexByte(b[:end], '\r'); cr >= 0 {
		return cr
	}
	return lf
}
