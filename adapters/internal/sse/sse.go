// Package sse reads Server-Sent Events (the WHATWG "text/event-stream" format) for the
// streaming adapters. It implements only what a chat completion stream needs: each
// event's data (and, for callers that relay events as they came, its event name), with
// the other fields (id, retry and unknown ones) skipped, since every provider repeats what
// matters inside the data.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
)

const (
	// MaxEvent bounds one event (and one line). Real events are well under 1 KiB; the
	// bound only keeps a broken upstream from making the gateway buffer without limit.
	MaxEvent = 1 << 20
	// BufferSize covers any ordinary event in one ReadSlice, so the common path never
	// copies a line. It is small because one is held per open stream.
	BufferSize = 4 << 10

	// maxPooled is the largest buffer a pooled Reader keeps: a rare huge event must not
	// stay pinned in the pool.
	maxPooled = 64 << 10
)

// ErrEventTooLarge is returned by Next for an event or line longer than MaxEvent.
var ErrEventTooLarge = errors.New("SSE event exceeds 1 MiB")

var bom = []byte("\xEF\xBB\xBF")

// Reader splits a byte stream into Server-Sent Events and returns each event's data.
// Lines are slices of the bufio buffer whenever they fit in it, so the per-event work is
// scanning and one append into data. Get one with Get and hand it back with Put.
type Reader struct {
	br      *bufio.Reader
	pending []byte // unconsumed rest of the last ReadSlice
	rerr    error  // error that came with pending, acted on once pending is used up
	skipLF  bool   // the last line ended in CR at a buffer edge: a leading LF is its CRLF
	started bool   // past the optional BOM
	acc     []byte // a line longer than the buffer, assembled
	data    []byte // the current event's data
	event   []byte // the current event's "event" field, for callers that relay events
	// oneLF: Ready found the next event to be the one Next takes whole (one), its data
	// line ended by the buffered input's byte at oneLF-1; 0 when it did not. Nothing
	// reads the input between Ready and Next, so it holds until Next.
	oneLF int
}

var pool = sync.Pool{New: func() any {
	return &Reader{br: bufio.NewReaderSize(nil, BufferSize)}
}}

// Get returns a pooled Reader of r.
func Get(r io.Reader) *Reader {
	sr := pool.Get().(*Reader)
	sr.br.Reset(r)
	return sr
}

// Put returns sr to the pool; sr may be nil. The data last returned by Next is no longer
// valid afterwards.
func Put(sr *Reader) {
	if sr == nil {
		return
	}
	sr.br.Reset(nil) // drop the body
	sr.pending, sr.rerr, sr.skipLF, sr.started, sr.oneLF = nil, nil, false, false, 0
	if cap(sr.acc) > maxPooled {
		sr.acc = nil
	}
	if cap(sr.data) > maxPooled {
		sr.data = nil
	}
	sr.acc, sr.data, sr.event = sr.acc[:0], sr.data[:0], sr.event[:0]
	pool.Put(sr)
}

// Next returns the data of the next event that has any, valid until the following call.
// Data lines are joined with "\n"; an event with no data line dispatches nothing. At the
// end of input it returns the error (io.EOF for a clean end) together with the data of an
// event that the end cut off, if any: the spec drops such an event, but a caller may want
// to recognise a final marker sent without its blank line. An event or line longer than
// MaxEvent yields ErrEventTooLarge.
func (r *Reader) Next() ([]byte, error) {
	r.event = r.event[:0]
	if data := r.one(); data != nil {
		return data, nil
	}
	if r.wait() {
		if data := r.one(); data != nil {
			return data, nil
		}
	}
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
			r.event = r.event[:0]
			continue // a blank line with no data dispatches nothing (and forgets its name)
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
		// id, retry and unknown fields are not needed (see the package comment); the event
		// name is kept for callers that pass events on as they came (Event).
		if string(field) == "event" {
			if len(value) <= maxEventName {
				r.event = append(r.event[:0], value...)
			}
			continue
		}
		if string(field) != "data" {
			continue
		}
		if len(r.data)+len(value)+1 > MaxEvent {
			return nil, ErrEventTooLarge
		}
		if hasData {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		hasData = true
	}
}

// Ready reports whether the next event is already buffered whole and holds data (its
// lines all "data:" fields, one of them not empty, ended by a blank line), so that Next
// will return it without reading. It answers false whenever it cannot tell cheaply (a
// line cut at the buffer's edge, CRLF line ends, comments), which only costs a caller an
// early flush.
func (r *Reader) Ready() bool {
	r.oneLF = 0
	if len(r.pending) > 0 || r.rerr != nil || r.skipLF || !r.started {
		return false
	}
	buf, _ := r.br.Peek(r.br.Buffered())
	if i := bytes.IndexByte(buf, '\n'); i > 0 && i+1 < len(buf) && buf[i+1] == '\n' && bytes.HasPrefix(buf, sseDataField) &&
		bytes.IndexByte(buf[:i], '\r') < 0 && hasData(buf[len(sseDataField):i]) {
		r.oneLF = i + 1 // the common event, which one will take without looking again
		return true
	}
	data := false
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return false // the event is not read in whole
		}
		line := buf[:i]
		if len(line) == 0 {
			return data // the blank line that ends the event
		}
		if !bytes.HasPrefix(line, sseDataField) || bytes.IndexByte(line, '\r') >= 0 {
			return false
		}
		if hasData(line[5:]) {
			data = true
		}
		buf = buf[i+1:]
	}
}

var sseDataField = []byte("data:")

// hasData reports whether a data field's value is not all spaces; a JSON object after the
// one optional space is the common answer.
func hasData(v []byte) bool {
	if len(v) > 1 && v[0] == ' ' && v[1] == '{' || len(v) > 0 && v[0] == '{' {
		return true
	}
	return len(bytes.TrimSpace(v)) > 0
}

// wait waits for input when none is buffered, so that an event that arrives in one read
// (an upstream writes one event at a time) can be taken whole by one rather than line by
// line. It reports whether input came; a read's error is kept for readLine, which returns
// it as the read it would have made itself.
func (r *Reader) wait() bool {
	if r.br.Buffered() > 0 || len(r.pending) > 0 || r.rerr != nil || r.skipLF || !r.started {
		return false
	}
	if _, err := r.br.Peek(1); err != nil {
		r.rerr = err // nothing buffered: as ReadSlice would have returned it
		return false
	}
	return true
}

// one returns the next event when it is the common one, read in whole: one data line
// ended by LF, with some data, and a blank line (LF) after it; nil when the event is
// any other (then Next reads it line by line, with everything the spec allows). The
// data is a slice of the buffered input, consumed here: it stays valid until the next
// read, as Next promises, and needs no copy.
func (r *Reader) one() []byte {
	if r.oneLF > 0 {
		// Ready checked it all: a data line with data, ended by LF, and the blank line.
		i := r.oneLF - 1
		r.oneLF = 0
		buf, _ := r.br.Peek(i + 2)
		line := buf[len(sseDataField):i]
		if line[0] == ' ' {
			line = line[1:]
		}
		r.br.Discard(i + 2)
		return line[:len(line):len(line)]
	}
	if len(r.pending) > 0 || r.rerr != nil || r.skipLF || !r.started {
		return nil
	}
	buf, _ := r.br.Peek(r.br.Buffered())
	if !bytes.HasPrefix(buf, sseDataField) {
		return nil
	}
	i := bytes.IndexByte(buf, '\n')
	if i < 0 || i+1 >= len(buf) || buf[i+1] != '\n' {
		return nil // not read in whole, or not ended by a blank LF line
	}
	line := buf[len(sseDataField):i]
	if len(line) > 0 && line[0] == ' ' {
		line = line[1:]
	}
	if len(line) == 0 || bytes.IndexByte(line, '\r') >= 0 {
		return nil // no data, or a CR that ends a line of its own
	}
	r.br.Discard(i + 2)
	return line[:len(line):len(line)] // an append by the caller copies, not writes over the input
}

// maxEventName bounds a kept event name; a longer one (no real API sends one) is dropped.
const maxEventName = 256

// Event returns the "event" field of the event Next last returned, nil when it had none;
// valid until the following call of Next.
func (r *Reader) Event() []byte {
	if len(r.event) == 0 {
		return nil
	}
	return r.event
}

// readLine returns the next line without its terminator (CRLF, LF or CR). A last line
// with no terminator is returned before the error that ended the input.
func (r *Reader) readLine() ([]byte, error) {
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
			if len(r.acc)+len(r.pending) > MaxEvent {
				return nil, ErrEventTooLarge
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
			if len(r.acc)+len(line) > MaxEvent {
				return nil, ErrEventTooLarge
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
