package fakeanthropic

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

const maxBody = 32 << 20 // Anthropic's limit for the Messages API; larger bodies get 413

// ServeHTTP serves the part of the Anthropic API the fake implements: POST /v1/messages.
// It checks, in this order, the path and method, x-api-key, anthropic-version ("2023-06-01"
// or "2023-01-01"), the body size and the body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.core.RequestStarted()
	defer s.core.RequestDone()

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
	s.rec.Add(rec)

	count := r.URL.Path == "/v1/messages/count_tokens"
	switch {
	case r.URL.Path != "/v1/messages" && !count:
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
	case "2023-06-01", "2023-01-01", "2026-10-21": // the versions Anthropic has published (the last is the Go SDK v2's)
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
	if count {
		// count_tokens takes no max_tokens; the rest is checked as for a message.
		body := maps.Clone(rec.Body)
		body["max_tokens"] = float64(1)
		if msg := validate(body); msg != "" {
			writeError(w, http.StatusBadRequest, "invalid_request_error", msg)
			return
		}
		b := marshal(map[string]int{"input_tokens": CountTokens(raw)})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	if msg := validate(rec.Body); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", msg)
		return
	}

	st, _ := s.steps.Next(rec.Model)
	if st.Continue && rec.Stream {
		st = continued(rec.Model, st, rec.Body)
	}
	resp := render(rec.Model, st, rec.Stream, fmt.Sprintf("msg_fake%016d", n))
	if resp.stream {
		s.core.StreamStarted()
		defer s.core.StreamDone()
	}
	s.respond(w, r, resp)
}

func (s *Server) authorized(key string) bool {
	want := s.apiKey.Load()
	return want == nil || *want == "" || key == *want
}

// respond writes a rendered response, applying the step's latency, interval and fault. A
// wait cut short drops the connection rather than answer an empty 200 or end the stream
// cleanly.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, resp *rendered) {
	st := &resp.step
	rep := fakecore.Reply{
		Status: resp.status, Stream: resp.stream, Body: resp.body, Ends: resp.ends,
		Latency: st.Latency, ChunkInterval: st.ChunkInterval,
		Fault: fakecore.Fault(st.Fault), FaultAfter: st.FaultAfter,
	}
	if !s.core.Prelude(w, r, &rep) {
		return
	}
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	if resp.stream {
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	}
	s.core.Send(w, r, &rep)
}

// CountTokens is the fake's count_tokens answer for a body: one token per 4 bytes, so
// tests can tell the fake's count from gavel's estimate.
func CountTokens(body []byte) int { return len(body)/4 + 1 }

// writeError writes Anthropic's {"type":"error","error":{...}} with status.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	b := marshal(errorEnvelope(typ, msg, status))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
