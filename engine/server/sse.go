package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

var (
	sseData = []byte("data: ")
	sseEnd  = []byte("\n\n")
	sseDone = []byte("data: [DONE]\n\n")
)

// sseWriter writes server-sent events and flushes each one: a token must reach the client
// when it arrives, not when a buffer fills.
type sseWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
	buf     []byte
}

func startSSE(c echo.Context) *sseWriter {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx in front must not buffer the stream
	c.Response().WriteHeader(http.StatusOK)
	w := &sseWriter{w: c.Response()}
	w.flusher, _ = c.Response().Writer.(http.Flusher)
	return w
}

func (w *sseWriter) event(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.buf = append(append(append(w.buf[:0], sseData...), b...), sseEnd...)
	return w.raw(w.buf)
}

func (w *sseWriter) raw(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	if w.flusher != nil {
		w.flusher.Flush()
	}
	return nil
}

// streamError ends a stream whose first byte already reached the client: OpenAI's SDKs
// turn a data event holding "error" into an error for the caller. No [DONE] follows.
func (w *sseWriter) streamError(api *APIError) {
	w.event(api.body())
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
	c.Response().Header().Set(HeaderRoute, x.Route())
	w := startSSE(c)
	for {
		chunk, err := st.Recv()
		if errors.Is(err, io.EOF) {
			w.raw(sseDone)
			return nil
		}
		if err != nil {
			if ctx.Err() != nil && c.Request().Context().Err() != nil {
				return nil // client disconnected: nothing to tell it
			}
			w.streamError(streamError(st.Fail(ctx, err)))
			return nil
		}
		if chunk == nil {
			continue
		}
		if err := w.event(chunk); err != nil {
			// The client went away; closing the upstream stream cancels it.
			return nil
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
	c.Response().Header().Set(HeaderRoute, x.Route())
	c.Response().Header().Set("X-Gavel-Degraded", "stream")
	w := startSSE(c)
	for _, ch := range chunksOf(res, x.WantsUsage()) {
		if err := w.event(ch); err != nil {
			return nil
		}
	}
	w.raw(sseDone)
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
