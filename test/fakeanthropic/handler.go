package fakeanthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

const maxBody = 32 << 20 // Anthropic's limit for the Messages API; larger bodies get 413

// ServeHTTP serves the part of the Anthropic API the fake implements: POST /v1/messages.
// It checks, in this order, the path and method, x-api-key, anthropic-version ("2023-06-01"
// or "2023-01-01"), the body size and the body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)

	n := s.seq.Add(1)
	w.Header().Set("Request-Id", fmt.Sprintf("req_fake%016d", n))

	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client went away mid-body
	}
	rec := Recorded{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	if json.Unmarshal(raw, &rec.Body) == nil {
		rec.Model, _ = rec.Body["model"].(string)
		rec.Stream, _ = rec.Body["stream"].(bool)
	}
	s.record(rec)

	switch {
	case r.URL.Path != "/v1/messages":
		writeError(w, http.StatusNotFound, "not_found_error", "Not Found")
		return
	case r.Method != http.MethodPost:
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "Method Not Allowed")
		return
	}
	switch key := r.Header.Get("X-Api-Key"); {
	case key == "":
		writeError(w, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
		return
	case !s.authorized(key):
		writeError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return
	}
	switch v := r.Header.Get("Anthropic-Version"); v {
	case "":
		writeError(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return
	case "2023-06-01", "2023-01-01": // the versions Anthropic has published
	default:
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("anthropic-version: %q is not a valid version", v))
		return
	}
	if len(raw) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
		return
	}
	if rec.Body == nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "There was an error parsing the body: the request body must be a JSON object.")
		return
	}
	if msg := validate(rec.Body); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", msg)
		return
	}

	st := s.next(rec.Model)
	resp := render(rec.Model, st, rec.Stream, fmt.Sprintf("msg_fake%016d", n))
	if resp.stream {
		s.activeStreams.Add(1)
		defer s.activeStreams.Add(-1)
	}
	s.respond(w, r, resp)
}

func (s *Server) authorized(key string) bool {
	want := s.apiKey.Load()
	return want == nil || *want == "" || key == *want
}

// respond writes a rendered response, applying the step's latency, interval and fault.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, resp *rendered) {
	st := &resp.step
	if !s.sleep(r.Context(), st.Latency) {
		panic(http.ErrAbortHandler) // drop the connection rather than answer an empty 200
	}
	failing := resp.status == http.StatusOK && (st.Fault == Abort || st.Fault == Hang)
	if failing && !resp.stream && st.FaultAfter <= 0 {
		s.fault(w, r, st.Fault, false)
		return
	}

	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	if !resp.stream {
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(resp.body)))
		w.WriteHeader(resp.status)
		if failing { // FaultAfter > 0: half the body, then the fault
			_, _ = w.Write(resp.body[:len(resp.body)/2])
			s.fault(w, r, st.Fault, true)
			return
		}
		_, _ = w.Write(resp.body)
		return
	}

	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	s.writeEvents(w, r, resp, failing)
}

// writeEvents sends a stream's events one by one, flushing each like the real API, and
// stops as soon as the client is gone.
func (s *Server) writeEvents(w http.ResponseWriter, r *http.Request, resp *rendered, failing bool) {
	st := &resp.step
	rc := http.NewResponseController(w)
	start := 0
	for i, end := range resp.ends {
		if failing && i == st.FaultAfter {
			s.fault(w, r, st.Fault, true)
			return
		}
		if i > 0 && !s.sleep(r.Context(), st.ChunkInterval) {
			panic(http.ErrAbortHandler) // the stream must not look complete
		}
		if r.Context().Err() != nil {
			return
		}
		if _, err := w.Write(resp.body[start:end]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		start = end
	}
	if failing { // FaultAfter beyond the last event: fail instead of ending cleanly
		s.fault(w, r, st.Fault, true)
	}
}

// fault performs an Abort or a Hang; it does not return normally from a Hang. wroteHeader
// says whether headers (and maybe part of the body) have been written: a hang then flushes
// them so the client sees them first.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, f Fault, wroteHeader bool) {
	rc := http.NewResponseController(w)
	switch f {
	case Abort:
		// Hijacking flushes what was written, then we close without the terminating chunk.
		conn, bufrw, err := rc.Hijack()
		if err != nil {
			return
		}
		_ = bufrw.Flush()
		_ = conn.Close()
	case Hang:
		if wroteHeader {
			_ = rc.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		// Released: drop the connection, so that neither an implicit empty 200 nor the end
		// of a chunked stream is sent.
		panic(http.ErrAbortHandler)
	}
}

// sleep waits d; it reports false if the client went away or the server closed meanwhile.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}

// writeError writes Anthropic's {"type":"error","error":{...}} with status.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	b := marshal(errorEnvelope(typ, msg, status))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
