package sse

import (
	"encoding/json"
	"errors"
	"io"
	"sync"
)

// JSONDecoder decodes one event's JSON data after another with a single json.Decoder.
// json.Unmarshal validates each event and sets up its scanner and decoder state afresh on
// every call, which costs several allocations per event; a Decoder keeps that state, so
// decoding an event allocates only for what it holds. Each event is fed on its own, and
// anything after its first JSON value is an error, as it would be for Unmarshal. Take one
// per stream with GetJSONDecoder and give it back with PutJSONDecoder.
type JSONDecoder struct {
	src     eventSource
	dec     *json.Decoder // nil after a failure, which leaves a Decoder unusable
	off     int64         // bytes fed so far: where the decoder must have stopped
	largest int           // the largest event fed, which the Decoder's buffer has grown to
}

// eventSource hands the Decoder the current event and then reports io.EOF; the Decoder
// asks for more only when the event is not a complete JSON value.
type eventSource struct{ b []byte }

func (e *eventSource) Read(p []byte) (int, error) {
	if len(e.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, e.b)
	e.b = e.b[n:]
	return n, nil
}

var errTrailingData = errors.New("invalid character after the event's JSON value")

// Decode decodes data, one event's whole JSON value, into v.
func (d *JSONDecoder) Decode(data []byte, v any) error {
	if d.dec == nil {
		d.dec, d.off = json.NewDecoder(&d.src), 0
	}
	data = trimJSONSpace(data) // what follows the value must be nothing at all for the check below
	d.src.b = data
	d.largest = max(d.largest, len(data))
	err := d.dec.Decode(v)
	if err == nil {
		d.off += int64(len(data))
		if len(d.src.b) != 0 || d.dec.InputOffset() != d.off {
			err = errTrailingData
		}
	}
	if err != nil {
		d.dec, d.src.b = nil, nil
	}
	return err
}

// trimJSONSpace drops the whitespace JSON allows around a value.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// maxPooledEvent is the largest event a pooled decoder may have buffered: one that grew
// for a huge event must not stay pinned in the pool.
const maxPooledEvent = 64 << 10

var jsonDecoderPool = sync.Pool{New: func() any { return new(JSONDecoder) }}

// GetJSONDecoder returns a decoder from the pool.
func GetJSONDecoder() *JSONDecoder { return jsonDecoderPool.Get().(*JSONDecoder) }

// PutJSONDecoder gives d back to the pool (nil is ignored). d must not be used after.
func PutJSONDecoder(d *JSONDecoder) {
	if d == nil || d.largest > maxPooledEvent {
		return
	}
	d.src.b = nil
	jsonDecoderPool.Put(d)
}
