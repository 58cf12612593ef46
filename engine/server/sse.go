package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

var (
	sseData  = []byte("data: ")
	sseEvent = []byte("event: ")
	sseEnd   = []byte("\n\n")
	sseDone  = []byte("data: [DONE]\n\n")
)

// finalWriteTimeout bounds the write of the event that ends a stream after its request's
// deadline (request_timeout) or the gateway's shutdown: the client is told why, but a
// client that reads nothing cannot hold the handler for it.
const finalWriteTimeout = 2 * time.Second

// sseWriter writes server-sent events and flushes each one: a token must reach the client
// when it arrives, not when a buffer fills. Events written while hold is set wait in buf
// and go out with the next one sent: a relay sets hold when the stream's next chunk is
// already read (adapters.ReadyStream), so a batch of events that arrived together is one
// write to the connection and one flush, and no event waits for one that is not in hand.
//
// A client that stops reading makes a write block once the kernel's queues are full. Each
// write therefore has a deadline: at least the stall bound (write_stall_timeout) from when
// it starts, and never past the request's deadline. Such a client gets nothing after it,
// and the handler ends instead of waiting for the client to leave. Setting a connection's
// deadline costs about as much as decoding and encoding a chunk, so it is not set for
// every write: it is set with stallSlack to spare, and set again only for a write it
// would cut short (arm). A stalled client is then cut between its bound and an eighth of
// it later.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController // the connection's own writer: flush errors, write deadlines
	// deadline: write deadlines are set on the connection. net/http clears a
	// connection's write deadline once it has finished a response, so the next request on
	// a kept-alive connection does not inherit the stream's.
	deadline bool
	stall    time.Duration
	until    time.Time // the request's deadline, or the end's (final); zero: none
	set      time.Time // the write deadline last set on the connection
	err      error     // the first write failure; nothing is written after it
	buf      []byte    // events written and not yet sent
	hold     bool      // events written now wait in buf for the next one sent
}

func (s *Server) startSSE(c echo.Context, ctx context.Context) *sseWriter {
	h := c.Response().Header()
	h[echo.HeaderContentType] = hvEventStream
	h["Cache-Control"] = hvNoCache
	h["Connection"] = hvKeepAlive
	h["X-Accel-Buffering"] = hvNo // nginx in front must not buffer the stream
	c.Response().WriteHeader(http.StatusOK)
	// Below echo's Response, whose Flush drops the error that says the client is gone.
	w := &sseWriter{w: c.Response(), rc: http.NewResponseController(c.Response().Writer), stall: s.o.WriteStallTimeout}
	w.until, _ = ctx.Deadline()
	w.deadline = w.arm() == nil
	return w
}

// stallSlack is how much later than its stall bound a write's deadline may be: an eighth
// of the bound. Writes within it of the last setting keep that deadline.
func stallSlack(stall time.Duration) time.Duration { return stall / 8 }

// arm makes sure the connection's write deadline gives a write starting now its whole
// stall bound and does not pass the request's deadline, setting it (with stallSlack to
// spare) when it does not.
func (w *sseWriter) arm() error {
	now := time.Now()
	need := now.Add(w.stall)
	if !w.until.IsZero() && w.until.Before(need) {
		need = w.until
	}
	if !w.set.IsZero() && !w.set.Before(need) && (w.until.IsZero() || !w.set.After(w.until)) {
		return nil
	}
	d := now.Add(w.stall + stallSlack(w.stall))
	if !w.until.IsZero() && w.until.Before(d) {
		d = w.until
	}
	w.set = d
	return w.rc.SetWriteDeadline(d)
}

// final gives the event that ends the stream its own short deadline, the request's may
// already have passed, and sends it (and what is held) as soon as it is written.
func (w *sseWriter) final() {
	w.until = time.Now().Add(finalWriteTimeout)
	w.hold = false
}

// end runs when the handler is done with the stream: what is still held is handed over.
func (w *sseWriter) end() {
	if len(w.buf) > 0 {
		w.close()
	}
}

func (w *sseWriter) event(v any) error {
	return w.eventFlush(v, !w.hold)
}

// eventFlush is event, sent with what is held when flush is set, held otherwise.
func (w *sseWriter) eventFlush(v any, flush bool) error {
	if a, ok := v.(appender); ok {
		b, err := a.AppendJSON(append(w.buf, sseData...))
		if err != nil {
			return err
		}
		w.buf = append(b, sseEnd...)
	} else {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.buf = append(append(append(w.buf, sseData...), b...), sseEnd...)
	}
	if !flush {
		return w.err
	}
	return w.send()
}

// named writes an event with an event name (`event: typ`), as Anthropic's stream has
// them. (The Responses stream encodes its events itself and writes them with raw.)
func (w *sseWriter) named(typ string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.buf = append(append(append(append(w.buf, sseEvent...), typ...), '\n'), sseData...)
	w.buf = append(append(w.buf, b...), sseEnd...)
	return w.emit()
}

// relay writes an event as an upstream sent it: its name (when it had one) and its data.
func (w *sseWriter) relay(name, data []byte) error {
	if len(name) > 0 {
		w.buf = append(append(append(w.buf, sseEvent...), name...), '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'}) // data of several lines: one field each
		w.buf = append(append(append(w.buf, sseData...), line...), '\n')
		if !more {
			break
		}
		data = rest
	}
	w.buf = append(w.buf, '\n')
	return w.emit()
}

// raw writes encoded events.
func (w *sseWriter) raw(b []byte) error {
	w.buf = append(w.buf, b...)
	return w.emit()
}

// emit sends what is written unless hold is set.
func (w *sseWriter) emit() error {
	if w.hold {
		return w.err
	}
	return w.send()
}

// batch ends the events written for one chunk while hold is set: they are sent now unless
// the stream's next chunk is at hand (ready), and then go out with its events.
func (w *sseWriter) batch(ready bool) error {
	if ready || len(w.buf) == 0 {
		return w.err
	}
	return w.send()
}

// held reports whether events wait in buf.
func (w *sseWriter) held() bool { return len(w.buf) > 0 }

// send writes what is held in one write, under a deadline, and flushes it.
func (w *sseWriter) send() error {
	if err := w.put(); err != nil {
		return err
	}
	return w.flush()
}

// put hands what is held to the response writer, under a deadline, without flushing.
func (w *sseWriter) put() error {
	err := w.write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// write hands b to the response writer under a deadline (arm); after
// a failure nothing more is written.
func (w *sseWriter) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.deadline {
		w.arm()
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = err
		return err
	}
	return nil
}

// flush pushes what the response writer holds to the connection.
func (w *sseWriter) flush() error {
	if err := w.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		w.err = err
		return err
	}
	return nil
}

// close hands the stream's last events, and those held before them, to net/http without
// a flush, under the write deadline set here: the handler returns right after, and
// net/http writes them together with the end of the chunked body in one write (a short
// stream that was whole in hand goes out with a Content-Length instead), then clears the
// deadline. The client cannot tell: nothing comes after them.
func (w *sseWriter) close() error {
	w.hold = false
	return w.put()
}

// streamError ends a stream whose first byte already reached the client: OpenAI's SDKs
// turn a data event holding "error" into an error for the caller. No [DONE] follows.
func (w *sseWriter) streamError(api *APIError) {
	w.final()
	w.event(api.body())
}

// openAIStreamError ends an OpenAI stream with a data event holding "error".
func openAIStreamError(w *sseWriter, err error) { w.streamError(clientError(err)) }

// streamFailed ends a stream that failed after it started, telling the client in its
// protocol's words (tell) when it is still there: a shutdown, a client that left, an
// upstream that failed mid-stream.
func (s *Server) streamFailed(ctx context.Context, c echo.Context, w *sseWriter, st *pipeline.Stream, err error, tell func(*sseWriter, error)) error {
	switch {
	case s.Draining() && ctx.Err() != nil:
		// The gateway is shutting down: the client is told, and the request is recorded
		// and charged for what it received.
		api := errShuttingDown()
		tell(w, api)
		return &streamEnd{api}
	case ctx.Err() != nil && c.Request().Context().Err() != nil:
		// The client disconnected, or a write to it failed: nothing to tell it.
		if w.err != nil {
			return s.writeFailed(w.err)
		}
		return &streamEnd{errClientClosed()}
	}
	tell(w, st.Fail(ctx, err))
	return nil
}

// rawEvent writes an upstream's event as it came: its name, if it had one, and its data.
func (w *sseWriter) rawEvent(name, data []byte) error {
	if len(name) > 0 {
		w.buf = append(append(append(w.buf, sseEvent...), name...), '\n')
	}
	// Data lines were joined with "\n"; each goes back on a data line of its own.
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		w.buf = append(append(append(w.buf, sseData...), data[:i]...), '\n')
		data = data[i+1:]
	}
	w.buf = append(append(append(w.buf, sseData...), data...), sseEnd...)
	return w.emit()
}

// streamEnd is how a stream that had started ended when the request is to be recorded
// with another status than 200: serve records it and writes nothing more, since the
// client was told in the stream (or can no longer be told anything).
type streamEnd struct{ api *APIError }

func (e *streamEnd) Error() string { return "stream ended: " + e.api.Error() }

// writeFailed is what a failed write to a streaming client means for its record.
func (s *Server) writeFailed(err error) error {
	if s.Draining() {
		return &streamEnd{errShuttingDown()}
	}
	return &streamEnd{writeFailure(err)}
}

// stream relays an upstream stream. Failover happened while the pipeline opened it,
// before any byte was written; from the first write on, a failure ends the stream with an
// error event.
func (s *Server) stream(ctx context.Context, c echo.Context, x *pipeline.Exchange) error {
	st, err := s.p.OpenStream(ctx, x)
	if err != nil {
		return err
	}
	defer st.Close()
	routed(c, x)
	if b := x.CachedStream(chatEvents); b != nil {
		return s.replayStream(ctx, c, x, b) // a hit: its entry's events, rendered once
	}
	w := s.startSSE(c, ctx)
	defer w.end()
	for {
		chunk, err := st.Recv()
		if errors.Is(err, io.EOF) {
			// The spend is committed before the client reads the end of its stream, so a
			// crash after this point cannot lose it.
			s.p.Settle(x)
			w.buf = append(w.buf, sseDone...)
			if err := w.close(); err != nil {
				return s.writeFailed(err)
			}
			return nil
		}
		if err != nil {
			return s.streamFailed(ctx, c, w, st, err, openAIStreamError)
		}
		if chunk == nil {
			if w.held() && !st.NextReady() {
				// What was held for this (empty) chunk goes out now: the next may be a while.
				if err := w.send(); err != nil {
					return s.writeFailed(err)
				}
			}
			continue
		}
		// A chunk followed by one already read is written with it, in one flush.
		if err := w.eventFlush(chunk, !st.NextReady()); err != nil {
			// The client went away or stopped reading; closing the upstream stream cancels it.
			return s.writeFailed(err)
		}
	}
}

// degradedStream serves a streaming client from a buffered upstream call, as the policy's
// degrade.stream=false asks: the whole answer is re-emitted as chat.completion.chunks.
func (s *Server) degradedStream(ctx context.Context, c echo.Context, x *pipeline.Exchange) error {
	res, err := s.p.Chat(ctx, x)
	if err != nil {
		return err
	}
	routed(c, x)
	c.Response().Header().Set("X-Gavel-Degraded", "stream")
	s.p.Settle(x) // before the client has the answer: see stream
	w := s.startSSE(c, ctx)
	defer w.end()
	w.hold = true // the whole answer is in hand: one write
	for _, ch := range chunksOf(res, x.WantsUsage()) {
		if err := w.event(ch); err != nil {
			return s.writeFailed(err)
		}
	}
	w.buf = append(w.buf, sseDone...)
	if err := w.close(); err != nil {
		return s.writeFailed(err)
	}
	return nil
}

// chunksOf re-expresses a completion as the chunks a stream of it would have had.
func chunksOf(r *adapters.ChatResponse, usage bool) []*adapters.ChatChunk {
	base := adapters.ChatChunk{ID: r.ID, Object: adapters.ObjectChatCompletionChunk, Created: r.Created, Model: r.Model, SystemFingerprint: r.SystemFingerprint}
	var out []*adapters.ChatChunk
	for _, ch := range r.Choices {
		role := base
		empty := ""
		role.Choices = []adapters.ChunkChoice{{Index: ch.Index, Delta: adapters.Delta{Role: "assistant", Content: &empty}}}
		out = append(out, &role)
		if txt := ch.Message.Content.String(); txt != "" {
			c := base
			c.Choices = []adapters.ChunkChoice{{Index: ch.Index, Delta: adapters.Delta{Content: &txt}}}
			out = append(out, &c)
		}
		if len(ch.Message.ToolCalls) > 0 {
			calls := make([]adapters.ToolCall, len(ch.Message.ToolCalls))
			for i, tc := range ch.Message.ToolCalls {
				idx := i
				tc.Index = &idx
				calls[i] = tc
			}
			c := base
			c.Choices = []adapters.ChunkChoice{{Index: ch.Index, Delta: adapters.Delta{ToolCalls: calls}}}
			out = append(out, &c)
		}
		fin := base
		reason := ch.FinishReason
		if reason == "" {
			reason = adapters.FinishStop
		}
		fin.Choices = []adapters.ChunkChoice{{Index: ch.Index, FinishReason: &reason}}
		out = append(out, &fin)
	}
	if usage && r.Usage != nil {
		u := base
		u.Choices = []adapters.ChunkChoice{}
		u.Usage = r.Usage
		out = append(out, &u)
	}
	return out
}
