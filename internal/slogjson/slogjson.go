// Package slogjson is the log handler `gavel serve` writes its JSON log with: the bytes
// log/slog's JSONHandler writes, written without slog's generic attribute walk for the
// flat records gavel logs on every request (strings, integers, booleans, durations).
// A record it does not write itself (a group, a float, a time, an arbitrary value, a
// LogValuer, an empty key, options such as ReplaceAttr or AddSource, a handler derived
// with WithAttrs or WithGroup) is written by slog's JSONHandler, to the same writer under
// the same lock, so the output is slog's either way; the tests hold the two to the same
// bytes.
package slogjson

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/gavel-gw/gavel/internal/jsonenc"
)

// Handler writes slog records as JSON lines. Safe for concurrent use.
type Handler struct {
	w    *lockedWriter
	slow slog.Handler // slog's JSONHandler on w: what Handle does not write itself
	// own is false when the options change what a record looks like (ReplaceAttr,
	// AddSource): then slog's handler writes every record.
	own bool
}

var _ slog.Handler = (*Handler)(nil)

// New is a handler writing to w, configured as slog.NewJSONHandler(w, opts) would be
// (opts may be nil).
func New(w io.Writer, opts *slog.HandlerOptions) *Handler {
	if opts == nil {
		opts = &slog.HandlerOptions{}
	}
	lw := &lockedWriter{w: w}
	return &Handler{w: lw, slow: slog.NewJSONHandler(lw, opts), own: opts.ReplaceAttr == nil && !opts.AddSource}
}

// Enabled reports whether records at level are written.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.slow.Enabled(ctx, level)
}

// WithAttrs and WithGroup return slog's own handler: derived loggers are not on the
// per-request path.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.slow.WithAttrs(attrs) }

// WithGroup: see WithAttrs.
func (h *Handler) WithGroup(name string) slog.Handler { return h.slow.WithGroup(name) }

// Handle writes r as one JSON line.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.own {
		return h.slow.Handle(ctx, r)
	}
	bp := bufPool.Get().(*[]byte)
	b, ok := appendRecord((*bp)[:0], r)
	if !ok {
		putBuf(bp, b)
		return h.slow.Handle(ctx, r)
	}
	_, err := h.w.Write(b)
	putBuf(bp, b)
	return err
}

// appendRecord appends r as slog's JSONHandler writes it, or reports false when r holds
// something only slog's handler writes.
func appendRecord(b []byte, r slog.Record) ([]byte, bool) {
	b = append(b, '{')
	if !r.Time.IsZero() {
		t := r.Time.Round(0) // strip the monotonic reading, as slog does
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false // slog writes an error in place of the time
		}
		b = append(b, `"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b = jsonenc.SlogString(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b = jsonenc.SlogString(b, r.Message)
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		b, ok = appendAttr(b, a)
		return ok
	})
	if !ok {
		return b, false
	}
	return append(b, '}', '\n'), true
}

// appendAttr appends ,"key":value for the kinds of value it writes as slog does.
func appendAttr(b []byte, a slog.Attr) ([]byte, bool) {
	if a.Key == "" {
		return b, false // slog elides an empty attribute and writes "" for an empty key
	}
	b = append(b, ',')
	b = jsonenc.SlogString(b, a.Key)
	b = append(b, ':')
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		b = jsonenc.SlogString(b, v.String())
	case slog.KindInt64:
		b = strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		b = strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		b = strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		b = strconv.AppendInt(b, int64(v.Duration()), 10)
	default:
		return b, false
	}
	return b, true
}

// lockedWriter serializes the writes of Handler and of the slog handler behind it, as
// slog's own handlers serialize theirs: one line per Write, never interleaved.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// putBuf returns a line's buffer to the pool unless a rare long line grew it.
func putBuf(bp *[]byte, b []byte) {
	if cap(b) > 16<<10 {
		return
	}
	*bp = b
	bufPool.Put(bp)
}
